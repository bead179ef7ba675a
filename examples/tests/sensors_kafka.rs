//! The sensors example on a real broker: each minute's average is emitted exactly once, with
//! the sum and count of its readings, and the reading that came after its minute closed is
//! on the dead-letter topic, as it was produced.

use streamtime_examples::on_kafka;
use streamtime_examples::sensors::{self, Topics};
use streamtime_integration_tests::{bootstrap_servers, topics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_on_kafka_emit_final_averages_once_and_set_late_readings_aside() {
    let servers = bootstrap_servers();
    let names = Topics::new(
        &topics::unique_name("sensor-readings"),
        &topics::unique_name("sensor-averages"),
        &topics::unique_name("sensor-late"),
    );
    on_kafka::create_topics(
        &servers,
        &[&names.readings, &names.averages, &names.late],
        2,
    )
    .await;
    let readings = sensors::sample_readings(4, 6, streamtime_examples::SAMPLE_START_MS);
    let (late, on_time) = readings.split_last().unwrap();

    // Independently: each on-time reading counts in its minute; minutes within a minute plus
    // grace of the end of the data are still open.
    let mut want = std::collections::BTreeMap::new();
    for (sensor, temp, ts) in on_time {
        let e: &mut (f64, u64) = want
            .entry((sensor.clone(), ts / 60_000 * 60_000))
            .or_default();
        e.0 += temp;
        e.1 += 1;
    }
    let stream_time = on_time.iter().map(|r| r.2).max().unwrap();
    want.retain(|(_, start), _| start + 60_000 <= stream_time - 30_000);
    assert!(want.len() >= 4 * 4, "several closed minutes per sensor");

    let got = on_kafka::sensors(
        &servers,
        &topics::unique_name("sensors-app"),
        &names,
        &readings,
        want.len(),
        1,
    )
    .await
    .unwrap();
    let emitted_twice: Vec<_> = got.averages.iter().filter(|(_, v)| v.1 != 1).collect();
    assert!(
        emitted_twice.is_empty(),
        "emitted more than once: {emitted_twice:?}"
    );
    let averages: std::collections::BTreeMap<_, _> = got
        .averages
        .into_iter()
        .map(|(k, (avg, _))| (k, avg))
        .collect();
    assert_eq!(averages, want);
    assert_eq!(got.late, vec![late.clone()]);
}
