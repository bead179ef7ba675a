//! Reading a [`StreamsConfig`](super::StreamsConfig) from a Java-style `.properties` file with
//! Kafka Streams' keys, then environment overrides: the format Kafka users deploy with.

use std::path::Path;
use std::time::Duration;

use super::{ProcessingGuarantee, StreamsConfig, TopologyOptimization};
use crate::client_config::{is_secret, owned_reason};
use crate::error::StreamsError;

/// The Kafka Streams keys streamtime reads; every other key is a client property.
const STREAMS_KEYS: [&str; 14] = [
    "application.id",
    "bootstrap.servers",
    "processing.guarantee",
    "num.stream.threads",
    "commit.interval.ms",
    "state.dir",
    "num.standby.replicas",
    "replication.factor",
    "statestore.cache.max.bytes",
    "cache.max.bytes.buffering",
    "poll.ms",
    "max.task.idle.ms",
    "application.server",
    "topology.optimization",
];

/// Java client keys librdkafka does not have, with what to write instead.
const JAVA_ONLY: [(&str, &str); 6] = [
    (
        "ssl.truststore.location",
        "librdkafka reads the CA certificates from a PEM file: use ssl.ca.location",
    ),
    (
        "ssl.truststore.password",
        "librdkafka reads the CA certificates from a PEM file: use ssl.ca.location",
    ),
    (
        "ssl.truststore.type",
        "librdkafka reads the CA certificates from a PEM file: use ssl.ca.location",
    ),
    (
        "default.key.serde",
        "serdes are given per operation in the topology",
    ),
    (
        "default.value.serde",
        "serdes are given per operation in the topology",
    ),
    (
        "key.serializer",
        "serdes are given per operation in the topology",
    ),
];

/// The environment variables that override a file's keys: `STREAMTIME_` then the key in
/// upper case with `_` for `.` (`STREAMTIME_SASL_PASSWORD` sets `sasl.password`).
pub(crate) const ENV_PREFIX: &str = "STREAMTIME_";

/// Parses Java `.properties` text: `key=value`, `key: value` or `key value` lines, `#` and
/// `!` comments, `\` line continuations and escapes (`\t`, `\n`, `\uXXXX`, …). Returns the
/// pairs in file order, with each key's line number.
pub(crate) fn parse(text: &str) -> Result<Vec<(usize, String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let first = line.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_string();
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key(&logical);
        let key = unescape(key).map_err(|e| format!("line {}: {e}", n + 1))?;
        let value = unescape(value).map_err(|e| format!("line {} ({key}): {e}", n + 1))?;
        out.push((n + 1, key, value));
    }
    Ok(out)
}

/// An odd number of trailing backslashes continues the line.
fn ends_in_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// The raw key (up to the first unescaped `=`, `:` or whitespace) and raw value.
fn split_key(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], line[i + 1..].trim_start()),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).map_or(rest, str::trim_start);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad unicode escape \\u{hex}"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// The streams key closest to `key`, if it is close enough to be a typo.
fn did_you_mean(key: &str) -> Option<&'static str> {
    STREAMS_KEYS
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Turns a Java `sasl.jaas.config` for the PLAIN or SCRAM login module into librdkafka's
/// `sasl.username` and `sasl.password`.
fn jaas_credentials(jaas: &str) -> Result<(String, String), String> {
    let module = jaas.split_whitespace().next().unwrap_or_default();
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return Err(format!(
            "sasl.jaas.config: only the PLAIN and SCRAM login modules translate to librdkafka's \
             sasl.username and sasl.password (got {module:?}); set those, or librdkafka's own \
             sasl.* properties, instead"
        ));
    }
    let field = |name: &str| -> Result<String, String> {
        let start = jaas
            .find(&format!("{name}=\""))
            .ok_or_else(|| format!("sasl.jaas.config has no {name}=\"…\""))?
            + name.len()
            + 2;
        let len = jaas[start..]
            .find('"')
            .ok_or_else(|| format!("sasl.jaas.config: unterminated {name}"))?;
        Ok(jaas[start..start + len].to_string())
    };
    Ok((field("username")?, field("password")?))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, StreamsError> {
    value
        .trim()
        .parse()
        .map_err(|_| StreamsError::Config(format!("{key} must be a whole number, got {value:?}")))
}

/// Builds a configuration from `pairs` (file order; later keys win), see
/// [`StreamsConfig::from_properties`].
///
/// Each pair carries where it came from (`app.properties:7`, or the environment variable),
/// which every error about it names first.
pub(crate) fn build(
    pairs: Vec<(String, String, String)>,
    source: &str,
) -> Result<StreamsConfig, StreamsError> {
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.trim().to_string())
    };
    let required = |key: &str| {
        get(key).ok_or_else(|| StreamsError::Config(format!("{source}: {key} is missing")))
    };
    let mut config =
        StreamsConfig::new(required("application.id")?, required("bootstrap.servers")?);
    let mut client_keys = Vec::new();
    for (source, key, value) in &pairs {
        let value = value.trim();
        let located = |e: StreamsError| match e {
            StreamsError::Config(m) => StreamsError::Config(format!("{source}: {m}")),
            other => other,
        };
        let ms = |v: &str| {
            number::<u64>(key, v)
                .map(Duration::from_millis)
                .map_err(&located)
        };
        config = match key.as_str() {
            "application.id" | "bootstrap.servers" => config,
            "processing.guarantee" => config.processing_guarantee(match value {
                "at_least_once" => ProcessingGuarantee::AtLeastOnce,
                "exactly_once_v2" | "exactly_once" | "exactly_once_beta" => {
                    ProcessingGuarantee::ExactlyOnce
                }
                other => {
                    return Err(StreamsError::Config(format!(
                        "{source}: processing.guarantee must be at_least_once or \
                         exactly_once_v2, got {other:?}"
                    )))
                }
            }),
            "num.stream.threads" => {
                config.num_stream_threads(number(key, value).map_err(&located)?)
            }
            "commit.interval.ms" => config.commit_interval(ms(value)?),
            "state.dir" => config.state_dir(value),
            "num.standby.replicas" => {
                config.num_standby_replicas(number(key, value).map_err(&located)?)
            }
            "replication.factor" => {
                config.replication_factor(number(key, value).map_err(&located)?)
            }
            "statestore.cache.max.bytes" | "cache.max.bytes.buffering" => {
                config.cache_max_bytes(number(key, value).map_err(&located)?)
            }
            "poll.ms" => config.poll_timeout(ms(value)?),
            "max.task.idle.ms" => {
                config.max_task_idle(match number::<i64>(key, value).map_err(&located)? {
                    -1 => None,
                    n if n >= 0 => Some(Duration::from_millis(n as u64)),
                    n => {
                        return Err(StreamsError::Config(format!(
                            "{source}: max.task.idle.ms must be -1 or at least 0, got {n}"
                        )))
                    }
                })
            }
            "application.server" => config.application_server(value),
            "topology.optimization" => config.topology_optimization(
                optimization(value).map_err(|e| StreamsError::Config(format!("{source}: {e}")))?,
            ),
            "sasl.jaas.config" => {
                let (user, password) = jaas_credentials(value)
                    .map_err(|e| StreamsError::Config(format!("{source}: {e}")))?;
                config
                    .client_property("sasl.username", user)
                    .client_property("sasl.password", password)
            }
            other => {
                let name = other.rsplit_once("consumer.").map_or(other, |(_, n)| n);
                let name = name
                    .strip_prefix("producer.")
                    .or_else(|| name.strip_prefix("admin."))
                    .unwrap_or(name);
                if let Some((_, hint)) = JAVA_ONLY.iter().find(|(k, _)| *k == name) {
                    return Err(StreamsError::Config(format!("{source}: {other}: {hint}")));
                }
                if let Err(e) = check_client_property(name, value) {
                    return Err(StreamsError::Config(format!("{source}: {e}")));
                }
                client_keys.push((source, other, name));
                config.client_property(other, value)
            }
        };
    }
    // Checked once the whole file is read: whether a key is owned can depend on a
    // processing.guarantee given after it.
    for (source, key, name) in client_keys {
        if let Some(why) = owned_reason(name, config.is_exactly_once()) {
            return Err(StreamsError::Config(format!(
                "{source}: {key} cannot be set: {why}"
            )));
        }
    }
    Ok(config)
}

/// Whether librdkafka knows `key` and accepts `value` for it (the value is not echoed for
/// secrets).
pub(crate) fn check_client_property(key: &str, value: &str) -> Result<(), String> {
    let mut probe = rdkafka::ClientConfig::new();
    probe.set(key, value);
    let Err(e) = probe.create_native_config() else {
        return Ok(());
    };
    let e = e.to_string();
    if e.contains("No such configuration property") {
        let hint = did_you_mean(key)
            .map(|k| format!("; did you mean {k}?"))
            .unwrap_or_default();
        return Err(format!(
            "unknown key {key}: neither a Kafka Streams key streamtime reads nor a librdkafka \
             client property{hint}"
        ));
    }
    if is_secret(key) {
        return Err(format!("librdkafka refuses the value of {key} (not shown)"));
    }
    Err(format!("invalid value for {key}: {e}"))
}

/// Reads `path`, then applies the `STREAMTIME_*` variables of `env`.
pub(crate) fn from_file(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<StreamsConfig, StreamsError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| StreamsError::Config(format!("cannot read {source}: {e}")))?;
    let mut pairs: Vec<(String, String, String)> = parse(&text)
        .map_err(|e| StreamsError::Config(format!("{source}: {e}")))?
        .into_iter()
        .map(|(line, k, v)| (format!("{source}:{line}"), k, v))
        .collect();
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
            let key = rest.to_ascii_lowercase().replace('_', ".");
            pairs.push((format!("environment variable {name}"), key, value));
        }
    }
    build(pairs, &source)
}

/// `topology.optimization`: `none`, `all`, or a comma-separated list of Kafka Streams'
/// optimizations. `single.store.self.join` is accepted and changes nothing: a stream–stream
/// self-join keeps its two stores.
fn optimization(value: &str) -> Result<TopologyOptimization, String> {
    let (mut reuse, mut merge) = (false, false);
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "none" | "single.store.self.join" => {}
            "all" => (reuse, merge) = (true, true),
            "reuse.ktable.source.topics" => reuse = true,
            "merge.repartition.topics" => merge = true,
            other => {
                return Err(format!(
                    "topology.optimization must be none, all or a list of \
                     reuse.ktable.source.topics, merge.repartition.topics, \
                     single.store.self.join; got {other:?}"
                ))
            }
        }
    }
    Ok(match (reuse, merge) {
        (true, true) => TopologyOptimization::All,
        (true, false) => TopologyOptimization::ReuseSourceTopics,
        (false, true) => TopologyOptimization::MergeRepartitionTopics,
        (false, false) => TopologyOptimization::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_and_values(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect()
    }

    #[test]
    fn topology_optimization_takes_kafka_streams_values_and_rejects_others() {
        assert_eq!(optimization("all"), Ok(TopologyOptimization::All));
        assert_eq!(optimization("none"), Ok(TopologyOptimization::None));
        assert_eq!(
            optimization("merge.repartition.topics, reuse.ktable.source.topics"),
            Ok(TopologyOptimization::All)
        );
        assert_eq!(
            optimization("merge.repartition.topics"),
            Ok(TopologyOptimization::MergeRepartitionTopics)
        );
        assert_eq!(
            optimization("reuse.ktable.source.topics,single.store.self.join"),
            Ok(TopologyOptimization::ReuseSourceTopics)
        );
        let err = optimization("fast").unwrap_err();
        assert!(err.contains("\"fast\""), "{err}");
    }

    #[test]
    fn the_java_properties_format_is_read_with_comments_separators_continuations_and_escapes() {
        let text = "# comment\n! also a comment\n\n  a=1\nb: 2\nc 3\nd = spaced value \nlong = one, \\\n    two\nescaped\\=key = x\\ty\\u0041\nempty\n";
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            keys_and_values(text),
            vec![
                s("a", "1"),
                s("b", "2"),
                s("c", "3"),
                s("d", "spaced value "),
                s("long", "one, two"),
                s("escaped=key", "x\tyA"),
                s("empty", ""),
            ]
        );
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String, String)> {
        list.iter()
            .enumerate()
            .map(|(i, (k, v))| (format!("test:{}", i + 1), k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_streams_keys_and_client_properties_make_the_configuration() {
        let config = build(
            pairs(&[
                ("application.id", "orders"),
                ("bootstrap.servers", "broker:9093"),
                ("processing.guarantee", "exactly_once_v2"),
                ("num.stream.threads", "2"),
                ("commit.interval.ms", "250"),
                ("statestore.cache.max.bytes", "1048576"),
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                (
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     username=\"orders\" password=\"s3cret\";",
                ),
                ("main.consumer.max.poll.interval.ms", "600000"),
            ]),
            "test",
        )
        .unwrap();
        assert_eq!(config.application_id(), "orders");
        assert!(config.is_exactly_once());
        assert_eq!(config.num_stream_threads, 2);
        assert_eq!(config.commit_interval, Some(Duration::from_millis(250)));
        assert_eq!(config.cache_max_bytes, 1 << 20);
        let mut client = rdkafka::ClientConfig::new();
        config.with_client_properties(crate::client_config::ClientRole::Admin, &mut client);
        assert_eq!(client.get("sasl.username"), Some("orders"));
        assert_eq!(client.get("sasl.password"), Some("s3cret"));
        assert_eq!(client.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(client.get("max.poll.interval.ms"), None);
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name_with_a_suggestion() {
        let base = [("application.id", "a"), ("bootstrap.servers", "b:1")];
        let err = |extra: (&str, &str)| {
            let mut list = base.to_vec();
            list.push(extra);
            build(pairs(&list), "app.properties")
                .unwrap_err()
                .to_string()
        };
        let typo = err(("num.stream.thread", "2"));
        let value = err(("linger.ms", "soon"));
        assert!(value.contains("invalid value for linger.ms"), "{value}");
        assert!(typo.contains("unknown key num.stream.thread"), "{typo}");
        assert!(typo.contains("did you mean num.stream.threads?"), "{typo}");
        let java = err(("ssl.truststore.location", "/x.jks"));
        assert!(java.contains("use ssl.ca.location"), "{java}");
        let bad = err(("processing.guarantee", "twice"));
        assert!(bad.contains("at_least_once or exactly_once_v2"), "{bad}");
        let missing = build(pairs(&base[..1]), "app.properties")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("bootstrap.servers is missing"),
            "{missing}"
        );
        let secret = err(("sasl.password.typo", "hunter2"));
        assert!(!secret.contains("hunter2"), "{secret}");
    }

    #[test]
    fn a_refused_key_is_named_with_its_file_and_line() {
        let dir = std::env::temp_dir().join(format!("st-props-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.properties");
        let refused = |body: &str| {
            std::fs::write(
                &path,
                format!("application.id=a\n# comment\nbootstrap.servers=b:1\n{body}\n"),
            )
            .unwrap();
            from_file(&path, []).unwrap_err().to_string()
        };
        let at = format!("{}:4", path.display());
        let owned = refused("enable.auto.commit=true");
        assert!(owned.contains(&format!("{at}: ")), "{owned}");
        assert!(
            owned.contains("enable.auto.commit cannot be set"),
            "{owned}"
        );
        let eos_owned =
            refused("producer.transactional.id=x\nprocessing.guarantee=exactly_once_v2");
        assert!(eos_owned.contains(&format!("{at}: ")), "{eos_owned}");
        assert!(
            eos_owned.contains("producer.transactional.id"),
            "{eos_owned}"
        );
        let malformed = refused("num.stream.threads=two");
        assert!(malformed.contains(&format!("{at}: ")), "{malformed}");
        assert!(
            malformed.contains("num.stream.threads must be a whole number"),
            "{malformed}"
        );
        let unknown = refused("comit.interval.ms=100");
        assert!(unknown.contains(&format!("{at}: ")), "{unknown}");
        assert!(
            unknown.contains("did you mean commit.interval.ms?"),
            "{unknown}"
        );
        std::fs::write(&path, "application.id=a\nbootstrap.servers=b:1\n").unwrap();
        let env = from_file(
            &path,
            [(
                "STREAMTIME_COMMIT_INTERVAL_MS".to_string(),
                "soon".to_string(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            env.contains("environment variable STREAMTIME_COMMIT_INTERVAL_MS: "),
            "{env}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn environment_variables_override_the_file() {
        let dir = std::env::temp_dir().join(format!("st-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.properties");
        std::fs::write(
            &path,
            "application.id=a\nbootstrap.servers=b:1\nnum.stream.threads=1\n",
        )
        .unwrap();
        let env = [
            ("STREAMTIME_NUM_STREAM_THREADS".to_string(), "3".to_string()),
            ("STREAMTIME_SASL_USERNAME".to_string(), "u".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let config = from_file(&path, env).unwrap();
        assert_eq!(config.num_stream_threads, 3);
        let mut client = rdkafka::ClientConfig::new();
        config.with_client_properties(crate::client_config::ClientRole::Producer, &mut client);
        assert_eq!(client.get("sasl.username"), Some("u"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
