//! Windowed sensor averages with final results: temperature readings keyed by sensor, averaged
//! per sensor and minute of event time. Each minute's average is emitted once, when the minute
//! closes (its end plus a grace period for late readings); readings later than that are
//! dropped, counted, and written to a dead-letter topic for inspection.
//!
//! ```
//! use streamtime::{StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{F64Serde, StringSerde};
//! use streamtime_examples::sensors;
//!
//! let topics = sensors::Topics::new("readings", "averages", "late-readings");
//! let driver = TopologyTestDriver::new(sensors::topology(&topics).unwrap(),
//!     StreamsConfig::new("sensors", "unused")).unwrap();
//! let readings = driver.input_topic(&topics.readings, StringSerde, F64Serde);
//! readings.pipe("boiler".into(), 60.0, 1_000).unwrap();
//! readings.pipe("boiler".into(), 70.0, 50_000).unwrap();
//! readings.pipe("boiler".into(), 80.0, 95_000).unwrap(); // minute 0 closes at 60 s + 30 s
//! let out = driver.output_topic(&topics.averages, sensors::average_key_serde(), sensors::average_serde());
//! let averages = out.read_key_values();
//! assert_eq!(averages.len(), 1);
//! assert_eq!((averages[0].0.window.start, averages[0].1.mean()), (0, 65.0));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use streamtime::dsl::{EmitStrategy, TimeWindows, WindowedSerde};
use streamtime::serdes::{F64Serde, JsonSerde, StringSerde};
use streamtime::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsError, Topology,
};

/// Averaging window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long after a minute ends late readings are still accepted.
pub const GRACE: Duration = Duration::from_secs(30);

/// A running average: sum and count of the readings of one sensor in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Average {
    /// Sum of the readings.
    pub sum: f64,
    /// Number of readings.
    pub count: u64,
}

impl Average {
    /// The mean of the readings (NaN without readings).
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Serde of the averages (JSON).
pub fn average_serde() -> JsonSerde<Average> {
    JsonSerde::new()
}

/// Serde of the output keys: sensor id and minute.
pub fn average_key_serde() -> WindowedSerde<StringSerde> {
    WindowedSerde::new(StringSerde)
}

/// Topic names of one deployment of the example.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Readings: sensor id → temperature (f64, big-endian).
    pub readings: String,
    /// Averages: windowed sensor id → [`Average`] (JSON), one per sensor and minute.
    pub averages: String,
    /// Readings that came after their minute closed, as they were read.
    pub late: String,
}

impl Topics {
    /// Topic names.
    pub fn new(readings: &str, averages: &str, late: &str) -> Self {
        Topics {
            readings: readings.into(),
            averages: averages.into(),
            late: late.into(),
        }
    }
}

/// The topology: readings → per-sensor one-minute windows with grace → final averages.
pub fn topology(topics: &Topics) -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(&topics.readings, Consumed::with(StringSerde, F64Serde))
        .group_by_key_with(Grouped::with_serdes(StringSerde, F64Serde))
        .windowed_by(TimeWindows::of_size_and_grace(WINDOW, GRACE))
        .emit(EmitStrategy::OnWindowClose)
        .late_records_to(&topics.late)
        .aggregate(
            Average::default,
            |_sensor, reading, avg| Average {
                sum: avg.sum + reading,
                count: avg.count + 1,
            },
            Materialized::as_("sensor-minutes").with_value_serde(average_serde()),
        )
        .to_stream()
        .to(
            &topics.averages,
            Produced::with(average_key_serde(), average_serde()),
        );
    builder.build()
}

/// Sample readings for the demo: `sensors` sensors, one reading every 5 s of event time over
/// `minutes` from `start_ms` (a whole minute), a few out of order within grace and one
/// reading far too late, as `(sensor, temperature, timestamp)`. Deterministic.
pub fn sample_readings(sensors: usize, minutes: i64, start_ms: i64) -> Vec<(String, f64, i64)> {
    assert_eq!(start_ms % 60_000, 0, "samples start at a whole minute");
    let mut out = Vec::new();
    for t in (0..minutes * 60_000).step_by(5_000) {
        for s in 0..sensors {
            let temp = 20.0 + s as f64 * 5.0 + ((t / 5_000) % 7) as f64;
            // Every 9th reading is delayed by 20 s: late, but within grace.
            let ts = if (t / 5_000 + s as i64) % 9 == 0 {
                (t - 20_000).max(0)
            } else {
                t
            };
            out.push((format!("sensor-{s}"), temp, start_ms + ts));
        }
    }
    // One reading for minute 0 arrives when stream time is far past its grace.
    out.push(("sensor-0".into(), -273.0, start_ms + 1_000));
    out
}
