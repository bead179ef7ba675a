//! The sensors example: readings every 5 s for three sensors over ten minutes, some out of
//! order within grace and one far too late; prints each sensor's final average per minute and
//! the reading that went to the dead-letter topic.

use std::collections::BTreeMap;

use streamtime_examples::on_kafka;
use streamtime_examples::sensors::{self, Topics};
use streamtime_integration_tests::topics;

use super::DemoResult;

/// Final averages per (sensor, minute start) as (sum, count), computed directly: what the
/// windows must emit once stream time has passed each minute's end plus grace.
pub fn expected(readings: &[(String, f64, i64)]) -> BTreeMap<(String, i64), (f64, u64)> {
    let (_, on_time) = readings
        .split_last()
        .expect("sample has a late reading last");
    let mut want: BTreeMap<(String, i64), (f64, u64)> = BTreeMap::new();
    for (sensor, temp, ts) in on_time {
        let e = want
            .entry((sensor.clone(), ts / 60_000 * 60_000))
            .or_default();
        e.0 += temp;
        e.1 += 1;
    }
    let stream_time = on_time.iter().map(|r| r.2).max().unwrap_or(0);
    let (window, grace) = (
        sensors::WINDOW.as_millis() as i64,
        sensors::GRACE.as_millis() as i64,
    );
    want.retain(|(_, start), _| start + window <= stream_time - grace);
    want
}

/// Runs the sensors example.
pub async fn run(servers: &str) -> DemoResult {
    let names = Topics::new(
        &topics::unique_name("demo-readings"),
        &topics::unique_name("demo-averages"),
        &topics::unique_name("demo-late-readings"),
    );
    on_kafka::create_topics(servers, &[&names.readings, &names.averages, &names.late], 2).await;
    let readings = sensors::sample_readings(3, 10, streamtime_examples::SAMPLE_START_MS);
    let want = expected(&readings);
    println!("demo: produced {} readings", readings.len());
    let got = on_kafka::sensors(
        servers,
        &topics::unique_name("demo-sensors"),
        &names,
        &readings,
        want.len(),
        1,
    )
    .await?;
    println!("\nsensor     minute  average  readings");
    let mut ok = true;
    for ((sensor, start), ((sum, count), times)) in &got.averages {
        println!(
            "{sensor:<9} {:>7}  {:>7.2}  {count:>8}",
            (start - streamtime_examples::SAMPLE_START_MS) / 60_000,
            sum / *count as f64
        );
        ok &= *times == 1 && want.get(&(sensor.clone(), *start)) == Some(&(*sum, *count));
    }
    for (sensor, temp, ts) in &got.late {
        let offset = ts - streamtime_examples::SAMPLE_START_MS;
        let (minute, second) = (offset / 60_000, offset / 1_000 % 60);
        println!(
            "\nlate reading set aside: {sensor} {temp} from minute {minute} second {second}, \
             which arrived after that minute had closed"
        );
    }
    if !ok || got.averages.len() != want.len() || got.late.len() != 1 {
        return Err("the averages differ from the readings' own averages".into());
    }
    println!(
        "\ndemo: all {} minute averages are final and correct",
        want.len()
    );
    Ok(())
}
