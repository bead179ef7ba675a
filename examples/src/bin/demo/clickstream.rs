//! The clickstream example: eight users browsing in several sessions each; prints every
//! finished session with its clicks and pages.

use streamtime_examples::clickstream::{self, Topics};
use streamtime_examples::on_kafka;
use streamtime_integration_tests::topics;

use super::DemoResult;

/// Runs the clickstream example.
pub async fn run(servers: &str) -> DemoResult {
    let names = Topics::new(
        &topics::unique_name("demo-clicks"),
        &topics::unique_name("demo-sessions"),
    );
    on_kafka::create_topics(servers, &[&names.clicks, &names.sessions], 2).await;
    let clicks = clickstream::sample_clicks(8, 4, streamtime_examples::SAMPLE_START_MS);
    // Each user's last click (far in the future) opens a session that is still running.
    let mut want = clickstream::expected_sessions(&clicks, clickstream::GAP);
    let last: Vec<_> = clicks[clicks.len() - 8..].iter().map(|c| c.2).collect();
    want.retain(|(_, start, _), _| !last.contains(start));
    println!("demo: produced {} clicks", clicks.len());
    let got = on_kafka::clickstream(
        servers,
        &topics::unique_name("demo-clickstream"),
        &names,
        &clicks,
        want.len(),
    )
    .await?;
    println!("\nuser      start (min)  minutes  clicks  pages");
    let mut ok = got.len() == want.len();
    for ((user, start, end), (session, times)) in &got {
        let Some(session) = session else {
            ok = false;
            continue;
        };
        println!(
            "{user:<9} {:>11}  {:>7}  {:>6}  {}",
            (start - streamtime_examples::SAMPLE_START_MS) / 60_000,
            (end - start) / 60_000,
            session.clicks,
            session.pages.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        ok &= *times == 1 && want.get(&(user.clone(), *start, *end)) == Some(session);
    }
    if !ok {
        return Err("the sessions differ from sessionizing the clicks directly".into());
    }
    println!("\ndemo: all {} sessions are final and correct", want.len());
    Ok(())
}
