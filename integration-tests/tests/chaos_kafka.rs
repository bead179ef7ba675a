//! A small configuration of the chaos runner (`streamtime-chaos` runs the issue's figures by
//! hand): the test app's windowed count and join over a few ten thousand records, with four
//! kills — meant to land while processing, mid-restore and inside a commit, each verified —
//! and a short broker restart, give exactly the output of an uninterrupted run, and no
//! instance ends because librdkafka fenced its static member; under at-least-once, three
//! kills leave nothing of the uninterrupted run's output missing.

use std::time::Duration;

use streamtime_integration_tests::chaos::{self, ChaosConfig};

fn small(exactly_once: bool) -> ChaosConfig {
    ChaosConfig {
        records: 30_000,
        keys: 200,
        partitions: 4,
        instances: 2,
        kills: 4,
        restore_kills: 1,
        commit_kills: 1,
        outages: vec![Duration::from_secs(6)],
        exactly_once,
        seed: 15,
        step_timeout: Duration::from_secs(90),
        finish_timeout: Duration::from_secs(120),
        ..ChaosConfig::issue(env!("CARGO_BIN_EXE_streamtime-test-app"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chaos_run_under_exactly_once_equals_an_uninterrupted_run() {
    let report = chaos::run(&small(true)).await;
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.kills.len(), 4, "{report}");
    assert_eq!(report.outages.len(), 1, "{report}");
    // Where each kill landed is verified and reported; whether a restore lasts long enough
    // for its kill varies with the machine, so it is not asserted here (state_kafka.rs kills
    // a restore at a chosen batch). After a broker restart librdkafka may fence its own
    // static member: the thread rejoins with a new consumer instead of ending the instance.
    assert!(
        report
            .unexpected_exits
            .iter()
            .all(|e| !e.contains("FencedInstanceId")),
        "no instance ended because librdkafka fenced its static member: {report}"
    );
    clean_up(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chaos_run_under_at_least_once_misses_nothing_of_an_uninterrupted_run() {
    // This configuration once missed 28 of 1 696 emit-final window counts: restored windows
    // expired by the time of changelog writes from past the last commit.
    let config = ChaosConfig {
        records: 15_000,
        kills: 3,
        commit_kills: 0,
        outages: Vec::new(),
        ..small(false)
    };
    let report = chaos::run(&config).await;
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.kills.len(), 3, "{report}");
    clean_up(&report);
}

/// Removes the logs of a run that went as it should; keeps them when an instance exited on
/// its own, to be looked at.
fn clean_up(report: &chaos::ChaosReport) {
    if report.unexpected_exits.is_empty() {
        let _ = std::fs::remove_dir_all(&report.work_dir);
    }
}
