//! End-to-end latency at a fixed input rate: from the moment a record is produced (its
//! timestamp) to the moment its output is readable by a `read_committed` consumer.
//!
//! The contender starts on an empty input topic. Once it reports `ready` (every thread
//! processes), a producer writes records at the fixed rate, each stamped with the wall clock
//! at its send, and a consumer of the output topic takes `now − timestamp` of every output
//! record. An output record carries the timestamp of the input that made it (pass-through:
//! that record; a windowed count: the window's latest record), so the figure is the delay
//! that input saw. Outputs of records produced in the first `warm-up` are left out, so a
//! JIT-compiled contender is not judged on its first seconds.
//!
//! Timestamps have millisecond resolution (Kafka's), so figures below a few milliseconds are
//! coarse; the producer's linger is 1 ms and the consumer's fetch wait 5 ms, the same for
//! every contender.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use streamtime::partitioner::partition_for_key;

use super::{committed_reader, fmt_ratio, input_record, median, now_ms, send_waiting};

/// Writes `count` records of 100 bytes to `topic` at `rate` records per second once `start`
/// fires, keyed and valued as the preloads are, each stamped with the wall clock at its send.
/// Returns the wall-clock millisecond the first record was sent.
pub(crate) fn produce_at_rate(
    (servers, topic, partitions): (String, String, i32),
    keys: u64,
    rate: f64,
    count: u64,
    start: mpsc::Receiver<()>,
) -> JoinHandle<Option<i64>> {
    std::thread::spawn(move || {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &servers)
            .set("linger.ms", "1")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("latency producer config is valid");
        // The contender failed to start if it never says it is ready.
        start.recv().ok()?;
        let began = Instant::now();
        let first = now_ms();
        let mut key = String::new();
        let mut value = [0u8; 100];
        let mut sent = 0u64;
        while sent < count {
            // Catch up with the schedule, then wait for the next millisecond.
            let due = ((began.elapsed().as_secs_f64() * rate) as u64 + 1).min(count);
            while sent < due {
                input_record(sent, keys, &mut key, &mut value);
                let record = BaseRecord::<[u8], [u8]>::to(&topic)
                    .key(key.as_bytes())
                    .payload(&value)
                    .partition(partition_for_key(key.as_bytes(), partitions))
                    .timestamp(now_ms());
                send_waiting(&producer, record, &topic);
                sent += 1;
            }
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
        }
        producer
            .flush(Duration::from_secs(60))
            .expect("latency producer flush");
        Some(first)
    })
}

/// Reads `topic` from its start (`read_committed`) until `stop` is set and every partition is
/// at its end; returns `(receive time − timestamp, timestamp)` of every record, ms.
pub(crate) fn collect(
    servers: &str,
    topic: &str,
    partitions: i32,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<(i64, i64)>> {
    let consumer = committed_reader(servers, topic, partitions, &[("fetch.wait.max.ms", "5")]);
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        let mut at_end = HashSet::new();
        loop {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let received = now_ms();
                    at_end.remove(&m.partition());
                    if let Some(ts) = m.timestamp().to_millis() {
                        samples.push((received - ts, ts));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "latency consumer"),
                None => {}
            }
            if stop.load(Ordering::Relaxed) && at_end.len() >= partitions as usize {
                return samples;
            }
        }
    })
}

/// Latency percentiles of one run, ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Percentiles {
    pub(crate) samples: usize,
    pub(crate) p50: i64,
    pub(crate) p99: i64,
    pub(crate) p999: i64,
    pub(crate) max: i64,
}

impl Percentiles {
    /// The percentiles of `latencies` (nearest rank); `None` when there are none.
    pub(crate) fn of(mut latencies: Vec<i64>) -> Option<Self> {
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[i - 1]
        };
        Some(Percentiles {
            samples: latencies.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            p999: rank(0.999),
            max: *latencies.last().expect("not empty"),
        })
    }
}

/// One latency run.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) workload: String,
    pub(crate) guarantee: String,
    pub(crate) contender: String,
    pub(crate) round: usize,
    /// Input records per second.
    pub(crate) rate: f64,
    pub(crate) records: u64,
    /// CPU seconds per million records from the first input to the end.
    pub(crate) cpu_per_million: f64,
    pub(crate) rss_peak_mib: Option<f64>,
    pub(crate) percentiles: Percentiles,
}

/// The Markdown tables of the latency runs: every run, then streamtime ÷ Kafka Streams of
/// the median percentiles.
pub(crate) fn report(runs: &[Measured], secs: u64, warm_up: u64) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n#### End-to-end latency at a fixed rate\n\n{secs} s of input per run at the rate shown \
         (the same for both contenders), outputs of the first {warm_up} s left out; latency from a \
         record's produce time (its timestamp) to its output being read by a read_committed \
         consumer, ms.\n"
    );
    let _ = writeln!(
        md,
        "| workload | guarantee | contender | round | records/s | inputs | outputs measured | p50 ms | p99 ms | p99.9 ms | max ms | CPU s / M records | peak RSS MiB |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for m in runs {
        let p = m.percentiles;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            m.workload,
            m.guarantee,
            m.contender,
            m.round,
            m.rate,
            m.records,
            p.samples,
            p.p50,
            p.p99,
            p.p999,
            p.max,
            m.cpu_per_million,
            m.rss_peak_mib
                .map_or("–".to_string(), |r| format!("{r:.0}"))
        );
    }
    let _ = writeln!(
        md,
        "\n| workload | guarantee | p50 streamtime ÷ Kafka Streams | p99 | p99.9 |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|");
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for m in runs {
        if !keys.contains(&(m.workload.as_str(), m.guarantee.as_str())) {
            keys.push((m.workload.as_str(), m.guarantee.as_str()));
        }
    }
    for (w, g) in keys {
        let of = |c: &str, f: fn(&Percentiles) -> i64| {
            median(
                runs.iter()
                    .filter(|m| m.workload == w && m.guarantee == g && m.contender == c)
                    .map(|m| f(&m.percentiles) as f64)
                    .collect(),
            )
        };
        let ratio = |f: fn(&Percentiles) -> i64| fmt_ratio(of("streamtime", f), of("kstreams", f));
        let _ = writeln!(
            md,
            "| {w} | {g} | {} | {} | {} |",
            ratio(|p| p.p50),
            ratio(|p| p.p99),
            ratio(|p| p.p999)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let p = Percentiles::of((1..=1000).rev().collect()).unwrap();
        assert_eq!(
            (p.samples, p.p50, p.p99, p.p999, p.max),
            (1000, 500, 990, 999, 1000)
        );
        let one = Percentiles::of(vec![7]).unwrap();
        assert_eq!((one.p50, one.p99, one.p999), (7, 7, 7));
        assert!(Percentiles::of(Vec::new()).is_none());
    }
}
