//! The bank example on a real broker: withdrawals produced before deposits are still applied
//! in event-time order; a second deployment gives identical output; the test driver
//! gives the same output as the cluster; and a service SIGKILLed mid-stream and restarted
//! changes no statement under exactly-once.

use std::collections::BTreeMap;
use std::time::Duration;

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{KafkaStreams, StreamsConfig, TopologyTestDriver};
use streamtime_examples::bank::{self, Statement, Topics};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::{bootstrap_servers, topics};

const PARTITIONS: i32 = 3;
const WAIT: Duration = Duration::from_secs(120);

/// (account, timestamp, signed amount), in timestamp order.
fn transactions() -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for a in 0..12_i64 {
        for t in 0..15_i64 {
            let amount = if (t * 7 + a) % 3 == 0 {
                -(35 + (t * 13 + a) % 60)
            } else {
                20 + (t * 11 + a) % 40
            };
            out.push((
                format!("acct-{a:02}"),
                1_700_000_000_000 + t * 1_000 + a,
                amount,
            ));
        }
    }
    out.sort_by_key(|t| t.1);
    out
}

fn as_records(txs: &[(String, i64, i64)], withdrawals: bool) -> Vec<TestRecord> {
    txs.iter()
        .filter(|t| (t.2 < 0) == withdrawals)
        .map(|(acct, ts, amount)| TestRecord::new(acct, amount.abs().to_be_bytes().to_vec(), *ts))
        .collect()
}

/// Statements per account, in output order.
fn by_account(out: &[TestRecord]) -> BTreeMap<String, Vec<Statement>> {
    let mut map: BTreeMap<String, Vec<Statement>> = BTreeMap::new();
    for r in out {
        let s: Statement = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        map.entry(r.key_str()).or_default().push(s);
    }
    map
}

fn expected(txs: &[(String, i64, i64)]) -> BTreeMap<String, Vec<Statement>> {
    let mut per: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (acct, ts, amount) in txs {
        per.entry(acct.clone()).or_default().push((*ts, *amount));
    }
    per.into_iter()
        .map(|(a, t)| (a, bank::expected_statements(&t)))
        .collect()
}

async fn run_app(
    servers: &str,
    app_id: &str,
    topics: &Topics,
    expected_count: usize,
) -> Vec<TestRecord> {
    let config = StreamsConfig::new(app_id, servers).commit_interval(Duration::from_millis(500));
    let mut app = KafkaStreams::new(bank::topology(topics).unwrap(), config).unwrap();
    app.start().unwrap();
    let out = records::consume(servers, &topics.statements, expected_count, WAIT).await;
    app.close().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_on_kafka_applies_event_time_order_is_repeatable_and_matches_the_driver() {
    let servers = bootstrap_servers();
    let names = Topics::new(
        &topics::unique_name("bank-deposits"),
        &topics::unique_name("bank-withdrawals"),
        &topics::unique_name("bank-statements"),
    );
    for t in [&names.deposits, &names.withdrawals, &names.statements] {
        topics::create(&servers, t, PARTITIONS).await;
    }
    let txs = transactions();
    // Every withdrawal is produced before any deposit: offset order across the topics is
    // the opposite of event time for most accounts.
    records::produce(&servers, &names.withdrawals, as_records(&txs, true)).await;
    records::produce(&servers, &names.deposits, as_records(&txs, false)).await;

    let app_id = topics::unique_name("bank-app");
    let first = run_app(&servers, &app_id, &names, txs.len()).await;
    assert_eq!(first.len(), txs.len(), "one statement per transaction");
    let want = expected(&txs);
    let fees: usize = want.values().flatten().filter(|s| s.fee > 0).count();
    assert!(fees > 0, "the data exercises overdrafts");
    assert_eq!(
        by_account(&first),
        want,
        "statements follow event time, not offset order"
    );

    // A second deployment (a new application id, so fresh state and offsets) reads
    // everything again, into a new output. (Deleting only the group would keep the balances
    // in the store and its changelog: a reset needs `streamtime-reset`.)
    let rerun_names = Topics::new(
        &names.deposits,
        &names.withdrawals,
        &topics::unique_name("bank-statements-2"),
    );
    topics::create(&servers, &rerun_names.statements, PARTITIONS).await;
    let rerun_id = topics::unique_name("bank-app-rerun");
    let second = run_app(&servers, &rerun_id, &rerun_names, txs.len()).await;
    let per_partition = |out: &[TestRecord]| -> BTreeMap<i32, Vec<(String, Vec<u8>, i64)>> {
        let mut map: BTreeMap<i32, Vec<_>> = BTreeMap::new();
        for r in out {
            map.entry(r.partition.unwrap()).or_default().push((
                r.key_str(),
                r.value.clone().unwrap(),
                r.timestamp,
            ));
        }
        map
    };
    assert_eq!(
        per_partition(&first),
        per_partition(&second),
        "a rerun gives identical output"
    );

    // The driver, given the same input with all of it available up front, agrees.
    let driver = TopologyTestDriver::with_partitions(
        bank::topology(&names).unwrap(),
        StreamsConfig::new(&app_id, "unused"),
        &[
            (&names.deposits, PARTITIONS),
            (&names.withdrawals, PARTITIONS),
            (&names.statements, PARTITIONS),
        ],
    )
    .unwrap();
    let deposits = driver.input_topic(&names.deposits, StringSerde, I64Serde);
    let withdrawals = driver.input_topic(&names.withdrawals, StringSerde, I64Serde);
    driver.hold();
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 < 0) {
        withdrawals.pipe(acct.clone(), -amount, *ts).unwrap();
    }
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 >= 0) {
        deposits.pipe(acct.clone(), *amount, *ts).unwrap();
    }
    driver.release().unwrap();
    let driven: Vec<TestRecord> = driver
        .raw_records(&names.statements)
        .into_iter()
        .map(|r| TestRecord {
            partition: Some(r.partition),
            key: r.key,
            value: r.value,
            timestamp: r.timestamp,
            headers: Vec::new(),
            offset: r.offset,
        })
        .collect();
    assert_eq!(
        per_partition(&driven),
        per_partition(&first),
        "driver output equals cluster output"
    );
}

/// The bank service as a process: started, SIGKILLed after part of the statements, started
/// again; under exactly-once every statement is as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_bank_changes_no_statement_under_exactly_once() {
    use streamtime_integration_tests::app_process::AppProcess;
    let servers = bootstrap_servers();
    let names = Topics::new(
        &topics::unique_name("bank-kill-deposits"),
        &topics::unique_name("bank-kill-withdrawals"),
        &topics::unique_name("bank-kill-statements"),
    );
    for t in [&names.deposits, &names.withdrawals, &names.statements] {
        topics::create(&servers, t, PARTITIONS).await;
    }
    let txs = transactions();
    let (early, late) = txs.split_at(txs.len() / 2);
    let app_id = topics::unique_name("bank-kill-app");
    let instance = topics::unique_name("bank-kill");
    let state_dir = std::env::temp_dir().join(topics::unique_name("bank-kill-state"));
    let state = state_dir.to_string_lossy().into_owned();
    let args = [
        "--bootstrap-servers",
        &servers,
        "--application-id",
        &app_id,
        "--deposits",
        &names.deposits,
        "--withdrawals",
        &names.withdrawals,
        "--statements",
        &names.statements,
        "--exactly-once",
        "--instance-id",
        &instance,
        "--state-dir",
        &state,
        "--commit-interval-ms",
        "100",
    ];
    let binary = env!("CARGO_BIN_EXE_bank-service");
    records::produce(&servers, &names.withdrawals, as_records(early, true)).await;
    records::produce(&servers, &names.deposits, as_records(early, false)).await;
    let service = AppProcess::start(binary, &args);
    // Killed once a third of the statements are committed: balances are mid-stream.
    records::consume(&servers, &names.statements, txs.len() / 3, WAIT).await;
    service.kill();
    records::produce(&servers, &names.withdrawals, as_records(late, true)).await;
    records::produce(&servers, &names.deposits, as_records(late, false)).await;
    let service = AppProcess::start(binary, &args);
    let out = records::consume(&servers, &names.statements, txs.len(), WAIT).await;
    service.terminate();
    let _ = std::fs::remove_dir_all(&state_dir);
    assert_eq!(
        out.len(),
        txs.len(),
        "one committed statement per transaction"
    );
    assert_eq!(
        by_account(&out),
        expected(&txs),
        "every statement as if the service had never stopped"
    );
}
