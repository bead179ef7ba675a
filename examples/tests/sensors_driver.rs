//! The sensor example on the test driver: every minute's final average equals the one
//! computed here from the sample readings, each is emitted once, and the one reading that
//! came after its minute closed went to the dead-letter topic.

use std::collections::BTreeMap;

use streamtime::serdes::{F64Serde, StringSerde};
use streamtime::{StreamsConfig, TopologyTestDriver};
use streamtime_examples::sensors::{self, Topics};

#[test]
fn final_averages_match_the_readings_and_late_readings_are_set_aside() {
    let topics = Topics::new("readings", "averages", "late-readings");
    let driver = TopologyTestDriver::new(
        sensors::topology(&topics).unwrap(),
        StreamsConfig::new("sensors", "unused"),
    )
    .unwrap();
    let readings = sensors::sample_readings(3, 10, 0);
    let input = driver.input_topic(&topics.readings, StringSerde, F64Serde);
    for (sensor, temp, ts) in &readings {
        input.pipe(sensor.clone(), *temp, *ts).unwrap();
    }
    // Independently: every reading but the last (too late) counts in its minute.
    let (late, on_time) = readings.split_last().unwrap();
    let mut want: BTreeMap<(String, i64), (f64, u64)> = BTreeMap::new();
    for (sensor, temp, ts) in on_time {
        let e = want
            .entry((sensor.clone(), ts / 60_000 * 60_000))
            .or_default();
        e.0 += temp;
        e.1 += 1;
    }
    // Minutes still open at the end of the input (within a minute + grace of stream time)
    // are not final yet.
    let stream_time = on_time.iter().map(|r| r.2).max().unwrap();
    want.retain(|(_, start), _| start + 60_000 <= stream_time - 30_000);

    let out = driver
        .output_topic(
            &topics.averages,
            sensors::average_key_serde(),
            sensors::average_serde(),
        )
        .read_key_values();
    let mut got = BTreeMap::new();
    for (k, avg) in out {
        assert!(
            got.insert((k.key.clone(), k.window.start), (avg.sum, avg.count))
                .is_none(),
            "{k:?} emitted twice"
        );
    }
    assert_eq!(got, want);
    let dead = driver
        .output_topic(&topics.late, StringSerde, F64Serde)
        .read_records();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].key.as_str(), dead[0].value, dead[0].timestamp),
        (late.0.as_str(), late.1, late.2)
    );
}
