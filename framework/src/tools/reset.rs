//! The application reset: prepares an application to reprocess its input from the start (or
//! from a point in time), like Kafka Streams' `kafka-streams-application-reset`.
//!
//! A reset, with every instance of the application stopped:
//! 1. refuses while the consumer group `<application_id>` has members;
//! 2. finds the internal topics to delete: the topology's repartition topics and changelogs
//!    when the topology is given ([`ResetOptions::topology`]), the names given with
//!    [`ResetOptions::internal_topics`], or else every topic named
//!    `<application_id>-...-repartition` or `<application_id>-...-changelog` on the cluster;
//! 3. checks again that the group has no members, then deletes those topics and waits until
//!    the broker no longer lists them (deleting a topic also drops the group's committed
//!    offsets for it);
//! 4. commits, for every partition of the input topics, the earliest offset or the first
//!    offset at or after a timestamp, without partition-time metadata, so stream time starts
//!    afresh;
//! 5. deletes the local state `<state_dir>/<application_id>` of this machine (run the reset
//!    on, or wipe the state of, every machine that ran an instance).
//!
//! The next start creates the internal topics again and reprocesses. With `dry_run` nothing
//! changes and the report says what would have been done.
//!
//! Found by name alone, the topics of an application whose id extends this one with a dash
//! (`orders` and `orders-eu`) look like this one's. So a reset that finds its topics by name
//! refuses when a consumer group `<application_id>-...` exists whose prefix matches one of
//! them, and names the group: give the topology or the topic names instead.
//!
//! The clients connect with the client properties of the [`StreamsConfig`] the options are
//! made from ([`ResetOptions::from_config`]), so a reset works on a secured cluster with the
//! same properties file the application runs with.
//!
//! ```no_run
//! use streamtime::tools::{reset, ResetOptions, ResetTarget};
//!
//! let options = ResetOptions::new("orders-app", "localhost:9092")
//!     .input_topics(["orders"])
//!     .target(ResetTarget::Earliest)
//!     .dry_run(true);
//! let report = reset(&options)?;
//! println!("{report}");
//! # Ok::<(), streamtime::StreamsError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::client_config::ClientRole;
use crate::config::StreamsConfig;
use crate::error::StreamsError;
use crate::runtime::client_health::WatchedClient;
use crate::runtime::internal_topics::watched_partition_counts;
use crate::topology::Topology;

/// Where the input offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    /// The earliest offset still on the broker.
    Earliest,
    /// The first offset whose record timestamp is at or after this time (ms since the
    /// epoch); the end of the partition when every record is older.
    Timestamp(i64),
}

/// What to reset. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ResetOptions {
    /// Application id, bootstrap servers, client properties and state directory.
    config: StreamsConfig,
    input_topics: Vec<String>,
    /// The internal topics to delete; `None`: found on the cluster by name.
    internal_topics: Option<Vec<String>>,
    target: ResetTarget,
    dry_run: bool,
    timeout: Duration,
    #[cfg(feature = "fault-injection")]
    before_deletion: Option<Hook>,
}

/// A test's hook, run at a chosen step of the reset.
#[cfg(feature = "fault-injection")]
#[derive(Clone)]
struct Hook(std::sync::Arc<dyn Fn() + Send + Sync>);

#[cfg(feature = "fault-injection")]
impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

impl ResetOptions {
    /// A reset of `application_id` on `bootstrap_servers`: input offsets to the earliest,
    /// the default state directory, 60 s timeout. Input topics must be added.
    pub fn new(application_id: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        Self::from_config(&StreamsConfig::new(application_id, bootstrap_servers))
    }

    /// A reset of the application `config` describes: its id, bootstrap servers, client
    /// properties (security settings reach every client of the reset) and state directory.
    ///
    /// ```no_run
    /// use streamtime::tools::ResetOptions;
    /// use streamtime::StreamsConfig;
    ///
    /// let config = StreamsConfig::from_properties("/etc/orders/streams.properties")?;
    /// let options = ResetOptions::from_config(&config).input_topics(["orders"]);
    /// # Ok::<(), streamtime::StreamsError>(())
    /// ```
    pub fn from_config(config: &StreamsConfig) -> Self {
        ResetOptions {
            config: config.clone(),
            input_topics: Vec::new(),
            internal_topics: None,
            target: ResetTarget::Earliest,
            dry_run: false,
            timeout: Duration::from_secs(60),
            #[cfg(feature = "fault-injection")]
            before_deletion: None,
        }
    }

    /// Runs `hook` after the offsets were looked up, before the membership check that
    /// precedes the deletion: a test starts an instance there to see the reset refuse. Only
    /// with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn before_deletion(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_deletion = Some(Hook(std::sync::Arc::new(hook)));
        self
    }

    /// The application's input topics, whose committed offsets are moved.
    pub fn input_topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.input_topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Deletes exactly these internal topics (full names, each one a
    /// `<application_id>-...-repartition` or `-changelog` topic) instead of finding them
    /// by name on the cluster. Those that do not exist are skipped.
    pub fn internal_topics<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        topics: I,
    ) -> Self {
        self.internal_topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Deletes the internal topics of `topology` (its repartition topics and the changelogs
    /// of its logged stores) instead of finding them by name on the cluster.
    pub fn topology(self, topology: &Topology) -> Self {
        let names = topology.internal_topic_names(
            &self.config.application_id,
            self.config.reuses_source_topics(),
        );
        self.internal_topics(names)
    }

    /// Where the input offsets go (default: earliest).
    pub fn target(mut self, target: ResetTarget) -> Self {
        self.target = target;
        self
    }

    /// The application's state directory (the `StreamsConfig::state_dir` it ran with).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config = self.config.state_dir(dir);
        self
    }

    /// Only report what would be done.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// How long each broker operation (and waiting for topic deletion) may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A client configuration for `role` with the application's connection properties.
    fn client(&self, role: ClientRole) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.config.bootstrap_servers);
        self.config.with_client_properties(role, &mut config);
        config
    }
}

/// The new committed offset of one input partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetReset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset committed before the reset; `None` when there was none.
    pub before: Option<i64>,
    /// The offset committed by the reset.
    pub after: i64,
}

/// What a reset did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The application id (consumer group).
    pub application_id: String,
    /// Input offsets, by topic and partition.
    pub offsets: Vec<OffsetReset>,
    /// Internal topics deleted.
    pub deleted_topics: Vec<String>,
    /// The local state directory deleted; `None` when there was none.
    pub wiped_state: Option<PathBuf>,
}

impl fmt::Display for ResetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (commit, delete) = if self.dry_run {
            ("would commit", "would delete")
        } else {
            ("committed", "deleted")
        };
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed")?;
        }
        writeln!(f, "application {}:", self.application_id)?;
        for o in &self.offsets {
            let before = o.before.map_or("none".to_string(), |b| b.to_string());
            writeln!(
                f,
                "  {commit} offset {} for input {}-{} (was {before})",
                o.after, o.topic, o.partition
            )?;
        }
        if self.deleted_topics.is_empty() {
            writeln!(f, "  no internal topics found")?;
        }
        for t in &self.deleted_topics {
            writeln!(f, "  {delete} internal topic {t}")?;
        }
        match &self.wiped_state {
            Some(dir) => writeln!(f, "  {delete} local state {}", dir.display()),
            None => writeln!(f, "  no local state found"),
        }
    }
}

/// Resets the application (see the [module documentation](self)). Blocks; call it from
/// `spawn_blocking` inside an async runtime.
///
/// Fails, changing nothing, when the options are invalid, an input topic is missing or the
/// consumer group has active members.
pub fn reset(options: &ResetOptions) -> Result<ResetReport, StreamsError> {
    let app = &options.config.application_id;
    options.config.validate()?;
    if options.input_topics.is_empty() {
        return Err(StreamsError::Config(
            "no input topics given: name every topic the application reads from".into(),
        ));
    }
    let consumer: BaseConsumer<WatchedClient> = options
        .client(ClientRole::Consumer)
        .set("group.id", app)
        .set("enable.auto.commit", "false")
        .create_with_context(WatchedClient::default())?;
    // First the metadata: a failed login shows there at once, where a group listing would
    // only time out.
    let topics = watched_partition_counts(&consumer)?;
    let groups = list_groups(&consumer, options.timeout)?;
    refuse_active_members(&groups, app)?;
    let internal = match &options.internal_topics {
        Some(given) => {
            check_given_internal_topics(app, given)?;
            given
                .iter()
                .filter(|t| topics.contains_key(*t))
                .cloned()
                .collect()
        }
        None => {
            let found = internal_topics(app, topics.keys());
            refuse_ambiguous_topics(app, &groups, &found)?;
            found
        }
    };
    let offsets = target_offsets(&consumer, options, &topics)?;
    let app_dir = options.config.state_dir.join(app);
    let report = ResetReport {
        dry_run: options.dry_run,
        application_id: app.clone(),
        offsets,
        deleted_topics: internal,
        wiped_state: app_dir.exists().then_some(app_dir),
    };
    if options.dry_run {
        tracing::info!(application = %app, "dry run: nothing changed");
        return Ok(report);
    }
    #[cfg(feature = "fault-injection")]
    if let Some(Hook(hook)) = &options.before_deletion {
        hook();
    }
    // An instance may have started while the offsets were looked up; deleting topics from
    // under it would break it, so the check is repeated just before.
    refuse_active_members(&list_groups(&consumer, options.timeout)?, app)?;
    delete_topics(options, &report.deleted_topics)?;
    wait_until_deleted(&consumer, &report.deleted_topics, options.timeout)?;
    commit(&consumer, app, &report.offsets)?;
    if let Some(dir) = &report.wiped_state {
        std::fs::remove_dir_all(dir)
            .map_err(|e| StreamsError::Io(format!("cannot delete {}: {e}", dir.display())))?;
        tracing::info!(dir = %dir.display(), "local state deleted");
    }
    metrics::counter!("streamtime_resets_total").increment(1);
    Ok(report)
}

/// A consumer group on the cluster: its name and its members (`client id on host`).
struct Group {
    name: String,
    members: Vec<String>,
}

/// Every consumer group the reset's principal may describe.
fn list_groups(
    consumer: &BaseConsumer<WatchedClient>,
    timeout: Duration,
) -> Result<Vec<Group>, StreamsError> {
    let list = consumer
        .fetch_group_list(None, timeout)
        .map_err(|e| StreamsError::Kafka(format!("cannot list the consumer groups: {e}")))?;
    Ok(list
        .groups()
        .iter()
        .map(|g| Group {
            name: g.name().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| format!("{} on {}", m.client_id(), m.client_host()))
                .collect(),
        })
        .collect())
}

/// A reset under a running instance would be undone by its next commit and would pull
/// topics from under it, so it is refused outright.
fn refuse_active_members(groups: &[Group], app: &str) -> Result<(), StreamsError> {
    let Some(group) = groups.iter().find(|g| g.name == app) else {
        return Ok(());
    };
    if group.members.is_empty() {
        return Ok(());
    }
    Err(StreamsError::Config(format!(
        "consumer group {app} still has {} active member(s) ({}); stop every instance of the \
         application and retry (a killed instance leaves the group when its session times \
         out, 10 s by default)",
        group.members.len(),
        group.members.join(", ")
    )))
}

/// Topics found by name may belong to another application whose id extends this one
/// (`orders-eu-counts-changelog` matches `orders`); deleting them would wipe its state.
fn refuse_ambiguous_topics(
    app: &str,
    groups: &[Group],
    found: &[String],
) -> Result<(), StreamsError> {
    let prefix = format!("{app}-");
    let mut clashes = Vec::new();
    for group in groups.iter().filter(|g| g.name.starts_with(&prefix)) {
        let theirs = format!("{}-", group.name);
        for topic in found.iter().filter(|t| t.starts_with(&theirs)) {
            clashes.push(format!("{topic} (group {})", group.name));
        }
    }
    if clashes.is_empty() {
        return Ok(());
    }
    Err(StreamsError::Config(format!(
        "refusing to delete internal topics found by name: {} may belong to another \
         application whose id starts with {prefix}; name the topics to delete with \
         --internal-topics (ResetOptions::internal_topics) or give the topology \
         (ResetOptions::topology)",
        clashes.join(", ")
    )))
}

/// Given names must look like this application's internal topics, so a typo cannot delete an
/// input or output topic.
fn check_given_internal_topics(app: &str, given: &[String]) -> Result<(), StreamsError> {
    let recognised = internal_topics(app, given);
    match given.iter().find(|t| !recognised.contains(t)) {
        None => Ok(()),
        Some(topic) => Err(StreamsError::Config(format!(
            "{topic} is not an internal topic of {app}: internal topics are named \
             {app}-<name>-repartition or {app}-<name>-changelog"
        ))),
    }
}

/// The application's internal topics among `topics`, by their name pattern.
pub(crate) fn internal_topics<'a>(
    app: &str,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let prefix = format!("{app}-");
    topics
        .into_iter()
        .filter(|t| {
            t.strip_prefix(&prefix).is_some_and(|rest| {
                rest.strip_suffix("-repartition")
                    .or_else(|| rest.strip_suffix("-changelog"))
                    .is_some_and(|name| !name.is_empty())
            })
        })
        .cloned()
        .collect()
}

fn target_offsets(
    consumer: &BaseConsumer<WatchedClient>,
    options: &ResetOptions,
    topics: &BTreeMap<String, i32>,
) -> Result<Vec<OffsetReset>, StreamsError> {
    let mut partitions = TopicPartitionList::new();
    for topic in &options.input_topics {
        let count = *topics.get(topic).ok_or_else(|| {
            StreamsError::MissingTopic(format!("input topic {topic} does not exist"))
        })?;
        for p in 0..count {
            partitions.add_partition(topic, p);
        }
    }
    let committed = consumer
        .committed_offsets(partitions.clone(), options.timeout)
        .map_err(|e| StreamsError::Kafka(format!("cannot read committed offsets: {e}")))?;
    let by_time = match options.target {
        ResetTarget::Earliest => None,
        ResetTarget::Timestamp(ts) => {
            let mut query = TopicPartitionList::new();
            for e in partitions.elements() {
                query.add_partition_offset(e.topic(), e.partition(), Offset::Offset(ts))?;
            }
            Some(
                consumer
                    .offsets_for_times(query, options.timeout)
                    .map_err(|e| {
                        StreamsError::Kafka(format!("cannot look offsets up by time: {e}"))
                    })?,
            )
        }
    };
    let mut out = Vec::new();
    for e in partitions.elements() {
        let (topic, partition) = (e.topic(), e.partition());
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, options.timeout)
            .map_err(|err| {
                StreamsError::Kafka(format!("cannot read offsets of {topic}-{partition}: {err}"))
            })?;
        let after = match &by_time {
            None => low,
            Some(found) => match found.find_partition(topic, partition).map(|f| f.offset()) {
                Some(Offset::Offset(o)) => o.clamp(low, high),
                // No record at or after the time: start after everything there is.
                _ => high,
            },
        };
        let before = committed
            .find_partition(topic, partition)
            .and_then(|c| match c.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        out.push(OffsetReset {
            topic: topic.to_string(),
            partition,
            before,
            after,
        });
    }
    Ok(out)
}

fn delete_topics(options: &ResetOptions, names: &[String]) -> Result<(), StreamsError> {
    if names.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = options.client(ClientRole::Admin).create()?;
    let admin_options = AdminOptions::new().operation_timeout(Some(options.timeout));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = futures::executor::block_on(admin.delete_topics(&names, &admin_options))
        .map_err(|e| StreamsError::Kafka(format!("cannot delete internal topics: {e}")))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "internal topic deleted"),
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(StreamsError::Kafka(format!(
                    "cannot delete internal topic {topic}: {code}"
                )))
            }
        }
    }
    Ok(())
}

/// Deletion completes asynchronously on the broker; an application started before it has
/// would find its old topics (or fail to create them anew).
fn wait_until_deleted(
    consumer: &BaseConsumer<WatchedClient>,
    names: &[String],
    timeout: Duration,
) -> Result<(), StreamsError> {
    let deadline = Instant::now() + timeout;
    loop {
        let topics = watched_partition_counts(consumer)?;
        let left: Vec<&String> = names.iter().filter(|t| topics.contains_key(*t)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StreamsError::Kafka(format!(
                "internal topics still listed {timeout:?} after their deletion: {left:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn commit(
    consumer: &BaseConsumer<WatchedClient>,
    app: &str,
    offsets: &[OffsetReset],
) -> Result<(), StreamsError> {
    let mut tpl = TopicPartitionList::new();
    for o in offsets {
        // No metadata: the application's partition time (stored there) restarts from none.
        tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.after))?;
    }
    // The group coordinator accepts this commit only while the group has no members, which
    // also catches an instance started since the membership check.
    consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
        StreamsError::Kafka(format!(
            "cannot commit the reset offsets for group {app} (is an instance running?): {e}"
        ))
    })?;
    tracing::info!(application = %app, partitions = offsets.len(), "input offsets reset");
    Ok(())
}

/// Parses an ISO-8601 date-time such as `2026-11-22T08:30:00Z`,
/// `2026-11-22T08:30:00.250+01:00` or `2026-11-22T08:30:00` (UTC) into ms since the epoch.
///
/// ```
/// use streamtime::tools::reset::parse_datetime;
/// assert_eq!(parse_datetime("1970-01-01T00:00:01Z").unwrap(), 1_000);
/// assert_eq!(parse_datetime("2026-11-22T10:00:00+02:00").unwrap(), parse_datetime("2026-11-22T08:00:00").unwrap());
/// assert!(parse_datetime("22/11/2026").is_err());
/// ```
pub fn parse_datetime(text: &str) -> Result<i64, StreamsError> {
    let bad = || {
        StreamsError::Config(format!(
            "{text:?} is not a date-time like 2026-11-22T08:30:00Z, 2026-11-22T08:30:00.250+01:00 \
             or 2026-11-22T08:30:00 (UTC)"
        ))
    };
    let (date, time) = text.split_once(['T', ' ']).ok_or_else(bad)?;
    let number = |s: &str, len: usize| -> Result<i64, StreamsError> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let date: Vec<&str> = date.split('-').collect();
    let [y, mo, d] = date[..] else {
        return Err(bad());
    };
    let (year, month, day) = (number(y, 4)?, number(mo, 2)?, number(d, 2)?);
    // Split off the zone: `Z`, `+hh:mm` or `-hh:mm`, or none (UTC).
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(i);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':').ok_or_else(bad)?;
        (
            clock,
            sign * (number(h, 2)? * 3_600_000 + number(m, 2)? * 60_000),
        )
    } else {
        (time, 0)
    };
    let (clock, millis) = match clock.split_once('.') {
        Some((c, frac)) if !frac.is_empty() && frac.len() <= 3 => {
            let ms = number(frac, frac.len())? * 10_i64.pow(3 - frac.len() as u32);
            (c, ms)
        }
        Some(_) => return Err(bad()),
        None => (clock, 0),
    };
    let clock: Vec<&str> = clock.split(':').collect();
    let [h, mi, s] = clock[..] else {
        return Err(bad());
    };
    let (hour, minute, second) = (number(h, 2)?, number(mi, 2)?, number(s, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis - offset_ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_are_found_by_prefix_and_suffix() {
        let topics: Vec<String> = [
            "app-counts-changelog",
            "app-KSTREAM-REPARTITION-0000000003-repartition",
            "app-input",
            "other-counts-changelog",
            "app--changelog",
            "app-changelog",
            "appx-counts-changelog",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            internal_topics("app", &topics),
            vec![
                "app-counts-changelog".to_string(),
                "app-KSTREAM-REPARTITION-0000000003-repartition".to_string()
            ]
        );
    }

    fn group(name: &str, members: usize) -> Group {
        Group {
            name: name.to_string(),
            members: (0..members)
                .map(|i| format!("client-{i} on host"))
                .collect(),
        }
    }

    #[test]
    fn topics_found_by_name_are_refused_when_a_longer_application_id_could_own_them() {
        let found: Vec<String> = ["orders-counts-changelog", "orders-eu-counts-changelog"]
            .map(String::from)
            .into();
        let groups = [group("orders", 0), group("orders-eu", 2), group("other", 1)];
        let error = refuse_ambiguous_topics("orders", &groups, &found)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("orders-eu-counts-changelog (group orders-eu)"),
            "{error}"
        );
        assert!(!error.contains("orders-counts-changelog ("), "{error}");
        // A group that prefixes none of the topics found is no reason to refuse.
        let unrelated = [group("orders", 0), group("orders-us", 1)];
        assert!(refuse_ambiguous_topics("orders", &unrelated, &found).is_ok());
    }

    #[test]
    fn a_group_with_members_stops_the_reset_and_names_them() {
        let error = refuse_active_members(&[group("orders", 1)], "orders")
            .unwrap_err()
            .to_string();
        assert!(error.contains("client-0 on host"), "{error}");
        assert!(
            refuse_active_members(&[group("orders", 0), group("orders-eu", 3)], "orders").is_ok()
        );
    }

    #[test]
    fn a_topology_names_exactly_its_repartition_topics_and_changelogs() {
        use crate::serdes::StringSerde;
        use crate::{Consumed, Materialized, Produced, Repartitioned, StreamsBuilder};
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(StringSerde, StringSerde))
            .select_key(|_k, v: &String| v.clone())
            .repartition(Repartitioned::as_("by-value"))
            .group_by_key()
            .count(Materialized::as_("counts"))
            .to_stream()
            .to("out", Produced::with(StringSerde, crate::serdes::I64Serde));
        let topology = builder.build().unwrap();
        let options = ResetOptions::new("orders", "b:1").topology(&topology);
        assert_eq!(
            options.internal_topics,
            Some(vec![
                "orders-by-value-repartition".to_string(),
                "orders-counts-changelog".to_string()
            ])
        );
    }

    #[test]
    fn named_internal_topics_must_be_the_applications_own() {
        let given =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
        assert!(check_given_internal_topics("app", &given(&["app-counts-changelog"])).is_ok());
        let error = check_given_internal_topics("app", &given(&["app-counts-changelog", "orders"]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("orders is not an internal topic of app"),
            "{error}"
        );
    }

    #[test]
    fn application_ids_that_leave_the_state_directory_are_refused() {
        for id in [".", "..", "../etc", "a/b"] {
            let error = reset(&ResetOptions::new(id, "127.0.0.1:1").input_topics(["in"]))
                .unwrap_err()
                .to_string();
            assert!(error.contains("application_id"), "{id}: {error}");
        }
    }

    #[test]
    fn date_times_parse_to_epoch_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_datetime("2026-11-22T14:35:00Z").unwrap(),
            1_795_358_100_000
        );
        assert_eq!(
            parse_datetime("2026-11-22T14:35:00.5Z").unwrap(),
            1_795_358_100_500
        );
        assert_eq!(
            parse_datetime("2026-11-22T15:35:00+01:00").unwrap(),
            1_795_358_100_000
        );
        assert_eq!(
            parse_datetime("2026-11-22T13:35:00.250-01:00").unwrap(),
            1_795_358_100_250
        );
        assert_eq!(
            parse_datetime("2024-02-29 00:00:00").unwrap(),
            1_709_164_800_000
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00Z",
            "2026-11-22T10:00:00.1234Z",
            "2026-11-22T10:00:00+0100",
            "yesterday",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?} must not parse");
        }
    }
}
