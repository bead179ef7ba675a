//! The chaos runner: the test app's `chaos` workload (a windowed count and a stream–stream
//! join) under SIGKILLs, aborts inside commits and broker restarts, compared with an
//! uninterrupted run of the same app on the same input.
//!
//! One [`run`] goes like this:
//!
//! 1. It starts a broker of its own ([`StoppableBroker`]) and creates the input topic and two
//!    pairs of output topics (window counts and join results, for the chaos run and for the
//!    reference run).
//! 2. The input is generated from the seed ([`input`]): keys over a few hundred keys, event
//!    time rising 5 ms a record with records up to 1.5 s out of order (within grace) and one in
//!    500 records 20 s late (dropped as late, the same way in both runs); values `L<i>` or
//!    `R<i>`, the left and right sides of the join.
//! 3. The chaos run: `instances` app processes (`streamtime-test-app --topology chaos`, each
//!    with its own instance id, state directory, status file and restore log) run while the
//!    runner produces the input in chunks and, between chunks, carries out a schedule drawn
//!    from the seed ([`plan`]) of kills and broker restarts. A chunk is produced once the app
//!    has committed all but half a chunk of the input before it, so that the schedule spreads
//!    over the whole input. Every kill lands at a verified point:
//!    * *while processing*: after the victim's status file shows it processed a drawn number
//!      of records of the current chunk;
//!    * *mid-restore*: the previous victim was restarted with its state directory deleted,
//!      and is SIGKILLed once its restore log shows a drawn part of the restore done; the log
//!      read after the kill proves the restore was under way (restores started, the instance
//!      not yet `Running`) and tells how far it got;
//!    * *inside a commit*: the previous victim was restarted with
//!      `STREAMTIME_FAULTS=commit.transaction=abort@N` (`commit.offsets` under at-least-once),
//!      and aborts itself (SIGABRT) at its N-th pass through the commit point, just before the
//!      transaction (or offset) commit.
//!      Kills inside a commit need the framework's `fault-injection` feature: built without
//!      it, the app ignores the variable, and once the victim has run well past its N-th
//!      commit the runner SIGKILLs it while processing instead and says so in the report.
//!
//!    A broker restart stops the broker while the app is busy with a chunk, keeps it down for
//!    the configured time and starts it again. An instance that exits on its own is restarted
//!    (as a supervisor would) and reported with the error lines of its log.
//! 4. After the last chunk, one record per partition far ahead in event time closes every
//!    window. The runner waits until the app has committed every input offset and its output
//!    has stopped changing.
//! 5. The reference: one instance of the same app, on its own application id and output
//!    topics, processes the same input uninterrupted.
//! 6. Both runs' outputs are read back (`read_committed`) and compared per output topic: under
//!    exactly-once record for record (per key the same sequence of value and timestamp, and
//!    the same multiset of records); under at-least-once nothing of the reference may be
//!    missing (duplicates, and window counts that are too high, are allowed). The
//!    reference's window counts are also checked against counts computed from the input.
//!
//! All waiting is on conditions — status files, restore logs, committed offsets, output
//! watermarks, process exits — polled at short intervals; the only other sleeps are the
//! outages themselves.
//!
//! [`run`] needs a multi-threaded tokio runtime (it blocks on docker and on Kafka reads).
//!
//! ```no_run
//! # async fn demo() {
//! use streamtime_integration_tests::chaos::{self, ChaosConfig};
//! let config = ChaosConfig::issue("target/debug/streamtime-test-app");
//! let report = chaos::run(&config).await;
//! println!("{report}");
//! assert!(report.passed());
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use streamtime::partitioner::partition_for_key;

use crate::app_process::AppProcess;
use crate::hopping;
use crate::records::TestRecord;
use crate::stoppable::StoppableBroker;
use crate::topics;

/// Size of the tumbling windows of the `chaos` topology's count.
pub const WINDOW_SIZE: Duration = Duration::from_secs(10);
/// Grace of the count's windows.
pub const WINDOW_GRACE: Duration = Duration::from_secs(2);
/// How far apart in event time a left and a right record may be to join.
pub const JOIN_DIFFERENCE: Duration = Duration::from_millis(1_500);
/// Grace of the join windows.
pub const JOIN_GRACE: Duration = Duration::from_secs(2);
/// Value prefix of the join's left side.
pub const LEFT: &str = "L";
/// Value prefix of the join's right side.
pub const RIGHT: &str = "R";
/// The environment variable the framework's fault hooks read at start.
pub const FAULTS_ENV: &str = "STREAMTIME_FAULTS";

/// Event time between consecutive input records (ms).
const STEP_MS: i64 = 5;
/// Records are up to this much older than their position says (ms): always within grace.
const JITTER_MS: u64 = 1_500;
/// One record in this many is [`LATE_MS`] older: beyond grace, dropped by both operators.
const LATE_EVERY: u64 = 500;
const LATE_MS: i64 = 20_000;
/// How often status files, offsets and watermarks are looked at.
const POLL: Duration = Duration::from_millis(50);
/// How often a restore log is looked at while waiting to kill in the middle of a restore:
/// a small restore takes only tens of milliseconds.
const RESTORE_POLL: Duration = Duration::from_millis(2);

/// xorshift64*: a small seeded generator, the same sequence everywhere, so that a seed
/// reproduces a run's input and schedule.
///
/// ```
/// use streamtime_integration_tests::chaos::Rng;
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!((3..=5).contains(&a.between(3, 5)));
/// ```
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // One splitmix64 round spreads similar seeds apart and never leaves the state at 0,
        // where xorshift would stay forever.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }
}

/// The chaos workload's input: `records` records over `keys` keys from event time `t0` (see
/// the module documentation), the same for the same seed.
///
/// ```
/// use streamtime_integration_tests::chaos;
/// let records = chaos::input(1, 1_000, 50, 1_700_000_000_000);
/// assert_eq!(records, chaos::input(1, 1_000, 50, 1_700_000_000_000));
/// assert!(records.iter().all(|r| r.value.as_deref().unwrap()[0] == b'L'
///     || r.value.as_deref().unwrap()[0] == b'R'));
/// ```
pub fn input(seed: u64, records: usize, keys: usize, t0: i64) -> Vec<TestRecord> {
    // Its own stream of numbers, so that the schedule can change without changing the input.
    let mut rng = Rng::new(seed ^ 0x1_4E57);
    (0..records)
        .map(|i| {
            let key = format!("key-{:04}", rng.below(keys as u64));
            let side = if rng.below(2) == 0 { LEFT } else { RIGHT };
            let mut ts = t0 + STEP_MS * i as i64 - rng.below(JITTER_MS) as i64;
            if rng.below(LATE_EVERY) == 0 {
                ts -= LATE_MS;
            }
            TestRecord::new(&key, format!("{side}{i}").into_bytes(), ts)
        })
        .collect()
}

/// The final count of every (key, window start) the `chaos` topology emits for `records`
/// (the closers included) on `partitions` partitions, computed the way docs/semantics.md §7
/// defines it: each task sees its partition in offset order; a record counts in its window
/// unless the window's end is at or before the task's stream time − grace; a window is
/// emitted once its end is at or before the final stream time − grace.
pub fn expected_counts(records: &[TestRecord], partitions: i32) -> BTreeMap<(String, i64), i64> {
    let (size, grace) = (ms(WINDOW_SIZE), ms(WINDOW_GRACE));
    let mut observed = vec![i64::MIN; partitions as usize];
    let mut counts: BTreeMap<(String, i64), (usize, i64)> = BTreeMap::new();
    for r in records {
        let p = partition_for_key(r.key.as_deref().expect("keyed"), partitions) as usize;
        observed[p] = observed[p].max(r.timestamp);
        let start = r.timestamp.div_euclid(size) * size;
        if start + size > observed[p] - grace {
            counts.entry((r.key_str(), start)).or_insert((p, 0)).1 += 1;
        }
    }
    counts
        .into_iter()
        .filter(|((_, start), (p, _))| start + size <= observed[*p] - grace)
        .map(|(window, (_, n))| (window, n))
        .collect()
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// What a kill aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillKind {
    /// SIGKILL while the victim is processing records.
    Processing,
    /// SIGKILL while the victim restores its stores from their changelogs.
    MidRestore,
    /// The victim aborts itself inside a commit (the framework's fault hook).
    MidCommit,
}

/// One step of a chaos run's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A kill of an app instance.
    Kill(KillKind),
    /// The broker stops for this long, then starts again.
    Outage(Duration),
}

/// The schedule of a chaos run, drawn from `rng`: `kills` kills, of which `restore_kills`
/// land mid-restore and `commit_kills` inside a commit, and one broker restart per outage.
///
/// A mid-restore or inside-a-commit kill hits the victim of the kill before it, which is
/// restarted ready for it (state deleted, or the fault hook armed); so neither comes first,
/// and no broker restart comes between such a kill and the one before. Mid-restore kills are
/// in the second half, where the changelogs are long enough for a restore to take a while.
///
/// ```
/// use streamtime_integration_tests::chaos::{self, ChaosConfig, KillKind, Rng, Step};
/// let config = ChaosConfig::issue("app");
/// let steps = chaos::plan(&config, &mut Rng::new(1));
/// assert_eq!(steps.len(), 23);
/// assert_eq!(steps.iter().filter(|s| **s == Step::Kill(KillKind::MidRestore)).count(), 5);
/// ```
pub fn plan(config: &ChaosConfig, rng: &mut Rng) -> Vec<Step> {
    let n = config.kills;
    let mut kinds = vec![KillKind::Processing; n];
    let mut free: Vec<usize> = (n / 2..n).filter(|&i| i > 0).collect();
    for _ in 0..config.restore_kills.min(free.len()) {
        let at = free.remove(rng.below(free.len() as u64) as usize);
        kinds[at] = KillKind::MidRestore;
    }
    let mut free: Vec<usize> = (1..n)
        .filter(|&i| kinds[i] == KillKind::Processing)
        .collect();
    for _ in 0..config.commit_kills.min(free.len()) {
        let at = free.remove(rng.below(free.len() as u64) as usize);
        kinds[at] = KillKind::MidCommit;
    }
    let mut steps: Vec<Step> = kinds.into_iter().map(Step::Kill).collect();
    for &outage in &config.outages {
        let allowed: Vec<usize> = (0..=steps.len())
            .filter(|&i| i == steps.len() || !is_chained(steps[i]))
            .collect();
        let at = allowed[rng.below(allowed.len() as u64) as usize];
        steps.insert(at, Step::Outage(outage));
    }
    steps
}

/// Whether a step needs the restart that the kill before it ends with.
fn is_chained(step: Step) -> bool {
    matches!(
        step,
        Step::Kill(KillKind::MidRestore) | Step::Kill(KillKind::MidCommit)
    )
}

/// What a chaos run does; [`ChaosConfig::issue`] has the figures of issue 15.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The `streamtime-test-app` binary.
    pub app_binary: PathBuf,
    /// Input records (the closers come on top).
    pub records: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Partitions of the input and output topics.
    pub partitions: i32,
    /// App instances of the chaos run.
    pub instances: usize,
    /// Kills in all, the mid-restore and inside-a-commit ones included.
    pub kills: usize,
    /// Kills in the middle of a restore.
    pub restore_kills: usize,
    /// Kills inside a commit.
    pub commit_kills: usize,
    /// Broker restarts, by how long the broker stays down.
    pub outages: Vec<Duration>,
    /// Exactly-once (else at-least-once).
    pub exactly_once: bool,
    /// Seed of the input and the schedule.
    pub seed: u64,
    /// The app's commit interval (ms).
    pub commit_interval_ms: u64,
    /// How long one step may wait for its condition before it acts anyway (and says so).
    pub step_timeout: Duration,
    /// How long each run may take to finish its input after the last step.
    pub finish_timeout: Duration,
    /// Where logs, status files and state go (default: a new directory under the system's
    /// temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Print what happens to stderr as it happens.
    pub verbose: bool,
}

impl ChaosConfig {
    /// The issue's figures: 1 000 000 records, 20 kills (5 mid-restore, 3 inside a commit),
    /// broker restarts of 30 s, 30 s and 180 s, exactly-once, 2 instances on 4 partitions.
    pub fn issue(app_binary: impl Into<PathBuf>) -> Self {
        ChaosConfig {
            app_binary: app_binary.into(),
            records: 1_000_000,
            keys: 300,
            partitions: 4,
            instances: 2,
            kills: 20,
            restore_kills: 5,
            commit_kills: 3,
            outages: vec![
                Duration::from_secs(30),
                Duration::from_secs(30),
                Duration::from_secs(180),
            ],
            exactly_once: true,
            seed: 1,
            commit_interval_ms: 200,
            step_timeout: Duration::from_secs(600),
            finish_timeout: Duration::from_secs(1_800),
            work_dir: None,
            verbose: true,
        }
    }

    /// Why the configuration cannot run, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let late_slots = self.kills - (self.kills / 2).max(1).min(self.kills);
        if self.instances == 0 || self.partitions < 1 || self.keys == 0 || self.records == 0 {
            return Err("records, keys, partitions and instances must be positive".into());
        }
        if self.restore_kills > late_slots {
            return Err(format!(
                "{} mid-restore kills do not fit in the second half of {} kills",
                self.restore_kills, self.kills
            ));
        }
        if self.restore_kills + self.commit_kills >= self.kills.max(1) {
            return Err(format!(
                "{} mid-restore and {} inside-a-commit kills need at least one more kill \
                 (each follows another kill)",
                self.restore_kills, self.commit_kills
            ));
        }
        Ok(())
    }
}

/// Where a kill landed, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// SIGKILLed after it processed `processed` records since the step began, running
    /// `tasks`.
    Processing {
        /// Records the victim processed since the step began.
        processed: u64,
        /// The victim's active tasks.
        tasks: Vec<String>,
    },
    /// SIGKILLed with its restore log showing `restored` of `span` changelog offsets
    /// restored, and some changelog partition not nearly done.
    Restoring {
        /// Changelog records written to the stores before the kill.
        restored: u64,
        /// Changelog offsets the restore set out to read.
        span: u64,
    },
    /// Aborted itself (SIGABRT) at its `pass`-th pass through the commit point.
    InCommit {
        /// The commit pass the hook was armed for.
        pass: u32,
    },
}

impl Landing {
    /// The kind of kill this landing is.
    pub fn kind(&self) -> KillKind {
        match self {
            Landing::Processing { .. } => KillKind::Processing,
            Landing::Restoring { .. } => KillKind::MidRestore,
            Landing::InCommit { .. } => KillKind::MidCommit,
        }
    }
}

/// One kill of a chaos run.
#[derive(Debug, Clone)]
pub struct Kill {
    /// What the schedule asked for.
    pub planned: KillKind,
    /// The instance killed.
    pub victim: String,
    /// When, since the chaos run began.
    pub at: Duration,
    /// Where it landed.
    pub landing: Landing,
    /// Why it landed elsewhere than planned, or other remarks.
    pub note: Option<String>,
}

/// One broker restart of a chaos run.
#[derive(Debug, Clone)]
pub struct Outage {
    /// How long the broker was to stay down.
    pub planned: Duration,
    /// When the stop began, since the chaos run began.
    pub at: Duration,
    /// From the broker having stopped to its start command.
    pub down: Duration,
    /// From the stop command to the broker serving again.
    pub unavailable: Duration,
    /// Records the app processed since the step began, when the stop began.
    pub processed_before: u64,
}

/// One output topic of the chaos run against the reference's.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Which output.
    pub output: String,
    /// Record for record (exactly-once), or only nothing missing (at-least-once).
    pub exact: bool,
    /// Records in the reference's output.
    pub reference_records: usize,
    /// Records in the chaos run's output.
    pub chaos_records: usize,
    /// Reference records (exact: counted with multiplicity) the chaos output lacks; for
    /// at-least-once window counts: windows missing or counted lower.
    pub missing: usize,
    /// Chaos records beyond the reference's (exact: with multiplicity; at-least-once:
    /// duplicates and higher counts, which are allowed there).
    pub extra: usize,
    /// Keys whose records came in another order than in the reference (exact only).
    pub keys_out_of_order: usize,
    /// A few of the differences, readable.
    pub examples: Vec<String>,
}

impl Comparison {
    /// Whether the chaos output is as good as the guarantee promises.
    pub fn ok(&self) -> bool {
        if self.exact {
            self.missing == 0 && self.extra == 0 && self.keys_out_of_order == 0
        } else {
            self.missing == 0
        }
    }
}

/// What a chaos run did and found; `Display` prints the summary.
#[derive(Debug, Clone)]
pub struct ChaosReport {
    /// `exactly-once` or `at-least-once`.
    pub guarantee: &'static str,
    /// Input records (without the closers).
    pub records: usize,
    /// Closing records (one per partition).
    pub closers: usize,
    /// Keys.
    pub keys: usize,
    /// Partitions.
    pub partitions: i32,
    /// Chaos-run instances.
    pub instances: usize,
    /// Seed.
    pub seed: u64,
    /// The schedule.
    pub steps: Vec<Step>,
    /// Every kill, in order.
    pub kills: Vec<Kill>,
    /// Every broker restart, in order.
    pub outages: Vec<Outage>,
    /// Instances that exited on their own (not counting aborts of the armed fault hook).
    pub unexpected_exits: Vec<String>,
    /// Remarks: waits that ran out, incomplete runs and such.
    pub notes: Vec<String>,
    /// Whether the chaos run committed all its input and its output settled in time.
    pub chaos_finished: bool,
    /// Whether the reference did.
    pub reference_finished: bool,
    /// One per output topic (empty when an output could not be read).
    pub comparisons: Vec<Comparison>,
    /// How the reference's window counts differ from those computed from the input.
    pub model_mismatch: Option<String>,
    /// Outputs that could not be read completely.
    pub read_errors: Vec<String>,
    /// The chaos run, from the first instance's start to its output settling.
    pub chaos_time: Duration,
    /// The reference run.
    pub reference_time: Duration,
    /// Everything, the broker's start included.
    pub total_time: Duration,
    /// Where the instances' logs are.
    pub work_dir: PathBuf,
}

impl ChaosReport {
    /// Kills that landed as `kind`.
    pub fn landed(&self, kind: KillKind) -> usize {
        self.kills
            .iter()
            .filter(|k| k.landing.kind() == kind)
            .count()
    }

    /// What went wrong, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.chaos_finished {
            problems.push("the chaos run did not finish its input in time".to_string());
        }
        if !self.reference_finished {
            problems.push("the reference run did not finish its input in time".to_string());
        }
        problems.extend(self.read_errors.iter().cloned());
        if let Some(m) = &self.model_mismatch {
            problems.push(format!("the reference's window counts are wrong: {m}"));
        }
        for c in &self.comparisons {
            if !c.ok() {
                problems.push(format!("{} differs from the reference", c.output));
            }
        }
        if self.comparisons.len() < 2 && self.read_errors.is_empty() {
            problems.push("the outputs were not compared".to_string());
        }
        problems
    }

    /// Whether the chaos run's result is what the guarantee promises. Instances that exited
    /// on their own do not count against it (the runner restarts them, as a supervisor
    /// would); they are in [`ChaosReport::unexpected_exits`] and the summary.
    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos run, {}: {} records (+{} closers) over {} keys, {} partitions, {} instances, \
             seed {}",
            self.guarantee,
            self.records,
            self.closers,
            self.keys,
            self.partitions,
            self.instances,
            self.seed
        )?;
        let planned = |kind| {
            self.kills
                .iter()
                .filter(|k: &&Kill| k.planned == kind)
                .count()
        };
        writeln!(
            f,
            "kills: {} — landed {} while processing, {} mid-restore, {} inside a commit \
             (planned {}/{}/{})",
            self.kills.len(),
            self.landed(KillKind::Processing),
            self.landed(KillKind::MidRestore),
            self.landed(KillKind::MidCommit),
            planned(KillKind::Processing),
            planned(KillKind::MidRestore),
            planned(KillKind::MidCommit),
        )?;
        for (i, k) in self.kills.iter().enumerate() {
            let what = match &k.landing {
                Landing::Processing { processed, tasks } => format!(
                    "while processing: {processed} records into the step (tasks {})",
                    tasks.join(" ")
                ),
                Landing::Restoring { restored, span } => {
                    format!("mid-restore: {restored} of {span} changelog offsets restored")
                }
                Landing::InCommit { pass } => {
                    format!("inside a commit: aborted at commit pass {pass}")
                }
            };
            write!(
                f,
                "  #{:<2} at {:>8}  {}  {what}",
                i + 1,
                secs(k.at),
                k.victim
            )?;
            if let Some(note) = &k.note {
                write!(f, " — {note}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "broker restarts: {}", self.outages.len())?;
        for o in &self.outages {
            writeln!(
                f,
                "  at {:>8}: down {} (planned {}; unavailable {} from stop to serving again), \
                 {} records processed into the step before the stop",
                secs(o.at),
                secs(o.down),
                secs(o.planned),
                secs(o.unavailable),
                o.processed_before
            )?;
        }
        if self.unexpected_exits.is_empty() {
            writeln!(f, "unexpected exits: none")?;
        } else {
            writeln!(
                f,
                "unexpected exits: {} (each instance was restarted)",
                self.unexpected_exits.len()
            )?;
            for e in &self.unexpected_exits {
                writeln!(f, "  {e}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        writeln!(f, "outputs:")?;
        for c in &self.comparisons {
            let verdict = match (c.ok(), c.exact) {
                (true, true) => "equal record for record".to_string(),
                (true, false) => format!(
                    "nothing missing ({} extra: duplicates or higher counts)",
                    c.extra
                ),
                (false, _) => format!(
                    "{} missing, {} extra, {} keys out of order",
                    c.missing, c.extra, c.keys_out_of_order
                ),
            };
            writeln!(
                f,
                "  {}: reference {} records, chaos run {}: {verdict}",
                c.output, c.reference_records, c.chaos_records
            )?;
            for e in &c.examples {
                writeln!(f, "    {e}")?;
            }
        }
        for e in &self.read_errors {
            writeln!(f, "  {e}")?;
        }
        match &self.model_mismatch {
            None => writeln!(
                f,
                "  the reference's window counts equal the counts computed from the input"
            )?,
            Some(m) => writeln!(f, "  the reference's window counts are wrong: {m}")?,
        }
        writeln!(
            f,
            "time: chaos run {}, reference run {}, total {}",
            secs(self.chaos_time),
            secs(self.reference_time),
            secs(self.total_time)
        )?;
        writeln!(f, "logs: {}", self.work_dir.display())?;
        let problems = self.problems();
        if problems.is_empty() {
            write!(f, "result: PASS")?;
            if !self.unexpected_exits.is_empty() {
                write!(
                    f,
                    " (with {} unexpected exits, see above)",
                    self.unexpected_exits.len()
                )?;
            }
            Ok(())
        } else {
            write!(f, "result: FAIL — {}", problems.join("; "))
        }
    }
}

/// The active tasks an instance's status file lists, with the records each processed.
#[derive(Debug, Default, Clone)]
struct Status {
    active: BTreeMap<String, u64>,
}

impl Status {
    fn read(path: &Path) -> Status {
        let mut status = Status::default();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("active"), Some(task)) = (words.next(), words.next()) {
                let processed = words
                    .find_map(|w| w.strip_prefix("processed="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                status.active.insert(task.to_string(), processed);
            }
        }
        status
    }

    fn processed(&self) -> u64 {
        self.active.values().sum()
    }
}

/// Records processed since a starting point, across task restarts (a task's count starts at
/// 0 again when it is created anew).
#[derive(Debug, Default)]
struct Progress {
    seen: BTreeMap<String, u64>,
    total: u64,
}

impl Progress {
    fn from(status: &Status) -> Progress {
        Progress {
            seen: status.active.clone(),
            total: 0,
        }
    }

    fn observe(&mut self, status: &Status) {
        for (task, &now) in &status.active {
            let before = self.seen.get(task).copied().unwrap_or(0);
            self.total += if now >= before { now - before } else { now };
            self.seen.insert(task.clone(), now);
        }
    }
}

/// How far the latest restores in a restore log got.
///
/// The end of a restore is the instance's state becoming `Running`, not the restore's `end`
/// events or its records: under exactly-once a changelog's offsets include transaction
/// markers and aborted records, which are never restored, and a restore whose changelog
/// ends with a marker has no `end` event.
#[derive(Debug, Default)]
struct RestoreLog {
    /// Changelog partition → (offsets to read, records restored).
    partitions: BTreeMap<String, (u64, u64)>,
    /// Whether the instance has been `Running` since the latest restore started.
    running: bool,
}

impl RestoreLog {
    fn read(path: &Path) -> RestoreLog {
        let mut log = RestoreLog::default();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok());
            match words.first() {
                Some(&"start") => {
                    if let (Some(from), Some(to)) = (number(3), number(4)) {
                        if log.running {
                            // A new round of restores (a rebalance): the earlier one is done.
                            log = RestoreLog::default();
                        }
                        let span = (to - from).max(0) as u64;
                        log.partitions.insert(words[1].to_string(), (span, 0));
                    }
                }
                Some(&"batch") => {
                    if let (Some(p), Some(n)) = (log.partitions.get_mut(words[1]), number(4)) {
                        p.1 += n.max(0) as u64;
                    }
                }
                Some(&"state") => log.running = words.get(1) == Some(&"Running"),
                _ => {}
            }
        }
        log
    }

    fn span(&self) -> u64 {
        self.partitions.values().map(|p| p.0).sum()
    }

    fn restored(&self) -> u64 {
        self.partitions.values().map(|p| p.1).sum()
    }

    /// Whether a restore started and the instance has not run since.
    fn unfinished(&self) -> bool {
        !self.partitions.is_empty() && !self.running
    }
}

/// One app process slot of a run, restarted under the same instance id.
struct Instance {
    name: String,
    process: Option<AppProcess>,
    /// The commit pass the fault hook of the running process is armed for.
    armed: Option<u32>,
    starts: u32,
    state_dir: PathBuf,
    status_file: PathBuf,
    log_file: PathBuf,
}

impl Instance {
    fn new(work: &Path, name: &str) -> Instance {
        Instance {
            name: name.to_string(),
            process: None,
            armed: None,
            starts: 0,
            state_dir: work.join(format!("{name}-state")),
            status_file: work.join(format!("{name}.status")),
            log_file: work.join(format!("{name}.log")),
        }
    }

    fn restore_log(&self) -> PathBuf {
        self.status_file
            .with_file_name(format!("{}-{}.restore", self.name, self.starts))
    }

    fn status(&self) -> Status {
        Status::read(&self.status_file)
    }

    /// The last error lines streamtime logged (or the log's last lines), for a report.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        // librdkafka's connection errors during an outage would drown the one that matters.
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("ERROR streamtime") || l.starts_with("Error"))
            .collect();
        let all: Vec<&str> = if errors.is_empty() {
            text.lines().collect()
        } else {
            errors
        };
        all[all.len().saturating_sub(lines)..].join(" | ")
    }
}

/// An application of a run: its id and its two output topics.
#[derive(Debug, Clone)]
struct App {
    id: String,
    output: String,
    join_output: String,
}

fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(libc::SIGABRT) => "SIGABRT".into(),
        Some(libc::SIGKILL) => "SIGKILL".into(),
        Some(s) => format!("signal {s}"),
        None => format!("exit code {}", status.code().unwrap_or(-1)),
    }
}

/// Blocks the current tokio worker on `f` (docker commands, Kafka metadata and reads).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

struct Runner<'c> {
    config: &'c ChaosConfig,
    rng: Rng,
    broker: StoppableBroker,
    servers: String,
    input: String,
    work: PathBuf,
    instances: Vec<Instance>,
    producer: FutureProducer,
    /// A client for watermarks.
    probe: BaseConsumer,
    /// A client of the chaos run's consumer group, for its committed offsets.
    group: BaseConsumer,
    /// Input records produced so far.
    produced: usize,
    steps: Vec<Step>,
    /// The step being carried out.
    step: usize,
    /// The victim of the last kill: the victim of a chained step.
    chained_victim: usize,
    began: Instant,
    kills: Vec<Kill>,
    outages: Vec<Outage>,
    unexpected_exits: Vec<String>,
    notes: Vec<String>,
}

impl Runner<'_> {
    fn say(&self, message: impl AsRef<str>) {
        if self.config.verbose {
            eprintln!(
                "chaos [{:>7.1} s] {}",
                self.began.elapsed().as_secs_f64(),
                message.as_ref()
            );
        }
    }

    fn note(&mut self, message: String) {
        self.say(format!("note: {message}"));
        self.notes.push(message);
    }

    /// Starts instance `i` of `app`: with its state directory deleted first when `fresh`,
    /// with the commit fault hook armed for pass `armed`.
    fn start(&mut self, i: usize, app: &App, armed: Option<u32>, fresh: bool) {
        let config = self.config;
        let inst = &mut self.instances[i];
        if fresh {
            let _ = std::fs::remove_dir_all(&inst.state_dir);
        }
        // A status file left by the previous process would look like the new one's.
        let _ = std::fs::remove_file(&inst.status_file);
        inst.starts += 1;
        inst.armed = armed;
        let restore_log = inst.restore_log();
        let _ = std::fs::remove_file(&restore_log);
        let (state, status, restore) = (
            inst.state_dir.to_string_lossy().into_owned(),
            inst.status_file.to_string_lossy().into_owned(),
            restore_log.to_string_lossy().into_owned(),
        );
        let commit_interval = config.commit_interval_ms.to_string();
        let mut args = vec![
            "--topology",
            "chaos",
            "--bootstrap-servers",
            &self.servers,
            "--application-id",
            &app.id,
            "--input",
            &self.input,
            "--output",
            &app.output,
            "--join-output",
            &app.join_output,
            "--instance-id",
            &inst.name,
            "--state-dir",
            &state,
            "--status-file",
            &status,
            "--restore-log",
            &restore,
            "--commit-interval-ms",
            &commit_interval,
        ];
        if config.exactly_once {
            args.push("--exactly-once");
        }
        // The commit step between the producer's flush and the commit itself: the offset
        // commit under at-least-once, the transaction commit under exactly-once.
        let point = if config.exactly_once {
            "commit.transaction"
        } else {
            "commit.offsets"
        };
        let faults = armed.map(|pass| format!("{point}=abort@{pass}"));
        // Plain logs: they are files to read.
        let mut env = vec![("NO_COLOR", "1")];
        env.extend(faults.iter().map(|f| (FAULTS_ENV, f.as_str())));
        let marker = format!(
            "==== chaos runner: start #{} of {}{}{}\n",
            inst.starts,
            inst.name,
            if fresh { ", state deleted" } else { "" },
            faults
                .as_deref()
                .map(|f| format!(", {FAULTS_ENV}={f}"))
                .unwrap_or_default()
        );
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&inst.log_file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, marker.as_bytes()));
        inst.process = Some(AppProcess::start_logging_to(
            &config.app_binary.to_string_lossy(),
            &args,
            &env,
            &inst.log_file,
        ));
        let what = marker.trim().trim_start_matches("==== chaos runner: ");
        self.say(what);
    }

    /// Restarts the victim of the current step's kill, ready for the next step if that one
    /// is chained to this kill.
    fn restart_after_kill(&mut self, victim: usize, app: &App) {
        self.chained_victim = victim;
        match self.steps.get(self.step + 1) {
            Some(Step::Kill(KillKind::MidRestore)) => self.start(victim, app, None, true),
            Some(Step::Kill(KillKind::MidCommit)) => {
                let pass = self.rng.between(2, 12) as u32;
                self.start(victim, app, Some(pass), false)
            }
            _ => self.start(victim, app, None, false),
        }
    }

    fn kill(&mut self, i: usize) -> ExitStatus {
        let process = self.instances[i].process.take().expect("running");
        process.kill_and_reap()
    }

    fn record_kill(
        &mut self,
        planned: KillKind,
        victim: usize,
        landing: Landing,
        note: Option<String>,
    ) {
        let kill = Kill {
            planned,
            victim: self.instances[victim].name.clone(),
            at: self.began.elapsed(),
            landing,
            note,
        };
        self.say(format!(
            "kill #{} of {}: {:?}{}",
            self.kills.len() + 1,
            kill.victim,
            kill.landing,
            kill.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        self.kills.push(kill);
    }

    /// Restarts instances that exited on their own. An armed instance that aborted is the
    /// kill inside a commit the schedule asked for; any other exit is reported.
    fn check_exits(&mut self, app: &App) {
        for i in 0..self.instances.len() {
            let Some(status) = self.instances[i]
                .process
                .as_ref()
                .and_then(AppProcess::exit_status)
            else {
                continue;
            };
            self.instances[i].process = None;
            match self.instances[i].armed {
                Some(pass) if status.signal() == Some(libc::SIGABRT) => {
                    self.record_kill(KillKind::MidCommit, i, Landing::InCommit { pass }, None);
                    self.restart_after_kill(i, app);
                }
                _ => {
                    let inst = &self.instances[i];
                    let what = format!(
                        "{} (start #{}) exited with {} at {}; last log lines: {}",
                        inst.name,
                        inst.starts,
                        describe(status),
                        secs(self.began.elapsed()),
                        inst.log_tail(2)
                    );
                    self.say(format!("unexpected exit: {what}"));
                    self.unexpected_exits.push(what);
                    self.start(i, app, None, false);
                }
            }
        }
    }

    async fn produce(&mut self, records: &[TestRecord]) {
        self.produced += records.len();
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let key = r.key.as_deref().expect("keyed");
            let value = r.value.as_deref().unwrap_or_default();
            let mut record = FutureRecord::to(&self.input)
                .partition(partition_for_key(key, self.config.partitions))
                .timestamp(r.timestamp)
                .key(key)
                .payload(value);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((_, back)) => {
                        // The local queue is full: let deliveries drain it.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => panic!("producing the input failed: {e}"),
                Err(_) => panic!("producing the input failed: delivery canceled"),
            }
        }
    }

    /// Waits until the chaos run has committed all input produced so far but `slack`
    /// records, so that the next chunk's kill lands in that chunk's part of the input: kills
    /// spread over the whole input instead of all landing early while a backlog piles up.
    async fn wait_caught_up(&mut self, app: &App, slack: usize) {
        let deadline = Instant::now() + self.config.step_timeout;
        loop {
            self.check_exits(app);
            let partitions = self.config.partitions;
            let committed = blocking(|| committed(&self.group, &self.input, partitions));
            let done: i64 = committed.iter().flatten().map(|&o| o.max(0)).sum();
            if done as usize + slack >= self.produced {
                return;
            }
            if Instant::now() > deadline {
                self.note(format!(
                    "step {}: after {} the app had committed {done} of the {} records produced",
                    self.step + 1,
                    secs(self.config.step_timeout),
                    self.produced
                ));
                return;
            }
            tokio::time::sleep(POLL * 4).await;
        }
    }

    /// The running instances' active tasks, by instance.
    fn statuses(&self) -> Vec<Status> {
        self.instances.iter().map(Instance::status).collect()
    }

    /// Waits until the instances together run every task once, each instance some (when
    /// there are enough), and that has held for two seconds: the first instances to join
    /// get every task at first, and a victim's share of a chunk is drawn from its tasks.
    async fn wait_running(&mut self, app: &App, what: &str) {
        let deadline = Instant::now() + self.config.step_timeout;
        let mut stable: Option<(Vec<Vec<String>>, Instant)> = None;
        loop {
            self.check_exits(app);
            let owned: Vec<Vec<String>> = self
                .statuses()
                .into_iter()
                .map(|s| s.active.into_keys().collect())
                .collect();
            let covered = owned.iter().flatten().collect::<BTreeSet<_>>().len();
            let listed: usize = owned.iter().map(Vec::len).sum();
            let everyone = owned.len() > self.config.partitions as usize
                || owned.iter().all(|o| !o.is_empty());
            if covered == self.config.partitions as usize && listed == covered && everyone {
                match &stable {
                    Some((prev, since)) if *prev == owned => {
                        if since.elapsed() >= Duration::from_secs(2) {
                            self.say(format!("{what}: tasks running: {owned:?}"));
                            return;
                        }
                    }
                    _ => stable = Some((owned, Instant::now())),
                }
            } else {
                stable = None;
            }
            if Instant::now() > deadline {
                self.note(format!(
                    "{what}: the instances ran {covered} of {} tasks after {} (not balanced, or \
                     not stable)",
                    self.config.partitions,
                    secs(self.config.step_timeout)
                ));
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `who` (one instance, or all) processed `n` records more than `progress`
    /// had; returns the records processed and whether that was `n` in time.
    async fn wait_processed(
        &mut self,
        app: &App,
        who: Option<usize>,
        progress: &mut Progress,
        n: u64,
    ) -> (u64, bool) {
        let deadline = Instant::now() + self.config.step_timeout;
        loop {
            self.check_exits(app);
            let status = match who {
                Some(i) => self.instances[i].status(),
                None => {
                    // All instances' tasks as one: task ids are unique across instances.
                    let mut all = Status::default();
                    for s in self.statuses() {
                        all.active.extend(s.active);
                    }
                    all
                }
            };
            progress.observe(&status);
            if progress.total >= n {
                return (progress.total, true);
            }
            if Instant::now() > deadline {
                return (progress.total, false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The instance to kill while it processes: one that runs tasks, drawn at random.
    fn pick_victim(&mut self) -> usize {
        let busy: Vec<usize> = (0..self.instances.len())
            .filter(|&i| {
                self.instances[i].process.is_some() && !self.instances[i].status().active.is_empty()
            })
            .collect();
        if busy.is_empty() {
            self.rng.below(self.instances.len() as u64) as usize
        } else {
            busy[self.rng.below(busy.len() as u64) as usize]
        }
    }

    /// A kill while processing: the victim is killed once it processed a drawn number of the
    /// chunk's records.
    async fn kill_processing(&mut self, app: &App, chunk: &[TestRecord], planned: KillKind) {
        self.wait_caught_up(app, chunk.len() / 2).await;
        let victim = self.pick_victim();
        let status = self.instances[victim].status();
        let tasks = status.active.len().max(1) as u64;
        let share = chunk.len() as u64 * tasks / self.config.partitions as u64;
        let n = self.rng.between((share / 10).max(1), (share / 2).max(1));
        let mut progress = Progress::from(&status);
        self.produce(chunk).await;
        let (processed, met) = self
            .wait_processed(app, Some(victim), &mut progress, n)
            .await;
        let tasks: Vec<String> = self.instances[victim].status().active.into_keys().collect();
        self.kill(victim);
        let note = (!met).then(|| {
            format!(
                "killed after {} although only {processed} of the {n} records it was to wait \
                 for were processed",
                secs(self.config.step_timeout)
            )
        });
        self.record_kill(
            planned,
            victim,
            Landing::Processing { processed, tasks },
            note,
        );
        self.restart_after_kill(victim, app);
    }

    /// A kill mid-restore: the previous victim was restarted with its state deleted; it is
    /// killed as soon as its restore log shows a restore under way.
    async fn kill_mid_restore(&mut self, app: &App) {
        let victim = self.chained_victim;
        let deadline = Instant::now() + self.config.step_timeout;
        // (since when a restore is seen under way, records restored at which to kill)
        let mut under_way: Option<(Instant, u64)> = None;
        loop {
            if self.instances[victim]
                .process
                .as_ref()
                .and_then(AppProcess::exit_status)
                .is_some()
            {
                // Reported (and restarted) as an unexpected exit; the restore to kill is gone.
                self.check_exits(app);
                self.note(format!(
                    "the mid-restore kill of {} fell through: it exited during its restore",
                    self.instances[victim].name
                ));
                return;
            }
            let log = RestoreLog::read(&self.instances[victim].restore_log());
            if log.span() > 0 && log.unfinished() {
                let span = log.span();
                let (since, target) = *under_way
                    .get_or_insert_with(|| (Instant::now(), self.rng.between(1, span / 2)));
                // Kill once a drawn part of the restore is done, or once it has been under way
                // for a while (a restore can wait for a fetch).
                if log.restored() >= target || since.elapsed() >= Duration::from_secs(2) {
                    self.kill(victim);
                    let after = RestoreLog::read(&self.instances[victim].restore_log());
                    let (landing, note) = if after.unfinished() {
                        (
                            Landing::Restoring {
                                restored: after.restored(),
                                span: after.span(),
                            },
                            None,
                        )
                    } else {
                        (
                            Landing::Processing {
                                processed: 0,
                                tasks: Vec::new(),
                            },
                            Some(format!(
                                "the restore ({} records) was done by the time the kill landed",
                                after.restored()
                            )),
                        )
                    };
                    self.record_kill(KillKind::MidRestore, victim, landing, note);
                    self.restart_after_kill(victim, app);
                    return;
                }
            }
            // A task is listed once its restore is done.
            let status = self.instances[victim].status();
            let timed_out = Instant::now() > deadline;
            if !status.active.is_empty() || timed_out {
                let tasks: Vec<String> = status.active.keys().cloned().collect();
                let processed = status.processed();
                self.kill(victim);
                let note = if timed_out {
                    format!(
                        "no restore under way within {}",
                        secs(self.config.step_timeout)
                    )
                } else {
                    format!(
                        "its restore ({} changelog records) finished before a kill could land",
                        log.restored()
                    )
                };
                self.record_kill(
                    KillKind::MidRestore,
                    victim,
                    Landing::Processing { processed, tasks },
                    Some(note),
                );
                self.restart_after_kill(victim, app);
                return;
            }
            tokio::time::sleep(RESTORE_POLL).await;
        }
    }

    /// A kill inside a commit: the previous victim runs with the fault hook armed and is
    /// expected to abort at its armed commit pass, while it processes the chunk.
    async fn kill_in_commit(&mut self, app: &App, chunk: &[TestRecord]) {
        let victim = self.chained_victim;
        let kills_before = self.kills.len();
        let armed = self.instances[victim].armed;
        let pass = armed.unwrap_or(0);
        self.wait_caught_up(app, chunk.len() / 2).await;
        if self.kills.len() > kills_before {
            // It aborted while the app caught up; the chunk is still part of the input.
            self.produce(chunk).await;
            return;
        }
        self.produce(chunk).await;
        let deadline = Instant::now() + self.config.step_timeout;
        let commit_interval = Duration::from_millis(self.config.commit_interval_ms);
        // Once the victim processes, its commits come every commit interval: allow ten more
        // than the armed pass, and some slack for a slow machine.
        let allowance = commit_interval * (pass + 10) + Duration::from_secs(5);
        let mut processing_since: Option<Instant> = None;
        let mut progress = Progress::default();
        loop {
            self.check_exits(app);
            if self.kills.len() > kills_before {
                return;
            }
            let status = self.instances[victim].status();
            progress.observe(&status);
            if progress.total > 0 {
                processing_since.get_or_insert_with(Instant::now);
            }
            let waited_out = processing_since.is_some_and(|s| s.elapsed() >= allowance);
            if waited_out || Instant::now() > deadline {
                let tasks: Vec<String> = status.active.keys().cloned().collect();
                self.kill(victim);
                let note = match armed {
                    Some(pass) => format!(
                        "no abort at commit pass {pass} after processing for {}: the app was \
                         built without the framework's fault-injection feature",
                        secs(processing_since.map(|s| s.elapsed()).unwrap_or_default())
                    ),
                    None => "the victim was not armed: it had been restarted after an \
                             unexpected exit"
                        .to_string(),
                };
                self.record_kill(
                    KillKind::MidCommit,
                    victim,
                    Landing::Processing {
                        processed: progress.total,
                        tasks,
                    },
                    Some(note),
                );
                self.restart_after_kill(victim, app);
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A broker restart while the app processes the chunk.
    async fn outage(&mut self, app: &App, chunk: &[TestRecord], length: Duration) {
        self.wait_caught_up(app, chunk.len() / 2).await;
        let mut all = Status::default();
        for s in self.statuses() {
            all.active.extend(s.active);
        }
        let mut progress = Progress::from(&all);
        let c = chunk.len() as u64;
        let n = self.rng.between((c / 10).max(1), (c / 2).max(1));
        self.produce(chunk).await;
        let (processed, met) = self.wait_processed(app, None, &mut progress, n).await;
        if !met {
            self.note(format!(
                "the broker restart began after {} with only {processed} of {n} records processed",
                secs(self.config.step_timeout)
            ));
        }
        let at = self.began.elapsed();
        let stop_began = Instant::now();
        self.say(format!("broker stops for {}", secs(length)));
        blocking(|| self.broker.stop());
        let stopped = Instant::now();
        while stopped.elapsed() < length {
            self.check_exits(app);
            tokio::time::sleep(POLL.min(length.saturating_sub(stopped.elapsed()))).await;
        }
        let down = stopped.elapsed();
        blocking(|| self.broker.start_again());
        let outage = Outage {
            planned: length,
            at,
            down,
            unavailable: stop_began.elapsed(),
            processed_before: processed,
        };
        self.say(format!("broker is back: {outage:?}"));
        self.outages.push(outage);
    }

    /// Waits until `app` committed every input offset and its outputs stopped changing.
    async fn wait_finished(&mut self, app: &App, what: &str, watch_exits: bool) -> bool {
        let partitions = self.config.partitions;
        let group: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .set("group.id", &app.id)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer config is valid");
        let deadline = Instant::now() + self.config.finish_timeout;
        let mut settled: Option<(Vec<i64>, Instant)> = None;
        let mut last_report = Instant::now();
        loop {
            if watch_exits {
                self.check_exits(app);
            }
            let (ends, committed, outputs) = blocking(|| {
                (
                    high_watermarks(&self.probe, &self.input, partitions),
                    committed(&group, &self.input, partitions),
                    high_watermarks(&self.probe, &app.output, partitions).and_then(|mut a| {
                        a.extend(high_watermarks(&self.probe, &app.join_output, partitions)?);
                        Some(a)
                    }),
                )
            });
            let done = ends.is_some() && ends == committed;
            match (done, outputs) {
                (true, Some(marks)) => match &settled {
                    Some((prev, since)) if *prev == marks => {
                        if since.elapsed() >= Duration::from_secs(2) {
                            self.say(format!(
                                "{what}: every input offset committed, output settled"
                            ));
                            return true;
                        }
                    }
                    _ => settled = Some((marks, Instant::now())),
                },
                _ => settled = None,
            }
            if last_report.elapsed() >= Duration::from_secs(30) {
                last_report = Instant::now();
                self.say(format!(
                    "{what}: waiting to finish: committed {committed:?} of {ends:?}"
                ));
            }
            if Instant::now() > deadline {
                self.note(format!(
                    "{what} did not finish within {}: committed offsets {committed:?}, input \
                     ends {ends:?}",
                    secs(self.config.finish_timeout)
                ));
                return false;
            }
            tokio::time::sleep(POLL * 4).await;
        }
    }

    fn stop_all(&mut self) {
        for inst in &mut self.instances {
            if let Some(p) = inst.process.take() {
                p.kill();
            }
        }
    }
}

fn high_watermarks(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Option<Vec<i64>> {
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .ok()
                .map(|(_, high)| high)
        })
        .collect()
}

fn committed(group: &BaseConsumer, topic: &str, partitions: i32) -> Option<Vec<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = group.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    (0..partitions)
        .map(|p| match offsets.find_partition(topic, p)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => Some(-1),
        })
        .collect()
}

/// Reads `topic` from the start (`read_committed`) to the end of every partition.
fn read_output(
    servers: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<Vec<TestRecord>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", topics::unique_name("chaos-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| format!("cannot read {topic}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| format!("cannot read {topic}: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("cannot read {topic}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut at_end = BTreeSet::new();
    let mut out = Vec::new();
    while at_end.len() < partitions as usize {
        if Instant::now() > deadline {
            return Err(format!(
                "{topic}: {} records read, but only {} of {partitions} partitions reached their \
                 end within {}",
                out.len(),
                at_end.len(),
                secs(timeout)
            ));
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push(TestRecord {
                    partition: Some(m.partition()),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis().unwrap_or(-1),
                    headers: Vec::new(),
                    offset: m.offset(),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            // Transient client errors: librdkafka retries by itself.
            Some(Err(_)) | None => {}
        }
    }
    Ok(out)
}

type Row = (Vec<u8>, Vec<u8>, i64);

fn rows(records: &[TestRecord]) -> BTreeMap<Row, usize> {
    let mut rows = BTreeMap::new();
    for r in records {
        let row = (
            r.key.clone().unwrap_or_default(),
            r.value.clone().unwrap_or_default(),
            r.timestamp,
        );
        *rows.entry(row).or_insert(0) += 1;
    }
    rows
}

/// Per key, the (value, timestamp) sequence in output order.
fn sequences(records: &[TestRecord]) -> BTreeMap<Vec<u8>, Vec<(Vec<u8>, i64)>> {
    let mut keys: BTreeMap<Vec<u8>, Vec<(Vec<u8>, i64)>> = BTreeMap::new();
    for r in records {
        keys.entry(r.key.clone().unwrap_or_default())
            .or_default()
            .push((r.value.clone().unwrap_or_default(), r.timestamp));
    }
    keys
}

/// A readable output record: window counts decoded, join results as text.
fn show(counts: bool, (key, value, ts): &Row) -> String {
    if counts && key.len() >= 16 && value.len() == 8 {
        let record = TestRecord {
            partition: None,
            key: Some(key.clone()),
            value: Some(value.clone()),
            timestamp: *ts,
            headers: Vec::new(),
            offset: -1,
        };
        let ((k, start), _, count) = hopping::decode(&record);
        format!("{k} window {start}: {count} (ts {ts})")
    } else {
        format!(
            "{}: {} (ts {ts})",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(value)
        )
    }
}

/// Record for record: the same multiset, and per key the same sequence.
fn compare_exact(
    output: &str,
    counts: bool,
    reference: &[TestRecord],
    chaos: &[TestRecord],
) -> Comparison {
    let (want, got) = (rows(reference), rows(chaos));
    let mut examples = Vec::new();
    let mut missing = 0;
    for (row, &n) in &want {
        let m = got.get(row).copied().unwrap_or(0);
        if n > m {
            missing += n - m;
            if examples.len() < 5 {
                examples.push(format!("missing {}× {}", n - m, show(counts, row)));
            }
        }
    }
    let mut extra = 0;
    let mut shown = 0;
    for (row, &n) in &got {
        let m = want.get(row).copied().unwrap_or(0);
        if n > m {
            extra += n - m;
            if shown < 5 {
                shown += 1;
                examples.push(format!("extra {}× {}", n - m, show(counts, row)));
            }
        }
    }
    let (want_keys, got_keys) = (sequences(reference), sequences(chaos));
    let mut out_of_order = 0;
    for (key, seq) in &want_keys {
        let other = got_keys.get(key);
        if other != Some(seq) {
            let mut a = seq.clone();
            let mut b = other.cloned().unwrap_or_default();
            a.sort();
            b.sort();
            // Same records in another order; differing records are counted above.
            if a == b {
                out_of_order += 1;
                if out_of_order <= 3 {
                    examples.push(format!(
                        "key {} has its records in another order",
                        String::from_utf8_lossy(key)
                    ));
                }
            }
        }
    }
    Comparison {
        output: output.to_string(),
        exact: true,
        reference_records: reference.len(),
        chaos_records: chaos.len(),
        missing,
        extra,
        keys_out_of_order: out_of_order,
        examples,
    }
}

/// At-least-once: every reference record is there; window counts at least as high.
fn compare_at_least(
    output: &str,
    counts: bool,
    reference: &[TestRecord],
    chaos: &[TestRecord],
) -> Comparison {
    let mut examples = Vec::new();
    let (mut missing, extra);
    if counts {
        let highest = |records: &[TestRecord]| {
            let mut windows: BTreeMap<(String, i64), i64> = BTreeMap::new();
            for r in records {
                let (window, _, count) = hopping::decode(r);
                let c = windows.entry(window).or_insert(count);
                *c = (*c).max(count);
            }
            windows
        };
        let (want, got) = (highest(reference), highest(chaos));
        missing = 0;
        for (window, &n) in &want {
            let m = got.get(window).copied();
            if m.is_none_or(|m| m < n) {
                missing += 1;
                if examples.len() < 5 {
                    examples.push(format!(
                        "{} window {}: reference {n}, chaos run {m:?}",
                        window.0, window.1
                    ));
                }
            }
        }
        extra = chaos.len().saturating_sub(reference.len());
    } else {
        let (want, got) = (rows(reference), rows(chaos));
        missing = 0;
        for row in want.keys() {
            if !got.contains_key(row) {
                missing += 1;
                if examples.len() < 5 {
                    examples.push(format!("missing {}", show(counts, row)));
                }
            }
        }
        extra = chaos.len().saturating_sub(reference.len() - missing);
    }
    Comparison {
        output: output.to_string(),
        exact: false,
        reference_records: reference.len(),
        chaos_records: chaos.len(),
        missing,
        extra,
        keys_out_of_order: 0,
        examples,
    }
}

/// How the reference's window counts differ from `want`, if they do.
fn check_model(reference: &[TestRecord], want: &BTreeMap<(String, i64), i64>) -> Option<String> {
    let mut got = BTreeMap::new();
    let mut twice = 0;
    for r in reference {
        let (window, end, count) = hopping::decode(r);
        if end != window.1 + ms(WINDOW_SIZE) {
            return Some(format!("window {window:?} has end {end}"));
        }
        twice += usize::from(got.insert(window, count).is_some());
    }
    let missing = want.keys().filter(|w| !got.contains_key(*w)).count();
    let wrong: Vec<_> = want
        .iter()
        .filter_map(|(w, n)| got.get(w).filter(|g| *g != n).map(|g| (w.clone(), *n, *g)))
        .collect();
    let unexpected = got.keys().filter(|w| !want.contains_key(*w)).count();
    (twice + missing + wrong.len() + unexpected > 0).then(|| {
        format!(
            "of {} windows, {missing} missing, {} with wrong counts (window, want, got; e.g. \
             {:?}), {unexpected} not expected, {twice} emitted more than once",
            want.len(),
            wrong.len(),
            &wrong[..wrong.len().min(3)]
        )
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the chaos run of `config` and its reference, and compares them (see the module
/// documentation). Panics only when the harness itself cannot work (no Docker, no broker
/// image, input that cannot be produced).
pub async fn run(config: &ChaosConfig) -> ChaosReport {
    if let Err(e) = config.check() {
        panic!("invalid chaos configuration: {e}");
    }
    let began = Instant::now();
    let work = config
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(topics::unique_name("chaos")));
    std::fs::create_dir_all(&work)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", work.display()));
    let broker = blocking(StoppableBroker::start);
    let servers = broker.bootstrap_servers.clone();
    let input_topic = topics::unique_name("chaos-in");
    let chaos_app = App {
        id: topics::unique_name("chaos-app"),
        output: topics::unique_name("chaos-counts"),
        join_output: topics::unique_name("chaos-joined"),
    };
    let reference_app = App {
        id: topics::unique_name("chaos-reference"),
        output: topics::unique_name("chaos-reference-counts"),
        join_output: topics::unique_name("chaos-reference-joined"),
    };
    for t in [
        &input_topic,
        &chaos_app.output,
        &chaos_app.join_output,
        &reference_app.output,
        &reference_app.join_output,
    ] {
        topics::create(&servers, t, config.partitions).await;
    }

    // Event time ends well before now (the broker keeps records by their age) and begins
    // within a day of it (the window changelogs' retention).
    let span = STEP_MS * config.records as i64;
    let t0 = (now_ms() - span - 2 * 3_600_000) / ms(WINDOW_SIZE) * ms(WINDOW_SIZE);
    let records = input(config.seed, config.records, config.keys, t0);
    let last_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(t0);
    let closers = hopping::closers(last_ts, config.partitions);
    let mut everything = records.clone();
    everything.extend(closers.iter().cloned());
    let want_counts = expected_counts(&everything, config.partitions);

    let mut rng = Rng::new(config.seed);
    let steps = plan(config, &mut rng);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer config is valid");
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .expect("consumer config is valid");
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("group.id", &chaos_app.id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer config is valid");
    let instances = (0..config.instances)
        .map(|i| Instance::new(&work, &format!("chaos-{i}")))
        .collect();
    let mut runner = Runner {
        config,
        rng,
        broker,
        servers: servers.clone(),
        input: input_topic.clone(),
        work: work.clone(),
        instances,
        producer,
        probe,
        group,
        produced: 0,
        steps: steps.clone(),
        step: 0,
        chained_victim: 0,
        began: Instant::now(),
        kills: Vec::new(),
        outages: Vec::new(),
        unexpected_exits: Vec::new(),
        notes: Vec::new(),
    };
    runner.say(format!(
        "{} records, {} keys, {} partitions, {} instances, {}; schedule: {steps:?}; logs in {}",
        config.records,
        config.keys,
        config.partitions,
        config.instances,
        if config.exactly_once {
            "exactly-once"
        } else {
            "at-least-once"
        },
        runner.work.display()
    ));

    // The chaos run. Every step but a mid-restore kill gets a chunk of input, and one more
    // chunk follows the last step.
    let chunks = steps
        .iter()
        .filter(|s| **s != Step::Kill(KillKind::MidRestore))
        .count()
        + 1;
    let chunk = |k: usize| &records[records.len() * k / chunks..records.len() * (k + 1) / chunks];
    for i in 0..config.instances {
        runner.start(i, &chaos_app, None, true);
    }
    runner.wait_running(&chaos_app, "chaos run").await;
    let mut next_chunk = 0;
    for (i, step) in steps.iter().enumerate() {
        runner.step = i;
        runner.say(format!("step {} of {}: {step:?}", i + 1, steps.len()));
        match step {
            Step::Kill(KillKind::MidRestore) => runner.kill_mid_restore(&chaos_app).await,
            Step::Kill(kind) => {
                let records = chunk(next_chunk);
                next_chunk += 1;
                match kind {
                    KillKind::MidCommit => runner.kill_in_commit(&chaos_app, records).await,
                    _ => runner.kill_processing(&chaos_app, records, *kind).await,
                }
            }
            Step::Outage(length) => {
                let records = chunk(next_chunk);
                next_chunk += 1;
                runner.outage(&chaos_app, records, *length).await;
            }
        }
    }
    runner.step = steps.len();
    runner.produce(chunk(next_chunk)).await;
    runner.produce(&closers).await;
    runner.say("all input produced; waiting for the chaos run to finish it");
    let chaos_finished = runner.wait_finished(&chaos_app, "chaos run", true).await;
    let chaos_time = runner.began.elapsed();
    runner.stop_all();

    // The reference: one instance, never disturbed.
    let reference_began = Instant::now();
    runner.instances = vec![Instance::new(&work, "reference")];
    runner.start(0, &reference_app, None, true);
    let reference_finished = runner
        .wait_finished(&reference_app, "reference run", false)
        .await;
    let reference_time = reference_began.elapsed();
    if let Some(status) = runner.instances[0]
        .process
        .as_ref()
        .and_then(AppProcess::exit_status)
    {
        let what = format!(
            "the reference exited with {}; last log lines: {}",
            describe(status),
            runner.instances[0].log_tail(2)
        );
        runner.unexpected_exits.push(what);
    }
    runner.stop_all();

    runner.say("reading the outputs back");
    let read_timeout = config.finish_timeout.max(Duration::from_secs(120));
    let mut comparisons = Vec::new();
    let mut read_errors = Vec::new();
    let mut model_mismatch = None;
    for (label, counts, theirs, ours) in [
        (
            "window counts",
            true,
            &reference_app.output,
            &chaos_app.output,
        ),
        (
            "join results",
            false,
            &reference_app.join_output,
            &chaos_app.join_output,
        ),
    ] {
        let read = blocking(|| {
            Ok::<_, String>((
                read_output(&servers, theirs, config.partitions, read_timeout)?,
                read_output(&servers, ours, config.partitions, read_timeout)?,
            ))
        });
        match read {
            Ok((reference, chaos)) => {
                if counts {
                    model_mismatch = check_model(&reference, &want_counts);
                }
                comparisons.push(if config.exactly_once {
                    compare_exact(label, counts, &reference, &chaos)
                } else {
                    compare_at_least(label, counts, &reference, &chaos)
                });
            }
            Err(e) => read_errors.push(e),
        }
    }
    for inst in &runner.instances {
        let _ = std::fs::remove_dir_all(&inst.state_dir);
    }
    for i in 0..config.instances {
        let _ = std::fs::remove_dir_all(work.join(format!("chaos-{i}-state")));
    }
    ChaosReport {
        guarantee: if config.exactly_once {
            "exactly-once"
        } else {
            "at-least-once"
        },
        records: config.records,
        closers: closers.len(),
        keys: config.keys,
        partitions: config.partitions,
        instances: config.instances,
        seed: config.seed,
        steps,
        kills: runner.kills,
        outages: runner.outages,
        unexpected_exits: runner.unexpected_exits,
        notes: runner.notes,
        chaos_finished,
        reference_finished,
        comparisons,
        model_mismatch,
        read_errors,
        chaos_time,
        reference_time,
        total_time: began.elapsed(),
        work_dir: work,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_chains_special_kills_to_a_kill_before_them() {
        let config = ChaosConfig::issue("app");
        for seed in 0..50 {
            let steps = plan(&config, &mut Rng::new(seed));
            assert_eq!(steps.len(), 23);
            assert!(!is_chained(steps[0]), "{steps:?}");
            for w in steps.windows(2) {
                if is_chained(w[1]) {
                    assert!(matches!(w[0], Step::Kill(_)), "{steps:?}");
                }
            }
            let kills: Vec<&Step> = steps
                .iter()
                .filter(|s| matches!(s, Step::Kill(_)))
                .collect();
            assert_eq!(kills.len(), 20);
            assert!(kills[..10]
                .iter()
                .all(|s| **s != Step::Kill(KillKind::MidRestore)));
        }
    }

    #[test]
    fn expected_counts_leave_out_late_records_and_open_windows() {
        let r = |key: &str, ts| TestRecord::new(key, b"L".to_vec(), ts);
        let records = vec![
            r("a", 1_000),
            r("a", 9_000),
            r("a", 15_000),
            // Stream time 15 s: the window [0, 10 s) closed at 12 s, this one is late.
            r("a", 5_000),
            r("a", 30_000),
        ];
        let counts = expected_counts(&records, 1);
        let want: BTreeMap<(String, i64), i64> =
            [(("a".to_string(), 0), 2), (("a".to_string(), 10_000), 1)].into();
        assert_eq!(counts, want);
    }

    #[test]
    fn progress_counts_across_a_task_that_starts_again() {
        let status = |n: u64| Status {
            active: [("0_0".to_string(), n)].into(),
        };
        let mut p = Progress::from(&status(100));
        p.observe(&status(150));
        p.observe(&status(20));
        assert_eq!(p.total, 70);
    }

    #[test]
    fn a_restore_log_tells_an_unfinished_restore_from_a_finished_one() {
        let path = std::env::temp_dir().join(topics::unique_name("restore-log"));
        let started = "state Rebalancing\nstart c:0 s 0 1000\nstart c:1 s 0 10\n";
        std::fs::write(&path, format!("{started}batch c:0 s 499 500\n")).unwrap();
        let log = RestoreLog::read(&path);
        assert!(log.unfinished());
        assert_eq!((log.restored(), log.span()), (500, 1010));
        // No `end` event (the changelog ends with a transaction marker), but running.
        std::fs::write(
            &path,
            format!("{started}batch c:0 s 998 999\nbatch c:1 s 8 9\nstate Running\n"),
        )
        .unwrap();
        assert!(!RestoreLog::read(&path).unfinished());
        std::fs::write(&path, "state Rebalancing\nstate Running\n").unwrap();
        assert!(!RestoreLog::read(&path).unfinished(), "nothing to restore");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn exact_comparison_finds_missing_extra_and_reordered_records() {
        let r = |key: &str, v: &str, ts| TestRecord::new(key, v.as_bytes().to_vec(), ts);
        let reference = vec![r("a", "1", 1), r("a", "2", 2), r("b", "1", 1)];
        let same = compare_exact("x", false, &reference, &reference);
        assert!(same.ok(), "{same:?}");
        let chaos = vec![
            r("a", "2", 2),
            r("a", "1", 1),
            r("b", "1", 1),
            r("b", "1", 1),
        ];
        let c = compare_exact("x", false, &reference, &chaos);
        assert_eq!((c.missing, c.extra, c.keys_out_of_order), (0, 1, 1));
        let alo = compare_at_least("x", false, &reference, &chaos);
        assert!(alo.ok());
        let lost = compare_at_least("x", false, &reference, &chaos[1..]);
        assert_eq!(lost.missing, 1);
    }
}
