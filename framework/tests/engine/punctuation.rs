//! Punctuation: stream-time punctuators fire aligned and once per jump, wall-clock ones once per advance.

use super::*;

/// Schedules one punctuator in `init`, ignores its input, and forwards a `tick` record per
/// punctuation so the punctuation timestamp can be checked on the output topic too.
struct Ticker {
    interval: Duration,
    kind: PunctuationType,
    fired: Log<i64>,
}

impl Processor<String, String, String, i64> for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> ProcessResult {
        ctx.schedule(self.interval, self.kind);
        Ok(())
    }

    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<String, i64>,
        _record: Record<String, String>,
    ) -> ProcessResult {
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<String, i64>,
        punctuation: Punctuation,
    ) -> ProcessResult {
        assert_eq!(punctuation.kind, self.kind);
        // There is no input record during a punctuation, so nothing to inherit metadata from.
        assert_eq!(ctx.record_metadata(), None);
        self.fired.lock().unwrap().push(punctuation.timestamp);
        ctx.forward(Record::new(
            s("tick"),
            punctuation.timestamp,
            punctuation.timestamp,
        ))
    }
}

fn ticker_topology(interval: Duration, kind: PunctuationType, fired: &Log<i64>) -> Topology {
    let fired = fired.clone();
    let mut topology = Topology::new();
    topology
        .add_source("src", &["in"], StringSerde, StringSerde)
        .unwrap()
        .add_processor(
            "ticker",
            move || Ticker {
                interval,
                kind,
                fired: fired.clone(),
            },
            &["src"],
        )
        .unwrap()
        .add_sink("ticks", "ticks", StringSerde, I64Serde, &["ticker"])
        .unwrap();
    topology
}

/// (value, timestamp) of every unread tick.
fn read_ticks(driver: &TopologyTestDriver) -> Vec<(i64, i64)> {
    driver
        .output_topic("ticks", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect()
}

#[test]
fn stream_time_punctuation_is_aligned_and_fires_once_per_jump() {
    let fired = log();
    let driver = TopologyTestDriver::new(
        ticker_topology(
            Duration::from_millis(10),
            PunctuationType::StreamTime,
            &fired,
        ),
        config(),
    )
    .unwrap();
    let input = driver.input_topic("in", StringSerde, StringSerde);
    // Nothing fires before the first record: stream time is still -1.
    assert_eq!(taken(&fired), Vec::<i64>::new());

    // (record timestamp, punctuations it must cause)
    let steps: [(i64, &[i64]); 7] = [
        (0, &[0]), // aligned to 0: due as soon as stream time reaches 0
        (5, &[]),
        (12, &[12]),   // the 10 boundary was crossed; fires at the current stream time
        (100, &[100]), // jumps over 20..=100: once, not nine times
        (105, &[]),    // next due is 110, not 100 + 10 after a catch-up
        (109, &[]),
        (110, &[110]),
    ];
    for (ts, expected) in steps {
        input.pipe(s("k"), s("v"), ts).unwrap();
        assert_eq!(taken(&fired), expected, "after a record at {ts}");
    }
    // A late record does not move stream time, so it cannot re-trigger anything.
    input.pipe(s("k"), s("late"), 3).unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    // Wall-clock time does not drive stream-time punctuators.
    driver
        .advance_wall_clock(Duration::from_secs(3600))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());

    assert_eq!(
        read_ticks(&driver),
        vec![(0, 0), (12, 12), (100, 100), (110, 110)]
    );
}

#[test]
fn wall_clock_punctuation_fires_once_per_advance() {
    let fired = log();
    let driver = TopologyTestDriver::new(
        ticker_topology(
            Duration::from_secs(1),
            PunctuationType::WallClockTime,
            &fired,
        ),
        config(),
    )
    .unwrap();
    assert_eq!(driver.wall_clock_ms(), 0);

    driver
        .advance_wall_clock(Duration::from_millis(500))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(500))
        .unwrap();
    assert_eq!(taken(&fired), vec![1_000]);
    // Ten intervals elapse at once: one punctuation, no storm.
    driver.advance_wall_clock(Duration::from_secs(10)).unwrap();
    assert_eq!(taken(&fired), vec![11_000]);
    // The schedule keeps its phase after skipping: the next one is due at 12 000.
    driver
        .advance_wall_clock(Duration::from_millis(999))
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(taken(&fired), vec![12_000]);

    // Record timestamps do not drive wall-clock punctuators.
    driver
        .input_topic("in", StringSerde, StringSerde)
        .pipe(s("k"), s("v"), 1_000_000)
        .unwrap();
    assert_eq!(taken(&fired), Vec::<i64>::new());

    assert_eq!(
        read_ticks(&driver),
        vec![(1_000, 1_000), (11_000, 11_000), (12_000, 12_000)]
    );
}
