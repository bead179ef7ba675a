//! The word count example on the test driver: every word's last count equals counting the
//! lines directly, counts per word only grow by one, and the topology re-keys through one
//! repartition topic into a changelogged store.

use std::collections::BTreeMap;

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{StreamsConfig, TopologyTestDriver};
use streamtime_examples::wordcount::{self, Topics};

#[test]
fn counts_match_the_lines_and_grow_one_at_a_time() {
    let topics = Topics::new("lines", "counts");
    let topology = wordcount::topology(&topics).unwrap();
    let description = topology.describe();
    assert_eq!(description.repartition_topics, ["words-repartition"]);
    assert_eq!(
        description.stores[0].changelog.as_deref(),
        Some("word-counts-changelog")
    );
    let driver = TopologyTestDriver::with_partitions(
        topology,
        StreamsConfig::new("wordcount", "unused"),
        &[("lines", 3), ("counts", 3)],
    )
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

    let out = driver
        .output_topic(&topics.counts, StringSerde, I64Serde)
        .read_key_values();
    // Every occurrence of a word is one update (no cache folds them in the driver).
    assert_eq!(out.len() as i64, total);
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (word, count) in out {
        let previous = last.insert(word.clone(), count).unwrap_or(0);
        assert_eq!(count, previous + 1, "{word} counted out of order");
    }
    assert_eq!(last, want);
    // One task per input partition counted, each word in exactly one of them.
    assert_eq!(driver.task_ids().len(), 3 + 3);
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
