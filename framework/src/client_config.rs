//! [`ClientProperties`]: the librdkafka properties every client of an application is created
//! with — common ones for all clients, and overrides for one kind of client under Kafka
//! Streams' prefixes — and the keys streamtime owns, which users may not set.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::error::StreamsError;

/// The kinds of client an application creates, each with its own property prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRole {
    /// A stream thread's group consumer (`main.consumer.`, then `consumer.`).
    MainConsumer,
    /// The consumer that restores stores and feeds standbys (`restore.consumer.`, then
    /// `consumer.`).
    RestoreConsumer,
    /// The consumer that fills and follows the global tables (`global.consumer.`, then
    /// `consumer.`).
    GlobalConsumer,
    /// The short-lived consumers that read metadata, committed offsets and group membership
    /// (`consumer.`).
    Consumer,
    /// A stream thread's producer (`producer.`).
    Producer,
    /// The admin client: internal topics, repartition purges, the reset tool (`admin.`).
    Admin,
}

/// Prefixes, longest first, so `main.consumer.` is not read as `consumer.`'s.
const PREFIXES: [&str; 6] = [
    "main.consumer.",
    "restore.consumer.",
    "global.consumer.",
    "consumer.",
    "producer.",
    "admin.",
];

/// Keys streamtime sets itself, with why; `true`: refused under exactly-once only.
const OWNED: [(&str, &str, bool); 11] = [
    (
        "bootstrap.servers",
        "it is given to StreamsConfig::new (or the properties file's bootstrap.servers) for \
         every client at once",
        false,
    ),
    (
        "group.id",
        "the application id names the consumer group",
        false,
    ),
    (
        "enable.auto.commit",
        "streamtime commits input offsets itself, only after their output is flushed",
        false,
    ),
    (
        "enable.auto.offset.store",
        "streamtime commits input offsets itself, only after their output is flushed",
        false,
    ),
    (
        "partition.assignment.strategy",
        "streamtime's assignor keeps co-partitioned tasks together and places standbys",
        false,
    ),
    (
        "enable.partition.eof",
        "restores read up to the end of a changelog partition by its end-of-partition event",
        false,
    ),
    (
        "client.id",
        "it carries the instance identity the assignor and interactive queries read",
        false,
    ),
    (
        "group.instance.id",
        "it is derived from StreamsConfig::instance_id, one per stream thread",
        false,
    ),
    (
        "transactional.id",
        "it is derived from the application and instance id, one per stream thread",
        false,
    ),
    (
        "isolation.level",
        "exactly-once reads committed records only",
        true,
    ),
    (
        "enable.idempotence",
        "exactly-once needs the idempotent, transactional producer",
        true,
    ),
];

/// Words that mark a property whose value is a secret: never logged or shown by `Debug`.
const SECRET_WORDS: [&str; 5] = ["password", "secret", "jaas", "token", "key.pem"];

/// Whether `key`'s value must not be shown.
/// Why streamtime owns the client property `key` (without prefix); `None` when the user may
/// set it.
pub(crate) fn owned_reason(key: &str, exactly_once: bool) -> Option<&'static str> {
    OWNED
        .iter()
        .find(|(name, _, eos_only)| *name == key && (exactly_once || !eos_only))
        .map(|(_, why, _)| *why)
}

pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Client properties by prefix (`""`: common to every client).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientProperties {
    by_prefix: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl ClientProperties {
    /// Sets `key`, routed by its prefix: `consumer.linger.ms` is a consumer property,
    /// `security.protocol` one of every client.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        let (prefix, name) = split_prefix(key);
        self.by_prefix
            .entry(prefix)
            .or_default()
            .insert(name.to_string(), value.to_string());
    }

    /// The prefixes that apply to `role`, most general first.
    fn prefixes(role: ClientRole) -> &'static [&'static str] {
        match role {
            ClientRole::MainConsumer => &["", "consumer.", "main.consumer."],
            ClientRole::RestoreConsumer => &["", "consumer.", "restore.consumer."],
            ClientRole::GlobalConsumer => &["", "consumer.", "global.consumer."],
            ClientRole::Consumer => &["", "consumer."],
            ClientRole::Producer => &["", "producer."],
            ClientRole::Admin => &["", "admin."],
        }
    }

    /// Applies the properties for `role` to `config`, after streamtime's own (so a user's
    /// value wins where streamtime only sets a default).
    pub(crate) fn apply(&self, role: ClientRole, config: &mut ClientConfig) {
        for prefix in Self::prefixes(role) {
            for (k, v) in self.by_prefix.get(prefix).into_iter().flatten() {
                config.set(k, v);
            }
        }
    }

    /// Refuses a key streamtime owns, naming it and why.
    pub(crate) fn check(&self, exactly_once: bool) -> Result<(), StreamsError> {
        for (prefix, props) in &self.by_prefix {
            for key in props.keys() {
                if let Some(why) = owned_reason(key, exactly_once) {
                    return Err(StreamsError::Config(format!(
                        "client property {prefix}{key} cannot be set: {why}"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (prefix, props) in &self.by_prefix {
            for (k, v) in props {
                let shown = if is_secret(k) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                map.entry(&format!("{prefix}{k}"), &shown);
            }
        }
        map.finish()
    }
}

fn split_prefix(key: &str) -> (&'static str, &str) {
    for prefix in PREFIXES {
        if let Some(rest) = key.strip_prefix(prefix) {
            return (prefix, rest);
        }
    }
    ("", key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ClientProperties {
        let mut p = ClientProperties::default();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn common_properties_reach_every_client_and_prefixed_ones_only_theirs() {
        let p = props(&[
            ("security.protocol", "SASL_SSL"),
            ("consumer.fetch.max.bytes", "1000"),
            ("main.consumer.fetch.max.bytes", "2000"),
            ("restore.consumer.max.poll.records", "10"),
            ("global.consumer.max.poll.records", "30"),
            ("producer.linger.ms", "20"),
            ("admin.request.timeout.ms", "9000"),
        ]);
        let get = |role| {
            let mut c = ClientConfig::new();
            p.apply(role, &mut c);
            let keys = [
                "security.protocol",
                "fetch.max.bytes",
                "max.poll.records",
                "linger.ms",
                "request.timeout.ms",
            ];
            keys.map(|k| c.get(k).map(str::to_owned))
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            get(ClientRole::MainConsumer),
            [s("SASL_SSL"), s("2000"), None, None, None]
        );
        assert_eq!(
            get(ClientRole::RestoreConsumer),
            [s("SASL_SSL"), s("1000"), s("10"), None, None]
        );
        assert_eq!(
            get(ClientRole::GlobalConsumer),
            [s("SASL_SSL"), s("1000"), s("30"), None, None]
        );
        assert_eq!(
            get(ClientRole::Consumer),
            [s("SASL_SSL"), s("1000"), None, None, None]
        );
        assert_eq!(
            get(ClientRole::Producer),
            [s("SASL_SSL"), None, None, s("20"), None]
        );
        assert_eq!(
            get(ClientRole::Admin),
            [s("SASL_SSL"), None, None, None, s("9000")]
        );
    }

    #[test]
    fn keys_streamtime_owns_are_refused_with_the_reason() {
        for key in [
            "group.id",
            "main.consumer.enable.auto.commit",
            "client.id",
            "producer.transactional.id",
            "consumer.partition.assignment.strategy",
            "admin.bootstrap.servers",
        ] {
            let err = props(&[(key, "x")]).check(false).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        // Only exactly-once owns these.
        let p = props(&[("isolation.level", "read_uncommitted")]);
        assert!(p.check(false).is_ok());
        let err = p.check(true).unwrap_err().to_string();
        assert!(
            err.contains("exactly-once reads committed records only"),
            "{err}"
        );
        assert!(props(&[("producer.enable.idempotence", "true")])
            .check(false)
            .is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let p = props(&[
            ("sasl.password", "hunter2"),
            ("sasl.jaas.config", "org.apache... password=\"hunter2\";"),
            ("ssl.key.password", "hunter2"),
            ("sasl.username", "alice"),
        ]);
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }
}
