//! The word count example on the test driver: every word's last count equals counting the
//! lines directly, counts per word only grow (by one without the record cache; with it, a
//! word's counts from one line fold into one), and the topology re-keys through one
//! repartition topic into a changelogged store.

use std::collections::BTreeMap;

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{StreamsConfig, TopologyTestDriver};
use streamtime_examples::wordcount::{self, Topics};

#[test]
fn counts_match_the_lines_and_grow_one_at_a_time_without_the_record_cache() {
    let (out, want) = count_sample(StreamsConfig::new("wordcount", "unused").cache_max_bytes(0));
    // Every occurrence of a word is one update.
    let total: i64 = want.values().sum();
    assert_eq!(out.len() as i64, total);
    let last = last_counts(&out, |count, previous| count == previous + 1);
    assert_eq!(last, want);
}

#[test]
fn with_the_record_cache_a_words_counts_from_one_line_fold_into_one_update() {
    let (out, want) = count_sample(StreamsConfig::new("wordcount", "unused"));
    let total: i64 = want.values().sum();
    // The driver commits after each line: one update per distinct word of the line.
    let lines = wordcount::sample_lines(120, 0);
    let distinct_per_line: usize = lines
        .iter()
        .map(|(_, line, _)| {
            let words: std::collections::BTreeSet<String> =
                wordcount::words(line).into_iter().collect();
            words.len()
        })
        .sum();
    assert_eq!(out.len(), distinct_per_line);
    assert!((out.len() as i64) < total, "some lines repeat a word");
    let last = last_counts(&out, |count, previous| count > previous);
    assert_eq!(last, want);
}

/// Runs the sample through the topology: the counts it sent, and the true counts.
fn count_sample(config: StreamsConfig) -> (Vec<(String, i64)>, BTreeMap<String, i64>) {
    let topics = Topics::new("lines", "counts");
    let topology = wordcount::topology(&topics).unwrap();
    let description = topology.describe();
    assert_eq!(description.repartition_topics, ["words-repartition"]);
    assert_eq!(
        description.stores[0].changelog.as_deref(),
        Some("word-counts-changelog")
    );
    let driver =
        TopologyTestDriver::with_partitions(topology, config, &[("lines", 3), ("counts", 3)])
            .unwrap();
    let lines = wordcount::sample_lines(120, 0);
    let input = driver.input_topic(&topics.lines, StringSerde, StringSerde);
    for (key, line, ts) in &lines {
        input.pipe(key.clone(), line.clone(), *ts).unwrap();
    }
    let want = wordcount::expected_counts(lines.iter().map(|l| l.1.as_str()));
    let total: i64 = want.values().sum();
    assert!(
        want.len() > 10 && total > 500,
        "the sample exercises many words"
    );
    // One task per input partition counted, each word in exactly one of them.
    assert_eq!(driver.task_ids().len(), 3 + 3);
    let out = driver
        .output_topic(&topics.counts, StringSerde, I64Serde)
        .read_key_values();
    (out, want)
}

/// Each word's last count, checking each count against the word's previous one.
fn last_counts(out: &[(String, i64)], follows: impl Fn(i64, i64) -> bool) -> BTreeMap<String, i64> {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (word, count) in out {
        let previous = last.insert(word.clone(), *count).unwrap_or(0);
        assert!(
            follows(*count, previous),
            "{word}: {count} after {previous}"
        );
    }
    last
}

#[test]
fn words_are_case_and_punctuation_insensitive() {
    assert_eq!(
        wordcount::words("The cat's hat, the CAT!"),
        ["the", "cat's", "hat", "the", "cat"]
    );
    assert!(wordcount::words("  ... ").is_empty());
}

#[test]
fn the_readme_shows_the_current_diagram() {
    let topology = wordcount::topology(&Topics::new("lines", "word-counts")).unwrap();
    let mermaid = topology.describe().to_mermaid();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("```mermaid\n")
        .expect("README has a Mermaid block")
        + 11;
    let end = start + readme[start..].find("```").unwrap();
    assert_eq!(
        &readme[start..end],
        mermaid,
        "README's diagram is stale; paste this:\n{mermaid}"
    );
}
