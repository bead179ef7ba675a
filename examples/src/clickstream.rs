//! Sessionized clickstream: page views keyed by user are cut into sessions of activity (a
//! session ends after 30 minutes without a click) and each finished session is reported once,
//! with its click count and the pages it visited.
//!
//! Session windows grow with every click and merge when a late click bridges two of them, so
//! results are only final once stream time has passed the session's end plus the gap and the
//! grace period: [`EmitStrategy::OnWindowClose`] emits exactly then.
//!
//! The gap is 30 minutes of *event time*. The demo's generator spreads a few hours of
//! browsing over synthetic timestamps and produces them in seconds, so the real gap needs no
//! scaling down; [`topology_with_gap`] takes any other gap.
//!
//! ```
//! use streamtime::{StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::StringSerde;
//! use streamtime_examples::clickstream;
//!
//! let topics = clickstream::Topics::new("clicks", "sessions");
//! let driver = TopologyTestDriver::new(clickstream::topology(&topics).unwrap(),
//!     StreamsConfig::new("clickstream", "unused")).unwrap();
//! let clicks = driver.input_topic(&topics.clicks, StringSerde, StringSerde);
//! let minute = 60_000;
//! clicks.pipe("ann".into(), "/home".into(), 0).unwrap();
//! clicks.pipe("ann".into(), "/cart".into(), 10 * minute).unwrap();
//! clicks.pipe("ann".into(), "/home".into(), 20 * minute).unwrap();
//! // Two hours later: the first session (0..20 min) is over, a new one starts.
//! clicks.pipe("ann".into(), "/home".into(), 140 * minute).unwrap();
//! let out = driver.output_topic(&topics.sessions, clickstream::session_key_serde(),
//!     clickstream::session_serde()).read_key_values();
//! assert_eq!(out.len(), 1);
//! let (key, session) = &out[0];
//! assert_eq!((key.window.start, key.window.end), (0, 20 * minute));
//! let session = session.as_ref().unwrap();
//! assert_eq!(session.clicks, 3);
//! assert_eq!(session.pages.iter().collect::<Vec<_>>(), ["/cart", "/home"]);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use streamtime::dsl::{EmitStrategy, SessionWindows, WindowedSerde};
use streamtime::serdes::{JsonSerde, OptionSerde, StringSerde};
use streamtime::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StreamsError, Topology,
};

/// A session ends after this much event time without a click from its user.
pub const GAP: Duration = Duration::from_secs(30 * 60);
/// How late a click may arrive and still join its session.
pub const GRACE: Duration = Duration::from_secs(5 * 60);

/// What one user did in one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Clicks in the session.
    pub clicks: u64,
    /// Distinct pages visited, sorted (merging sessions is then order-independent).
    pub pages: BTreeSet<String>,
}

impl Session {
    fn merge(mut self, other: Session) -> Session {
        self.clicks += other.clicks;
        self.pages.extend(other.pages);
        self
    }
}

/// Serde of the session values: JSON, `None` for a retracted session (never emitted with
/// final results, but the type allows it).
pub fn session_serde() -> OptionSerde<JsonSerde<Session>> {
    OptionSerde(JsonSerde::new())
}

/// Serde of the output keys: user id and session window `[first click, last click]`.
pub fn session_key_serde() -> WindowedSerde<StringSerde> {
    WindowedSerde::new(StringSerde)
}

/// Topic names of one deployment of the example.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Clicks: user id → page path (UTF-8).
    pub clicks: String,
    /// Sessions: windowed user id → [`Session`] (JSON), one per finished session.
    pub sessions: String,
}

impl Topics {
    /// Names the two topics.
    pub fn new(clicks: &str, sessions: &str) -> Self {
        Topics {
            clicks: clicks.into(),
            sessions: sessions.into(),
        }
    }
}

/// The topology with the 30-minute [`GAP`] and five minutes of [`GRACE`].
pub fn topology(topics: &Topics) -> Result<Topology, StreamsError> {
    topology_with_gap(topics, GAP, GRACE)
}

/// The topology: clicks → per-user sessions (`gap`, `grace`) → final sessions.
pub fn topology_with_gap(
    topics: &Topics,
    gap: Duration,
    grace: Duration,
) -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(&topics.clicks, Consumed::with(StringSerde, StringSerde))
        .group_by_key_with(Grouped::with_serdes(StringSerde, StringSerde))
        .windowed_by(SessionWindows::of_inactivity_gap_and_grace(gap, grace))
        .emit(EmitStrategy::OnWindowClose)
        .aggregate(
            Session::default,
            |_user, page: String, mut session: Session| {
                session.clicks += 1;
                session.pages.insert(page);
                session
            },
            |_user, a: Session, b: Session| a.merge(b),
            Materialized::as_("user-sessions").with_value_serde(JsonSerde::new()),
        )
        .to_stream()
        .to(
            &topics.sessions,
            Produced::with(session_key_serde(), session_serde()),
        );
    builder.build()
}

const PAGES: &[&str] = &[
    "/home",
    "/search",
    "/product/1",
    "/product/2",
    "/product/3",
    "/cart",
    "/checkout",
    "/help",
];

/// Sample clicks for the demo: `users` users browsing from `start_ms` on for `sessions`
/// sessions each, a few clicks a minute apart per session and an hour or more between sessions, users
/// interleaved in event time, as `(user, page, timestamp)` in produce order. Every tenth click
/// arrives two minutes late (within grace). Each user ends with one click far in the future,
/// which closes every earlier session; the final one stays open. Deterministic.
pub fn sample_clicks(users: usize, sessions: usize, start_ms: i64) -> Vec<(String, String, i64)> {
    let mut seed: u64 = 11;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    let minute = 60_000_i64;
    let mut clicks = Vec::new();
    for u in 0..users {
        let user = format!("user-{u:02}");
        let mut t = start_ms + u as i64 * 7 * minute;
        for _ in 0..sessions {
            for _ in 0..2 + next(6) {
                let page = PAGES[next(PAGES.len() as u64) as usize];
                clicks.push((user.clone(), page.to_string(), t));
                t += (1 + next(4) as i64) * minute;
            }
            // Well past the gap: the next click starts a new session.
            t += 60 * minute + next(60) as i64 * minute;
        }
    }
    clicks.sort_by_key(|c| c.2);
    // Delaying a click two minutes in produce order (not in event time) makes it
    // out of order, but never late: grace is five minutes.
    let mut ordered: Vec<(i64, usize, (String, String, i64))> = clicks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let arrival = if i % 10 == 9 { c.2 + 2 * minute } else { c.2 };
            (arrival, i, c)
        })
        .collect();
    ordered.sort_by_key(|(arrival, i, _)| (*arrival, *i));
    let mut out: Vec<_> = ordered.into_iter().map(|(_, _, c)| c).collect();
    let end = out.iter().map(|c| c.2).max().unwrap_or(0) + 24 * 60 * minute;
    for u in 0..users {
        out.push((format!("user-{u:02}"), "/home".to_string(), end));
    }
    out
}

/// The sessions `clicks` form with `gap`, per user, computed directly: `(user, start, end)`
/// → session. Two clicks at most `gap` apart share a session.
pub fn expected_sessions(
    clicks: &[(String, String, i64)],
    gap: Duration,
) -> BTreeMap<(String, i64, i64), Session> {
    let gap = gap.as_millis() as i64;
    let mut by_user: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (user, page, ts) in clicks {
        by_user.entry(user).or_default().push((*ts, page));
    }
    let mut out = BTreeMap::new();
    for (user, mut clicks) in by_user {
        clicks.sort();
        let mut current: Option<(i64, i64, Session)> = None;
        for (ts, page) in clicks {
            let (start, session) = match current.take() {
                Some((start, end, session)) if ts - end <= gap => (start, session),
                Some((start, end, session)) => {
                    out.insert((user.to_string(), start, end), session);
                    (ts, Session::default())
                }
                None => (ts, Session::default()),
            };
            let mut session = session;
            session.clicks += 1;
            session.pages.insert(page.to_string());
            current = Some((start, ts, session));
        }
        if let Some((start, end, session)) = current {
            out.insert((user.to_string(), start, end), session);
        }
    }
    out
}
