//! The benchmark runner: streamtime side by side with Kafka Streams (Java) and a raw rdkafka
//! loop, on one broker, with CPU time read from the OS.
//!
//! ```text
//! cargo build --release -p streamtime-bench --bins
//! target/release/streamtime-bench --out bench-results.md
//! ```
//!
//! It gets a broker (`KAFKA_BOOTSTRAP_SERVERS` or a container of the local image), preloads the
//! input topics once, then runs every (workload, guarantee, contender) as a separate process
//! with a fresh application id and output topic. Each contender prints `bench-app: begin` at
//! its first input record (restore: just before it starts) and `bench-app: end` when it is done
//! (after the closing commit; restore: when every store is restored). The runner samples the
//! child's CPU time (`/proc/<pid>/stat`, utime + stime of all threads) at both lines and reads
//! the whole process's CPU from `wait4`'s rusage when it exits. With two or more cores and a
//! container broker, the broker (and this runner) are pinned to core 0 and the contender to
//! core 1 with `taskset`.
//!
//! With `--latency-workloads`, it then measures end-to-end latency at a fixed input rate (see
//! `latency.rs`): half the lower of the two frameworks' measured rates unless
//! `--latency-rate` says otherwise, the same rate for both.
//!
//! To profile streamtime, set `STREAMTIME_BENCH_WRAP` to a command prefix (for example
//! `perf record -F 999 -g -o streamtime.perf.data --`); the streamtime contender then runs
//! under it (and its figures are the wrapper's).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use latency::Percentiles;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use streamtime::partitioner::partition_for_key;
use streamtime_integration_tests::kafka::{broker, BrokerMode};
use streamtime_integration_tests::topics;

mod latency;

#[derive(Parser)]
#[command(about = "streamtime vs Kafka Streams vs a raw rdkafka loop, CPU from the OS")]
struct Args {
    /// Input records of the pass-through workload.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Input records of the keyed and windowed count workloads.
    #[arg(long, default_value_t = 500_000)]
    state_records: u64,
    /// Distinct keys in the input.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Partitions of every input and output topic (= tasks).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Changelog entries (distinct keys) of the restore workload.
    #[arg(long, default_value_t = 1_000_000)]
    restore_entries: u64,
    /// Comma-separated: pass, count, hopping (emitting every update), hopping-final (emitting
    /// each window once, when it closes), rekey-hopping (hopping behind a repartition topic),
    /// rekey-hopping-watermarks (the same with watermarks; streamtime only), session,
    /// session-final, stream-stream-join, stream-table-join, table-group-by (a table regrouped
    /// and counted with a subtractor), fk-join (a table joined by a foreign key with the
    /// stream-table join's table), restore.
    #[arg(long, default_value = DEFAULT_WORKLOADS)]
    workloads: String,
    /// Comma-separated: at-least-once, exactly-once, or either with another commit interval
    /// such as `at-least-once@100ms` (the restore workload ignores it).
    #[arg(long, default_value = "at-least-once,exactly-once")]
    guarantees: String,
    /// Comma-separated: streamtime, kstreams, raw (raw runs the pass-through workload only).
    #[arg(long, default_value = "streamtime,kstreams,raw")]
    contenders: String,
    /// Markdown file the results go to (they are printed too).
    #[arg(long, default_value = "bench-results.md")]
    out: PathBuf,
    /// A heading for the table, such as "before" or "after".
    #[arg(long, default_value = "results")]
    label: String,
    /// Directory holding `streamtime-bench-app` and `streamtime-bench-raw` (default: this
    /// binary's directory).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Do not pin the broker and the contenders to cores.
    #[arg(long)]
    no_pin: bool,
    /// Give up on a contender run after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Write-back cache of both frameworks' stores, bytes (Kafka Streams' default: 10 MiB).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    cache_bytes: u64,
    /// Producer linger of every contender, ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Runs of every (workload, guarantee, contender), interleaved round by round with the
    /// contenders' order rotated; ratios use each one's median CPU per record.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Extra consumer setting `name=value` for the streamtime contender (repeatable), for
    /// tuning experiments.
    #[arg(long)]
    streamtime_consumer_config: Vec<String>,
    /// Stream threads of every contender.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated workloads (pass, hopping) whose end-to-end latency is measured at a
    /// fixed input rate after the throughput runs; none by default.
    #[arg(long, default_value = "")]
    latency_workloads: String,
    /// Guarantees of the latency runs.
    #[arg(long, default_value = "at-least-once@100ms,exactly-once")]
    latency_guarantees: String,
    /// Input rate of the latency runs, records/s (default: half the lower of the contenders'
    /// median rates for the workload in this run's throughput results).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// Length of each latency run, seconds of input.
    #[arg(long, default_value_t = 30)]
    latency_secs: u64,
    /// Outputs of inputs produced in the first seconds of a latency run are left out.
    #[arg(long, default_value_t = 5)]
    latency_warmup_secs: u64,
}

const DEFAULT_WORKLOADS: &str = "pass,count,hopping,hopping-final,rekey-hopping,\
rekey-hopping-watermarks,session,session-final,stream-stream-join,stream-table-join,\
table-group-by,fk-join,restore";

/// Workloads reading the keyed input of `--state-records` records.
const STATE_WORKLOADS: [&str; 11] = [
    "count",
    "hopping",
    "hopping-final",
    "rekey-hopping",
    "rekey-hopping-watermarks",
    "session",
    "session-final",
    "stream-stream-join",
    "stream-table-join",
    "table-group-by",
    "fk-join",
];

/// Whether `contender` can run `workload`: the raw loop only passes records through, and
/// Kafka Streams has no watermarks.
fn runs(contender: &str, workload: &str) -> bool {
    match contender {
        "raw" => workload == "pass",
        "kstreams" => !workload.ends_with("-watermarks"),
        _ => true,
    }
}

/// A command the streamtime contender runs under, such as `perf record -g -o st.data --`, to
/// profile it. The figures of such a run describe the wrapper, not the app.
const WRAP_ENV: &str = "STREAMTIME_BENCH_WRAP";

/// One measured contender run.
#[derive(Debug, Clone)]
struct Measurement {
    workload: String,
    guarantee: String,
    contender: String,
    /// 1-based round of `--rounds`.
    round: usize,
    /// Input records (restore: changelog entries).
    records: u64,
    /// From `begin` to `end`.
    wall: Duration,
    /// CPU seconds between `begin` and `end`.
    cpu_phase: f64,
    /// CPU seconds of the whole process (start-up and shutdown included).
    cpu_total: f64,
    /// Records on the output topic afterwards (offsets, transaction markers included).
    output: Option<i64>,
    /// Committed records on the output topic (pass-through only).
    committed: Option<u64>,
    /// Largest resident set size of the process (every thread, the JVM's heap and native
    /// memory alike) sampled every 200 ms, MiB.
    rss_peak_mib: Option<f64>,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu_phase * 1e6 / self.records.max(1) as f64
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of every thread of `pid` (dead ones included), in seconds.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of the man page, counting from 3 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_sec())
}

/// Waits for `pid` (which must be our child) until `deadline`; returns its exit status and the
/// CPU seconds its rusage reports, or `None` at the deadline.
fn wait_child(pid: u32, deadline: Instant) -> Option<(i32, f64)> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data written by the kernel; pid is our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as i32 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -libc::WTERMSIG(status)
            };
            return Some((code, secs(usage.ru_utime) + secs(usage.ru_stime)));
        }
        if r < 0 || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How contenders are started.
struct Launcher {
    /// `taskset -c 1` in front of every contender, when pinning.
    pin_app: Option<String>,
    bin_dir: PathBuf,
    java_classpath: Option<String>,
    log_dir: PathBuf,
    timeout: Duration,
}

impl Launcher {
    fn command(&self, contender: &str, args: &[(String, String)]) -> Command {
        let mut argv: Vec<String> = Vec::new();
        match contender {
            "streamtime" => argv.push(
                self.bin_dir
                    .join("streamtime-bench-app")
                    .display()
                    .to_string(),
            ),
            "raw" => argv.push(
                self.bin_dir
                    .join("streamtime-bench-raw")
                    .display()
                    .to_string(),
            ),
            "kstreams" => {
                argv.extend([
                    "java".to_string(),
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".to_string(),
                    "-cp".to_string(),
                    self.java_classpath
                        .clone()
                        .expect("kstreams-bench is built"),
                    "io.streamtime.bench.KStreamsBench".to_string(),
                ]);
            }
            other => panic!("unknown contender {other}"),
        }
        for (k, v) in args {
            argv.push(format!("--{k}"));
            argv.push(v.clone());
        }
        if contender == "streamtime" {
            if let Ok(wrap) = std::env::var(WRAP_ENV) {
                let mut wrapped: Vec<String> = wrap.split_whitespace().map(String::from).collect();
                wrapped.append(&mut argv);
                argv = wrapped;
            }
        }
        let mut command = match &self.pin_app {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", core]).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        command
    }

    /// Runs one contender to its `end` line; returns (wall, phase CPU, total CPU).
    ///
    /// `ready`, if given, hears of the contender's `ready` line (its instance runs).
    fn run(
        &self,
        name: &str,
        contender: &str,
        args: &[(String, String)],
        ready: Option<mpsc::Sender<()>>,
    ) -> Result<(Duration, f64, f64, Option<f64>), String> {
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut command = self.command(contender, args);
        command.stderr(log);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {contender}: {e}"))?;
        let pid = child.id();
        let rss = sample_rss(pid, Duration::from_millis(200));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Samples are taken the moment a line arrives, so the reader does nothing else.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(what) = line.strip_prefix("bench-app: ") {
                    if what == "ready" {
                        if let Some(ready) = &ready {
                            let _ = ready.send(());
                        }
                    }
                    let sample = (Instant::now(), process_cpu(pid));
                    let _ = tx.send((what.to_string(), sample));
                }
            }
        });
        let deadline = Instant::now() + self.timeout;
        let Some((code, cpu_total)) = wait_child(pid, deadline) else {
            let _ = child.kill();
            let _ = wait_child(pid, Instant::now() + Duration::from_secs(10));
            return Err(format!(
                "{name}: no exit within {:?}; log: {}",
                self.timeout,
                log_path.display()
            ));
        };
        // The child's stdout is closed now; the reader has sent everything it will.
        let lines: Vec<_> = rx.iter().collect();
        if code != 0 {
            return Err(format!(
                "{name}: exit status {code}; log: {}\n{}",
                log_path.display(),
                tail(&log_path, 20)
            ));
        }
        let begin = lines.iter().find(|(w, _)| w == "begin").map(|(_, s)| *s);
        let end = lines
            .iter()
            .find(|(w, _)| w.starts_with("end"))
            .map(|(_, s)| *s);
        match (begin, end) {
            (Some((t0, Some(c0))), Some((t1, c1))) => {
                // The end sample may miss a process that exits right after the line; then
                // rusage (everything up to the exit) stands in.
                let c1 = c1.unwrap_or(cpu_total);
                let rss_peak = rss.join().ok().flatten();
                Ok((t1 - t0, (c1 - c0).max(0.0), cpu_total, rss_peak))
            }
            _ => Err(format!(
                "{name}: missing begin/end lines (got {:?}); log: {}",
                lines.iter().map(|(w, _)| w).collect::<Vec<_>>(),
                log_path.display()
            )),
        }
    }
}

/// Samples the resident set size of process `pid` every `every` until it exits; the
/// largest sample, MiB.
fn sample_rss(pid: u32, every: Duration) -> std::thread::JoinHandle<Option<f64>> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak: Option<f64> = None;
        // An exited process (a zombie until reaped) has no VmRSS line.
        while let Some(kib) = std::fs::read_to_string(&path).ok().and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
        }) {
            let mib = kib / 1024.0;
            peak = Some(peak.map_or(mib, |p| p.max(mib)));
            std::thread::sleep(every);
        }
        peak
    })
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Produces `count` keyed records of 100 bytes to `topic` as fast as librdkafka allows:
/// key `key-<i mod keys>`, value starting with `a`..`j` (so a filter on `j` drops a tenth),
/// timestamps 1 ms apart ending about now.
fn preload(servers: &str, topic: &str, count: u64, keys: u64, partitions: i32) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("loader config is valid");
    let base = now_ms() - count as i64 - 60_000;
    let started = Instant::now();
    let mut key = String::new();
    let mut value = [0u8; 100];
    for i in 0..count {
        input_record(i, keys, &mut key, &mut value);
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .key(key.as_bytes())
            .payload(&value)
            .partition(partition_for_key(key.as_bytes(), partitions))
            .timestamp(base + i as i64);
        send_waiting(&producer, record, topic);
        if i % 250_000 == 249_999 {
            tracing::info!(topic, produced = i + 1, of = count, "preloading");
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("preload flush");
    tracing::info!(topic, count, elapsed = ?started.elapsed(), "preloaded");
}

/// Input record `i`: key `key-<i mod keys>`, a 100-byte value starting with `a`..`j` (so a
/// filter on `j` drops a tenth) followed by letters.
pub(crate) fn input_record(i: u64, keys: u64, key: &mut String, value: &mut [u8; 100]) {
    key.clear();
    let _ = write!(key, "key-{:07}", i % keys);
    value[0] = b'a' + (i % 10) as u8;
    for (j, b) in value.iter_mut().enumerate().skip(1) {
        *b = b'a' + ((i as usize + j * 7) % 26) as u8;
    }
}

/// Sends `record`, waiting while the producer's queue is full; any other error ends the run,
/// naming `topic`.
pub(crate) fn send_waiting(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
    topic: &str,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.poll(Duration::from_millis(1));
                record = r;
            }
            Err((e, _)) => panic!("producing to {topic} failed: {e}"),
        }
    }
}

/// Produces one row of 8 bytes (`value(i)`, big-endian) for each of `entries` keys
/// (`name(i)`), all stamped `ts`.
fn preload_rows(
    (servers, topic, partitions): (&str, &str, i32),
    entries: u64,
    name: impl Fn(&mut String, u64),
    value: impl Fn(u64) -> i64,
    ts: i64,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("loader config is valid");
    let mut key = String::new();
    for i in 0..entries {
        key.clear();
        name(&mut key, i);
        let value = value(i).to_be_bytes();
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .key(key.as_bytes())
            .payload(&value)
            .partition(partition_for_key(key.as_bytes(), partitions))
            .timestamp(ts);
        send_waiting(&producer, record, topic);
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("preload flush");
}

/// Produces the table side of the stream–table join: one 8-byte value for each of `keys`
/// keys as [`preload`] names them, stamped an hour before the stream's records, so both
/// frameworks, choosing by timestamp, read the table first.
fn preload_table(servers: &str, topic: &str, keys: u64, partitions: i32) {
    preload_rows(
        (servers, topic, partitions),
        keys,
        |key, i| {
            let _ = write!(key, "key-{i:07}");
        },
        |i| i as i64,
        now_ms() - 3_600_000,
    );
}

/// Produces a count store's changelog of `entries` distinct keys (value: an i64 count).
fn preload_changelog(servers: &str, topic: &str, entries: u64, partitions: i32) {
    preload_rows(
        (servers, topic, partitions),
        entries,
        |key, i| {
            let _ = write!(key, "key-{i:08}");
        },
        |i| (i % 1000) as i64 + 1,
        now_ms(),
    );
}

/// Client context that does not log reaching the end of a partition as an error: the output
/// check waits for exactly that.
pub(crate) struct EofIsNoError;

impl ClientContext for EofIsNoError {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::error!(%error, reason, "output check client error");
        }
    }
}

impl ConsumerContext for EofIsNoError {}

/// Records a `read_committed` reader finds in `topic` (transaction markers and aborted data
/// excluded): the pass-through check that every contender wrote exactly its output.
fn count_committed(servers: &str, topic: &str, partitions: i32) -> u64 {
    let consumer = committed_reader(servers, topic, partitions, &[]);
    let mut count = 0;
    let mut at_end = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while at_end.len() < partitions as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => count += 1,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "output check"),
            None => {}
        }
    }
    count
}

/// A `read_committed` consumer of every partition of `topic` from its start, reporting each
/// partition's end, with `extra` settings.
pub(crate) fn committed_reader(
    servers: &str,
    topic: &str,
    partitions: i32,
    extra: &[(&str, &str)],
) -> BaseConsumer<EofIsNoError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("group.id", format!("{topic}-check"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer<EofIsNoError> = config
        .create_with_context(EofIsNoError)
        .expect("checker config is valid");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("valid partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Pins the broker container's processes and this runner to core 0; returns what was done.
fn pin_broker(mode: &BrokerMode) -> String {
    let runner = std::process::id().to_string();
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &runner])
        .stdout(Stdio::null())
        .status();
    match mode {
        BrokerMode::Container { id, .. } => {
            let out = Command::new("docker")
                .args(["top", id, "-eo", "pid"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<&str> = out
                .lines()
                .skip(1)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let mut pinned = 0;
            for pid in &pids {
                let ok = Command::new("taskset")
                    .args(["-a", "-p", "-c", "0", pid])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                pinned += usize::from(ok);
            }
            format!(
                "broker container ({pinned} of {} processes, all threads) and runner on core 0, contenders on core 1 (`taskset`)",
                pids.len()
            )
        }
        BrokerMode::External => {
            "external broker (not pinned); runner on core 0, contenders on core 1 (`taskset`)"
                .to_string()
        }
    }
}

/// Builds the Kafka Streams contender with Maven; returns its classpath.
fn build_kstreams() -> Result<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kstreams-bench");
    let started = Instant::now();
    tracing::info!(dir = %dir.display(), "building the Kafka Streams contender with Maven");
    let build = |offline: bool| {
        let mut c = Command::new("mvn");
        c.args(["-q", "-B"]);
        if offline {
            c.arg("-o");
        }
        c.args(["package", "dependency:copy-dependencies"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Offline first: once the repository is warm it needs no network.
    if !build(true) && !build(false) {
        return Err("mvn package failed for integration-tests/kstreams-bench".into());
    }
    tracing::info!(elapsed = ?started.elapsed(), "Kafka Streams contender built");
    let target = dir.join("target");
    Ok(format!(
        "{}:{}/*",
        target.join("kstreams-bench-1.0.0.jar").display(),
        target.join("lib").display()
    ))
}

/// The contender arguments of `guarantee`; `at-least-once@100ms` is the guarantee with
/// another commit interval.
fn guarantee_args(guarantee: &str) -> Vec<(String, String)> {
    match guarantee.split_once('@') {
        Some((base, interval)) => vec![
            ("guarantee".into(), base.to_string()),
            (
                "commit-interval-ms".into(),
                interval.trim_end_matches("ms").to_string(),
            ),
        ],
        None => vec![("guarantee".into(), guarantee.to_string())],
    }
}

/// Every (guarantee, round, contender) to run, round by round, with the contenders' order
/// rotated each round, so no contender always runs first after the input preload.
fn round_robin(
    guarantees: &[String],
    contenders: &[String],
    rounds: usize,
) -> Vec<(String, usize, String)> {
    let mut runs = Vec::new();
    for g in guarantees {
        for round in 1..=rounds.max(1) {
            for i in 0..contenders.len() {
                let c = &contenders[(i + round - 1) % contenders.len()];
                runs.push((g.clone(), round, c.clone()));
            }
        }
    }
    runs
}

/// The median (the lower middle of an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().saturating_sub(1) / 2).copied()
}

fn fmt_ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

/// The Markdown report: every figure, then the ratios the targets are stated in.
fn report(label: &str, setup: &str, results: &[Measurement], failures: &[String]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### {label}\n\n{setup}\n");
    let _ = writeln!(
        md,
        "| workload | guarantee | contender | round | records | wall s | records/s | CPU s | CPU s / M records | process CPU s | output offsets | committed output | peak RSS MiB |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for m in results {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            m.workload,
            m.guarantee,
            m.contender,
            m.round,
            m.records,
            m.wall.as_secs_f64(),
            m.rate(),
            m.cpu_phase,
            m.cpu_per_million(),
            m.cpu_total,
            m.output.map_or("–".to_string(), |o| o.to_string()),
            m.committed.map_or("–".to_string(), |o| o.to_string()),
            m.rss_peak_mib
                .map_or("–".to_string(), |r| format!("{r:.0}"))
        );
    }
    // Medians over the rounds of one (workload, guarantee, contender).
    let of = |w: &str, g: &str, c: &str, f: fn(&Measurement) -> f64| {
        median(
            results
                .iter()
                .filter(|m| m.workload == w && m.guarantee == g && m.contender == c)
                .map(f)
                .collect(),
        )
    };
    let _ = writeln!(
        md,
        "\n| workload | guarantee | CPU/record streamtime ÷ Kafka Streams | CPU/record streamtime ÷ raw loop | records/s streamtime ÷ Kafka Streams | peak RSS streamtime ÷ Kafka Streams |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for m in results {
        if !keys.contains(&(m.workload.as_str(), m.guarantee.as_str())) {
            keys.push((m.workload.as_str(), m.guarantee.as_str()));
        }
    }
    for (w, g) in &keys {
        let cpu = |c: &str| of(w, g, c, Measurement::cpu_per_million);
        let rate = |c: &str| of(w, g, c, Measurement::rate);
        let rss = |c: &str| {
            median(
                results
                    .iter()
                    .filter(|m| m.workload == *w && m.guarantee == *g && m.contender == c)
                    .filter_map(|m| m.rss_peak_mib)
                    .collect(),
            )
        };
        let _ = writeln!(
            md,
            "| {w} | {g} | {} | {} | {} | {} |",
            fmt_ratio(cpu("streamtime"), cpu("kstreams")),
            fmt_ratio(cpu("streamtime"), cpu("raw")),
            fmt_ratio(rate("streamtime"), rate("kstreams")),
            fmt_ratio(rss("streamtime"), rss("kstreams")),
        );
    }
    let _ = writeln!(
        md,
        "\n| workload | contender | CPU/record exactly-once ÷ at-least-once (30 s) | exactly-once ÷ at-least-once@100ms |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|");
    let mut workloads: Vec<&str> = Vec::new();
    for m in results {
        if m.workload != "restore" && !workloads.contains(&m.workload.as_str()) {
            workloads.push(m.workload.as_str());
        }
    }
    for w in workloads {
        for c in ["streamtime", "kstreams", "raw"] {
            let cpu = |g: &str| of(w, g, c, Measurement::cpu_per_million);
            if cpu("exactly-once").is_some() {
                let _ = writeln!(
                    md,
                    "| {w} | {c} | {} | {} |",
                    fmt_ratio(cpu("exactly-once"), cpu("at-least-once")),
                    fmt_ratio(cpu("exactly-once"), cpu("at-least-once@100ms"))
                );
            }
        }
    }
    // What a repartition topic's watermarks cost: the workload with them ÷ without.
    let mut header = false;
    for m in results {
        let Some(base) = m.workload.strip_suffix("-watermarks") else {
            continue;
        };
        if m.contender != "streamtime" || m.round != 1 {
            continue;
        }
        if !header {
            let _ = writeln!(
                md,
                "\n| workload | guarantee | streamtime CPU/record with watermarks ÷ without |"
            );
            let _ = writeln!(md, "|---|---|---:|");
            header = true;
        }
        let g = m.guarantee.as_str();
        let _ = writeln!(
            md,
            "| {base} | {g} | {} |",
            fmt_ratio(
                of(&m.workload, g, "streamtime", Measurement::cpu_per_million),
                of(base, g, "streamtime", Measurement::cpu_per_million)
            )
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(md, "\nFailed runs:\n");
        for f in failures {
            let _ = writeln!(md, "* {}", f.lines().next().unwrap_or_default());
        }
    }
    md
}

/// Loads the broker's group and transaction coordinators (the first consumer group and the
/// first transactional producer wait while their internal topics are created and loaded), so
/// the contender that happens to run first does not pay for it.
fn warm_up(servers: &str, topic: &str) {
    let started = Instant::now();
    let group = topics::unique_name("bench-warm-up-group");
    let result = (|| -> Result<(), KafkaError> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("transactional.id", &group)
            .create()?;
        producer.init_transactions(Duration::from_secs(60))?;
        producer.begin_transaction()?;
        producer
            .send(BaseRecord::<[u8], [u8]>::to(topic).payload(b"warm-up"))
            .map_err(|(e, _)| e)?;
        producer.commit_transaction(Duration::from_secs(60))?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", servers)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?;
        consumer.subscribe(&[topic])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                consumer.commit_message(&message?, rdkafka::consumer::CommitMode::Sync)?;
                return Ok(());
            }
        }
        Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut))
    })();
    match result {
        Ok(()) => tracing::info!(elapsed = ?started.elapsed(), "broker warmed up"),
        Err(e) => {
            tracing::warn!(error = %e, "broker warm-up failed; the first contender may wait for coordinators")
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let workloads = list(&args.workloads);
    let guarantees = list(&args.guarantees);
    let contenders = list(&args.contenders);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let broker = tokio::task::spawn_blocking(broker)
        .await
        .expect("broker start-up");
    let servers = broker.bootstrap_servers.clone();
    let pinning = if args.no_pin || cores < 2 {
        format!(
            "not pinned ({cores} cores{})",
            if args.no_pin { ", --no-pin" } else { "" }
        )
    } else {
        pin_broker(&broker.mode)
    };
    tracing::info!(%servers, %pinning, "broker ready");
    let warm_topic = topics::unique_name("bench-warm-up");
    topics::create(&servers, &warm_topic, 1).await;
    let (warm, t) = (servers.clone(), warm_topic.clone());
    tokio::task::spawn_blocking(move || warm_up(&warm, &t))
        .await
        .expect("broker warm-up");
    topics::delete(&servers, &[&warm_topic]).await;

    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .expect("the runner's own directory")
    });
    let java_classpath = if contenders.iter().any(|c| c == "kstreams") {
        Some(build_kstreams().unwrap_or_else(|e| panic!("{e}")))
    } else {
        None
    };
    let run_dir = std::env::temp_dir().join(topics::unique_name("streamtime-bench"));
    let log_dir = run_dir.join("logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let launcher = Launcher {
        pin_app: (!args.no_pin && cores >= 2).then(|| "1".to_string()),
        bin_dir,
        java_classpath,
        log_dir: log_dir.clone(),
        timeout: Duration::from_secs(args.timeout_secs),
    };

    let p = args.partitions;
    let pass_input = topics::unique_name("bench-pass-in");
    let state_input = topics::unique_name("bench-state-in");
    let join_input = topics::unique_name("bench-join-in");
    let table_input = topics::unique_name("bench-table-in");
    let fk_input = topics::unique_name("bench-fk-in");
    let wants = |w: &str| workloads.iter().any(|x| x == w);
    let create_and_preload = |topic: String, count: u64, keys: u64| {
        let servers = servers.clone();
        async move {
            topics::create(&servers, &topic, p).await;
            tokio::task::spawn_blocking(move || preload(&servers, &topic, count, keys, p))
                .await
                .expect("preload");
        }
    };
    if wants("pass") {
        create_and_preload(pass_input.clone(), args.records, args.keys).await;
    }
    if STATE_WORKLOADS.iter().any(|w| wants(w)) {
        create_and_preload(state_input.clone(), args.state_records, args.keys).await;
    }
    if wants("stream-stream-join") {
        // The right side: the same keys and timestamps, so each left record meets exactly
        // one right record within the join window (a key recurs every `keys` ms).
        create_and_preload(join_input.clone(), args.state_records, args.keys).await;
    }
    if wants("fk-join") {
        // Every row once: an answer is dropped when its row changed meanwhile, so rows
        // updated again would be joined a varying number of times.
        create_and_preload(fk_input.clone(), args.state_records, args.state_records).await;
    }
    if wants("stream-table-join") || wants("fk-join") {
        topics::create(&servers, &table_input, p).await;
        let (s, t) = (servers.clone(), table_input.clone());
        let k = args.keys;
        tokio::task::spawn_blocking(move || preload_table(&s, &t, k, p))
            .await
            .expect("preload");
    }

    let mut results = Vec::new();
    let mut failures = Vec::new();
    let common = |app_id: &str, input: &str, output: &str, state_dir: &Path| {
        vec![
            ("bootstrap-servers".to_string(), servers.clone()),
            ("application-id".to_string(), app_id.to_string()),
            ("input".to_string(), input.to_string()),
            ("output".to_string(), output.to_string()),
            ("partitions".to_string(), p.to_string()),
            ("state-dir".to_string(), state_dir.display().to_string()),
            ("linger-ms".to_string(), args.linger_ms.to_string()),
            ("cache-bytes".to_string(), args.cache_bytes.to_string()),
            ("threads".to_string(), args.threads.to_string()),
        ]
    };
    for workload in workloads.iter().filter(|w| *w != "restore") {
        // Records the workload reads: both sides of a join.
        let (input, other, records) = match workload.as_str() {
            "pass" => (&pass_input, None, args.records),
            "stream-stream-join" => (&state_input, Some(&join_input), 2 * args.state_records),
            "stream-table-join" => (
                &state_input,
                Some(&table_input),
                args.state_records + args.keys,
            ),
            "fk-join" => (&fk_input, Some(&table_input), args.state_records),
            w if STATE_WORKLOADS.contains(&w) => (&state_input, None, args.state_records),
            other => panic!("unknown workload {other}"),
        };
        for (guarantee, round, contender) in round_robin(&guarantees, &contenders, args.rounds) {
            let (guarantee, contender) = (&guarantee, &contender);
            if !runs(contender, workload) {
                continue;
            }
            let name = format!("{workload}-{guarantee}-{contender}-{round}");
            let app_id = topics::unique_name(&format!("bench-{workload}-{contender}"));
            let output_topic = topics::unique_name("bench-out");
            topics::create(&servers, &output_topic, p).await;
            let state_dir = run_dir.join(&app_id);
            let mut a = common(&app_id, input, &output_topic, &state_dir);
            a.push(("workload".into(), workload.clone()));
            if let Some(other) = other {
                a.push(("other-input".into(), other.clone()));
            }
            a.extend(guarantee_args(guarantee));
            a.push(("records".into(), records.to_string()));
            if contender == "raw" {
                a.retain(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "state-dir" | "workload" | "cache-bytes" | "threads"
                    )
                });
            }
            if contender == "streamtime" && args.cache_bytes == 0 {
                // Also lets this runner drive app binaries from before the store cache.
                a.retain(|(k, _)| k != "cache-bytes");
            }
            if contender == "streamtime" {
                for setting in &args.streamtime_consumer_config {
                    a.push(("consumer-config".into(), setting.clone()));
                }
            }
            tracing::info!(run = %name, records, "running");
            let outcome = tokio::task::block_in_place(|| launcher.run(&name, contender, &a, None));
            match outcome {
                Ok((wall, cpu_phase, cpu_total, rss_peak_mib)) => {
                    let output: i64 = topics::watermarks(&servers, &output_topic)
                        .await
                        .iter()
                        .map(|(l, h)| h - l)
                        .sum();
                    let committed = if workload == "pass" {
                        let (s, t) = (servers.clone(), output_topic.clone());
                        let n = tokio::task::spawn_blocking(move || count_committed(&s, &t, p))
                            .await
                            .expect("output check");
                        // Every tenth input value starts with 'j' and is filtered out.
                        let expected = records - records / 10;
                        if n != expected {
                            tracing::error!(run = %name, committed = n, expected, "pass-through output is wrong");
                            failures.push(format!(
                                "{name}: {n} committed output records, expected {expected}"
                            ));
                        }
                        Some(n)
                    } else {
                        None
                    };
                    let m = Measurement {
                        workload: workload.clone(),
                        guarantee: guarantee.clone(),
                        contender: contender.clone(),
                        round,
                        records,
                        wall,
                        cpu_phase,
                        cpu_total,
                        output: Some(output),
                        committed,
                        rss_peak_mib,
                    };
                    tracing::info!(run = %name, wall = ?m.wall, rate = format!("{:.0}/s", m.rate()),
                        cpu_per_million = format!("{:.2}", m.cpu_per_million()), "done");
                    results.push(m);
                }
                Err(e) => {
                    tracing::error!(run = %name, error = %e, "run failed");
                    failures.push(e);
                }
            }
            let _ = std::fs::remove_dir_all(&state_dir);
            topics::delete(&servers, &[&output_topic]).await;
        }
    }

    let mut latencies = Vec::new();
    for workload in list(&args.latency_workloads) {
        for guarantee in list(&args.latency_guarantees) {
            // The same rate for every contender: half the slower one's median rate.
            let base = guarantee.split('@').next().unwrap_or_default().to_string();
            let measured = |c: &str| {
                median(
                    results
                        .iter()
                        .filter(|m| m.workload == workload && m.contender == c)
                        .filter(|m| m.guarantee == guarantee || m.guarantee == base)
                        .map(Measurement::rate)
                        .collect(),
                )
            };
            let rate = match args.latency_rate {
                Some(rate) => rate,
                None => {
                    let rates: Vec<f64> = contenders
                        .iter()
                        .filter(|c| *c != "raw")
                        .filter_map(|c| measured(c))
                        .collect();
                    match rates.into_iter().reduce(f64::min) {
                        Some(r) => (r / 2.0).floor(),
                        None => {
                            failures.push(format!(
                                "latency {workload}/{guarantee}: no throughput result to take \
                                 half of; run the workload too or give --latency-rate"
                            ));
                            continue;
                        }
                    }
                }
            };
            let records = (rate * args.latency_secs as f64) as u64;
            let lat_contenders: Vec<String> =
                contenders.iter().filter(|c| *c != "raw").cloned().collect();
            for (_, round, contender) in round_robin(
                std::slice::from_ref(&guarantee),
                &lat_contenders,
                args.rounds,
            ) {
                let name = format!("latency-{workload}-{guarantee}-{contender}-{round}");
                let app_id = topics::unique_name(&format!("bench-latency-{contender}"));
                let input = topics::unique_name("bench-latency-in");
                let output = topics::unique_name("bench-latency-out");
                topics::create(&servers, &input, p).await;
                topics::create(&servers, &output, p).await;
                let state_dir = run_dir.join(&app_id);
                let mut a = common(&app_id, &input, &output, &state_dir);
                a.push(("workload".into(), workload.clone()));
                a.extend(guarantee_args(&guarantee));
                a.push(("records".into(), records.to_string()));
                let (ready_tx, ready_rx) = mpsc::channel();
                let stop = Arc::new(AtomicBool::new(false));
                let collector = latency::collect(&servers, &output, p, stop.clone());
                let producer = latency::produce_at_rate(
                    (servers.clone(), input.clone(), p),
                    args.keys,
                    rate,
                    records,
                    ready_rx,
                );
                tracing::info!(run = %name, rate, records, "running at a fixed rate");
                let outcome = tokio::task::block_in_place(|| {
                    launcher.run(&name, contender.as_str(), &a, Some(ready_tx))
                });
                let first = producer.join().ok().flatten();
                stop.store(true, Ordering::Relaxed);
                let samples = collector.join().unwrap_or_default();
                match (outcome, first) {
                    (Ok((_wall, cpu_phase, _, rss_peak_mib)), Some(first)) => {
                        let since = first + 1000 * args.latency_warmup_secs as i64;
                        let kept: Vec<i64> = samples
                            .iter()
                            .filter(|(_, ts)| *ts >= since)
                            .map(|(l, _)| *l)
                            .collect();
                        match Percentiles::of(kept) {
                            Some(percentiles) => {
                                tracing::info!(run = %name, ?percentiles, "latency measured");
                                latencies.push(latency::Measured {
                                    workload: workload.clone(),
                                    guarantee: guarantee.clone(),
                                    contender: contender.clone(),
                                    round,
                                    rate,
                                    records,
                                    cpu_per_million: cpu_phase * 1e6 / records.max(1) as f64,
                                    rss_peak_mib,
                                    percentiles,
                                });
                            }
                            None => failures.push(format!("{name}: no output after the warm-up")),
                        }
                    }
                    (Err(e), _) => {
                        tracing::error!(run = %name, error = %e, "run failed");
                        failures.push(e);
                    }
                    (Ok(_), None) => failures.push(format!("{name}: the producer never started")),
                }
                let _ = std::fs::remove_dir_all(&state_dir);
                topics::delete(&servers, &[&input, &output]).await;
            }
        }
    }

    if wants("restore") {
        let empty_input = topics::unique_name("bench-restore-in");
        topics::create(&servers, &empty_input, p).await;
        let restore = round_robin(&["–".to_string()], &contenders, args.rounds);
        for (_, round, contender) in restore.iter().filter(|(_, _, c)| c != "raw") {
            let name = format!("restore-{contender}-{round}");
            let app_id = topics::unique_name(&format!("bench-restore-{contender}"));
            let changelog = format!("{app_id}-counts-changelog");
            topics::create_with_config(&servers, &changelog, p, &[("cleanup.policy", "compact")])
                .await;
            let (s, t, n) = (servers.clone(), changelog.clone(), args.restore_entries);
            tracing::info!(%changelog, entries = n, "preloading changelog");
            tokio::task::spawn_blocking(move || preload_changelog(&s, &t, n, p))
                .await
                .expect("changelog preload");
            let output = topics::unique_name("bench-out");
            topics::create(&servers, &output, p).await;
            let state_dir = run_dir.join(&app_id);
            let mut a = common(&app_id, &empty_input, &output, &state_dir);
            a.push(("workload".into(), "restore".into()));
            if contender == "streamtime" && args.cache_bytes == 0 {
                a.retain(|(k, _)| k != "cache-bytes");
            }
            tracing::info!(run = %name, entries = args.restore_entries, "running");
            match tokio::task::block_in_place(|| launcher.run(&name, contender, &a, None)) {
                Ok((wall, cpu_phase, cpu_total, rss_peak_mib)) => {
                    let m = Measurement {
                        workload: "restore".into(),
                        guarantee: "–".into(),
                        contender: contender.clone(),
                        round: *round,
                        records: args.restore_entries,
                        wall,
                        cpu_phase,
                        cpu_total,
                        output: None,
                        committed: None,
                        rss_peak_mib,
                    };
                    tracing::info!(run = %name, wall = ?m.wall, rate = format!("{:.0}/s", m.rate()), "done");
                    results.push(m);
                }
                Err(e) => {
                    tracing::error!(run = %name, error = %e, "run failed");
                    failures.push(e);
                }
            }
            let _ = std::fs::remove_dir_all(&state_dir);
            topics::delete(&servers, &[&output, &changelog]).await;
        }
        topics::delete(&servers, &[&empty_input]).await;
    }
    topics::delete(
        &servers,
        &[
            &pass_input,
            &state_input,
            &join_input,
            &table_input,
            &fk_input,
        ],
    )
    .await;

    let setup = format!(
        "{} input records (pass), {} (every other workload; the stream-stream join reads as many again on its right side, the stream-table join a table of one row per key), {} keys, 100-byte values, {} partitions, {} restore entries; \
         {} stream thread(s); commit interval 30 s at-least-once / 100 ms exactly-once; linger {} ms; \
         {} round(s) of every run, contenders' order rotated each round, ratios from medians; \
         store cache {} bytes per instance (streamtime: shared by its key-value, window and session stores, folding their downstream updates too); \
         RocksDB memory: defaults (streamtime: 256 MiB per instance; Kafka Streams: per store, 50 MiB block cache and up to 3 x 16 MiB memtables); {}. \
         CPU s: utime + stime of the contender process between its first input record and the end of its \
         closing commit (restore: from start to all stores restored); process CPU s: the whole process \
         (start-up included) from wait4.",
        args.records, args.state_records, args.keys, p, args.restore_entries, args.threads, args.linger_ms,
        args.rounds.max(1), args.cache_bytes, pinning
    );
    let mut md = report(&args.label, &setup, &results, &failures);
    if !latencies.is_empty() {
        md.push_str(&latency::report(
            &latencies,
            args.latency_secs,
            args.latency_warmup_secs,
        ));
    }
    println!("{md}");
    std::fs::write(&args.out, &md)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", args.out.display()));
    tracing::info!(out = %args.out.display(), logs = %log_dir.display(), "results written");
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_contenders_order() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let runs = round_robin(&names(&["a", "b"]), &names(&["st", "ks", "raw"]), 3);
        let order = |g: &str, round: usize| {
            runs.iter()
                .filter(|(gg, r, _)| gg == g && *r == round)
                .map(|(_, _, c)| c.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(runs.len(), 2 * 3 * 3);
        assert_eq!(order("a", 1), ["st", "ks", "raw"]);
        assert_eq!(order("a", 2), ["ks", "raw", "st"]);
        assert_eq!(order("b", 3), ["raw", "st", "ks"]);
        assert_eq!(round_robin(&names(&["a"]), &names(&["st"]), 0).len(), 1);
    }

    #[test]
    fn median_takes_the_middle_or_the_lower_middle() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.0));
    }
}
