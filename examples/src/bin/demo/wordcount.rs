//! The word count example: 200 generated lines; prints the twenty most frequent words with
//! their counts as the topology computed them.

use streamtime_examples::on_kafka;
use streamtime_examples::wordcount::{self, Topics};
use streamtime_integration_tests::topics;

use super::DemoResult;

/// Runs the word count example.
pub async fn run(servers: &str) -> DemoResult {
    let names = Topics::new(
        &topics::unique_name("demo-lines"),
        &topics::unique_name("demo-word-counts"),
    );
    on_kafka::create_topics(servers, &[&names.lines, &names.counts], 2).await;
    let lines = wordcount::sample_lines(200, streamtime_examples::SAMPLE_START_MS);
    let want = wordcount::expected_counts(lines.iter().map(|l| l.1.as_str()));
    println!("demo: produced {} lines", lines.len());
    let got = on_kafka::wordcount(
        servers,
        &topics::unique_name("demo-wordcount"),
        &names,
        &lines,
        &want,
    )
    .await?;
    let mut ranked: Vec<(&String, &i64)> = got.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("\n  count  word");
    for (word, count) in ranked.iter().take(20) {
        println!("  {count:>5}  {word}");
    }
    if got != want {
        return Err("the counts differ from counting the lines directly".into());
    }
    println!("\ndemo: all {} word counts are correct", want.len());
    Ok(())
}
