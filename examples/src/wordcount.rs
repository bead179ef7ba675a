//! Word count: lines of text in, a running count per word out. The classic first stateful
//! topology: `flat_map_values` splits lines into words, `group_by` re-keys by word (a
//! repartition topic moves each word to the task that owns it), and `count` keeps the totals
//! in a changelogged store.
//!
//! ```
//! use streamtime::{StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//! use streamtime_examples::wordcount;
//!
//! let topics = wordcount::Topics::new("lines", "word-counts");
//! let driver = TopologyTestDriver::new(wordcount::topology(&topics).unwrap(),
//!     StreamsConfig::new("wordcount", "unused")).unwrap();
//! let lines = driver.input_topic(&topics.lines, StringSerde, StringSerde);
//! lines.pipe("l1".into(), "the cat and the hat".into(), 1_000).unwrap();
//! let counts = driver.output_topic(&topics.counts, StringSerde, I64Serde).read_key_values();
//! // The record cache folds the two counts of "the" into one update: one per distinct word.
//! assert_eq!(counts.len(), 4);
//! assert!(counts.contains(&("the".to_string(), 2)));
//! ```

use std::collections::BTreeMap;

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsError, Topology,
};

/// Name of the store holding the counts (changelog `<app>-word-counts-changelog`).
pub const STORE: &str = "word-counts";

/// Topic names of one deployment of the example.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Lines of text: any key → line (UTF-8).
    pub lines: String,
    /// Counts: word → count so far (i64, big-endian); the record cache folds a word's
    /// updates between commits into one record.
    pub counts: String,
}

impl Topics {
    /// Names the two topics.
    pub fn new(lines: &str, counts: &str) -> Self {
        Topics {
            lines: lines.into(),
            counts: counts.into(),
        }
    }
}

/// The words of a line: lower-cased, split at anything that is not a letter, digit or
/// apostrophe, so "Cat," and "cat" count as one word.
pub fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The topology: lines → words → re-keyed by word (repartition `words`) → count → counts.
pub fn topology(topics: &Topics) -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(&topics.lines, Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| words(&line))
        .group_by(
            |_line_key, word: &String| word.clone(),
            Grouped::with_serdes(StringSerde, StringSerde).named("words"),
        )
        .count(Materialized::as_(STORE))
        .to_stream()
        .to(&topics.counts, Produced::with(StringSerde, I64Serde));
    builder.build()
}

const VOCABULARY: &[&str] = &[
    "stream", "time", "never", "goes", "back", "a", "task", "picks", "the", "oldest", "record",
    "first", "windows", "close", "when", "grace", "ends", "state", "lives", "in", "stores",
];

/// Sample lines for the demo: `count` lines of 3 to 10 words from a small vocabulary, keyed
/// `line-<n>`, one per second of event time from `start_ms`, as `(key, line, timestamp)`.
/// Deterministic.
pub fn sample_lines(count: usize, start_ms: i64) -> Vec<(String, String, i64)> {
    let mut seed: u64 = 7;
    let mut next = move |bound: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % bound
    };
    (0..count)
        .map(|n| {
            let len = 3 + next(8);
            let line: Vec<&str> = (0..len)
                .map(|_| VOCABULARY[next(VOCABULARY.len())])
                .collect();
            (
                format!("line-{n}"),
                line.join(" "),
                start_ms + n as i64 * 1_000,
            )
        })
        .collect()
}

/// The final count of every word in `lines`, computed directly.
pub fn expected_counts<'a>(lines: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for line in lines {
        for word in words(line) {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    counts
}
