//! The clickstream example on a real broker: every finished session is emitted exactly once
//! with the clicks and pages that sessionizing the clicks directly gives, although a tenth
//! of the clicks arrive out of order; sessions still open are not emitted.

use streamtime_examples::clickstream::{self, Topics};
use streamtime_examples::on_kafka;
use streamtime_integration_tests::{bootstrap_servers, topics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickstream_on_kafka_emits_each_finished_session_once() {
    let servers = bootstrap_servers();
    let names = Topics::new(
        &topics::unique_name("clicks"),
        &topics::unique_name("sessions"),
    );
    on_kafka::create_topics(&servers, &[&names.clicks, &names.sessions], 2).await;
    let users = 8;
    let clicks = clickstream::sample_clicks(users, 4, streamtime_examples::SAMPLE_START_MS);
    let end = clicks.last().unwrap().2;
    let mut want = clickstream::expected_sessions(&clicks, clickstream::GAP);
    want.retain(|(_, start, _), _| *start != end);
    assert!(want.len() >= users * 3);

    let got = on_kafka::clickstream(
        &servers,
        &topics::unique_name("clickstream-app"),
        &names,
        &clicks,
        want.len(),
    )
    .await
    .unwrap();
    let emitted_twice: Vec<_> = got.iter().filter(|(_, v)| v.1 != 1).collect();
    assert!(
        emitted_twice.is_empty(),
        "emitted more than once: {emitted_twice:?}"
    );
    let sessions: std::collections::BTreeMap<_, _> = got
        .into_iter()
        .map(|(k, (session, _))| (k, session.expect("final sessions are never retracted")))
        .collect();
    assert_eq!(sessions, want);
}
