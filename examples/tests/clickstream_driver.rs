//! The clickstream example on the test driver: each finished session is emitted exactly once
//! with the clicks and pages that sessionizing the clicks directly gives, out-of-order clicks
//! within grace included; sessions still open at the end are not emitted.

use streamtime::serdes::StringSerde;
use streamtime::{StreamsConfig, TopologyTestDriver};
use streamtime_examples::clickstream::{self, Topics};

#[test]
fn finished_sessions_are_emitted_once_and_match_direct_sessionizing() {
    let topics = Topics::new("clicks", "sessions");
    let driver = TopologyTestDriver::with_partitions(
        clickstream::topology(&topics).unwrap(),
        StreamsConfig::new("clickstream", "unused"),
        &[("clicks", 2), ("sessions", 2)],
    )
    .unwrap();
    let users = 6;
    let clicks = clickstream::sample_clicks(users, 5, 0);
    // The sample really is out of order in places, yet nothing in it is late.
    assert!(clicks.windows(2).any(|w| w[1].2 < w[0].2));
    let input = driver.input_topic(&topics.clicks, StringSerde, StringSerde);
    for (user, page, ts) in &clicks {
        input.pipe(user.clone(), page.clone(), *ts).unwrap();
    }
    assert_eq!(driver.dropped_records(), 0);

    let mut want = clickstream::expected_sessions(&clicks, clickstream::GAP);
    let end = clicks.last().unwrap().2;
    // Every user's final click opens a session that is still running: not final yet.
    assert_eq!(
        want.keys().filter(|(_, start, _)| *start == end).count(),
        users
    );
    want.retain(|(_, start, _), _| *start != end);
    assert!(want.len() >= users * 4, "several sessions per user");
    assert!(want.values().any(|s| s.clicks > 3 && s.pages.len() > 2));

    let out = driver
        .output_topic(
            &topics.sessions,
            clickstream::session_key_serde(),
            clickstream::session_serde(),
        )
        .read_key_values();
    let mut got = std::collections::BTreeMap::new();
    for (key, session) in out {
        let session = session.expect("final results never retract");
        let previous = got.insert((key.key.clone(), key.window.start, key.window.end), session);
        assert!(previous.is_none(), "{key:?} emitted twice");
    }
    assert_eq!(got, want);
}

#[test]
fn a_late_click_bridging_two_sessions_merges_them() {
    let topics = Topics::new("clicks", "sessions");
    let driver = TopologyTestDriver::new(
        clickstream::topology(&topics).unwrap(),
        StreamsConfig::new("clickstream", "unused"),
    )
    .unwrap();
    let input = driver.input_topic(&topics.clicks, StringSerde, StringSerde);
    let minute = 60_000;
    input.pipe("ann".into(), "/home".into(), 0).unwrap();
    // 33 minutes: more than the gap after the first click, a second session.
    input
        .pipe("ann".into(), "/cart".into(), 33 * minute)
        .unwrap();
    // Within the gap of both sessions, and the first is still open (it closes when stream
    // time passes its end + gap + grace = 35 minutes): one session of three clicks.
    input
        .pipe("ann".into(), "/help".into(), 16 * minute)
        .unwrap();
    input
        .pipe("ann".into(), "/home".into(), 200 * minute)
        .unwrap();
    let out = driver
        .output_topic(
            &topics.sessions,
            clickstream::session_key_serde(),
            clickstream::session_serde(),
        )
        .read_key_values();
    // The retractions of the two merged-away sessions are not emitted: results are final.
    assert_eq!(out.len(), 1, "{out:?}");
    let (key, session) = &out[0];
    assert_eq!((key.window.start, key.window.end), (0, 33 * minute));
    let session = session.as_ref().unwrap();
    assert_eq!(session.clicks, 3);
    assert_eq!(
        session.pages.iter().map(String::as_str).collect::<Vec<_>>(),
        ["/cart", "/help", "/home"]
    );
}
