//! The word count example on a real broker: through its repartition topic and changelogged
//! store, the last count written for every word equals counting the lines directly, and
//! each word's counts arrive in increasing order.

use std::collections::BTreeMap;

use streamtime::serdes::{I64Serde, Serde, StringSerde};
use streamtime_examples::on_kafka;
use streamtime_examples::wordcount::{self, Topics};
use streamtime_integration_tests::records;
use streamtime_integration_tests::{bootstrap_servers, topics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordcount_on_kafka_counts_every_word() {
    let servers = bootstrap_servers();
    let names = Topics::new(
        &topics::unique_name("wc-lines"),
        &topics::unique_name("wc-counts"),
    );
    on_kafka::create_topics(&servers, &[&names.lines, &names.counts], 3).await;
    let lines = wordcount::sample_lines(300, streamtime_examples::SAMPLE_START_MS);
    let want = wordcount::expected_counts(lines.iter().map(|l| l.1.as_str()));
    let app_id = topics::unique_name("wc-app");
    let got = on_kafka::wordcount(&servers, &app_id, &names, &lines, &want)
        .await
        .unwrap();
    assert_eq!(got, want);

    // Per word, counts only grow (one partition per word keeps them in order).
    let out = records::consume(&servers, &names.counts, 1, on_kafka::WAIT).await;
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for r in &out {
        let word = StringSerde.deserialize(r.key.as_deref().unwrap()).unwrap();
        let count = I64Serde.deserialize(r.value.as_deref().unwrap()).unwrap();
        let previous = last.insert(word.clone(), count).unwrap_or(0);
        assert!(count > previous, "{word}: {count} after {previous}");
    }
    assert_eq!(last, want);

    // The counts went through the app's repartition topic and into the store's changelog.
    for internal in ["words-repartition", "word-counts-changelog"] {
        let topic = format!("{app_id}-{internal}");
        let written: i64 = topics::watermarks(&servers, &topic)
            .await
            .iter()
            .map(|(_, high)| high)
            .sum();
        assert!(written > 0, "{topic} is empty");
    }
}
