//! The bank example in the test driver: timestamp order across the two input topics.

use std::collections::BTreeMap;

use streamtime::serdes::{I64Serde, StringSerde};
use streamtime::{StreamsConfig, TopologyTestDriver};
use streamtime_examples::bank::{self, Statement, Topics};

fn topics() -> Topics {
    Topics::new("deposits", "withdrawals", "statements")
}

/// Transactions (account, ts, signed amount) whose offset order per topic is ts order, but
/// whose withdrawals all come before the deposits when produced topic by topic.
fn transactions() -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for a in 0..5 {
        for t in 0..6_i64 {
            let amount = if (t + a) % 3 == 0 {
                -(40 + 7 * t)
            } else {
                30 + 5 * t
            };
            out.push((format!("acct-{a}"), 1_000 + t * 100 + a, amount));
        }
    }
    // Each topic is written in event-time order, as a producer would.
    out.sort_by_key(|t| t.1);
    out
}

fn run(
    driver: &TopologyTestDriver,
    topics: &Topics,
    txs: &[(String, i64, i64)],
) -> BTreeMap<String, Vec<Statement>> {
    let deposits = driver.input_topic(&topics.deposits, StringSerde, I64Serde);
    let withdrawals = driver.input_topic(&topics.withdrawals, StringSerde, I64Serde);
    driver.hold();
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 < 0) {
        withdrawals.pipe(acct.clone(), -amount, *ts).unwrap();
    }
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 >= 0) {
        deposits.pipe(acct.clone(), *amount, *ts).unwrap();
    }
    driver.release().unwrap();
    let mut out: BTreeMap<String, Vec<Statement>> = BTreeMap::new();
    for r in driver
        .output_topic(&topics.statements, StringSerde, bank::statement_serde())
        .read_records()
    {
        out.entry(r.key).or_default().push(r.value);
    }
    out
}

#[test]
fn transactions_apply_in_event_time_order_across_topics() {
    let topics = topics();
    for partitions in [1, 3] {
        let driver = TopologyTestDriver::with_partitions(
            bank::topology(&topics).unwrap(),
            StreamsConfig::new("bank", "unused"),
            &[
                ("deposits", partitions),
                ("withdrawals", partitions),
                ("statements", partitions),
            ],
        )
        .unwrap();
        let txs = transactions();
        let out = run(&driver, &topics, &txs);
        let mut fees = 0;
        for a in 0..5 {
            let acct = format!("acct-{a}");
            let mine: Vec<(i64, i64)> = txs
                .iter()
                .filter(|t| t.0 == acct)
                .map(|t| (t.1, t.2))
                .collect();
            let expected = bank::expected_statements(&mine);
            fees += expected.iter().filter(|s| s.fee > 0).count();
            assert_eq!(out[&acct], expected, "{acct} with {partitions} partitions");
        }
        // The data is built so that fees happen, but fewer than offset order would charge.
        assert!(fees > 0);
    }
}

#[test]
fn without_time_sync_offset_order_would_charge_wrong_fees() {
    // The same input processed as it arrives (no hold) applies withdrawals first: this shows
    // the scenario really distinguishes the two orders.
    let topics = topics();
    let driver = TopologyTestDriver::new(
        bank::topology(&topics).unwrap(),
        StreamsConfig::new("bank", "unused"),
    )
    .unwrap();
    let txs = transactions();
    let deposits = driver.input_topic(&topics.deposits, StringSerde, I64Serde);
    let withdrawals = driver.input_topic(&topics.withdrawals, StringSerde, I64Serde);
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 < 0) {
        withdrawals.pipe(acct.clone(), -amount, *ts).unwrap();
    }
    for (acct, ts, amount) in txs.iter().filter(|t| t.2 >= 0) {
        deposits.pipe(acct.clone(), *amount, *ts).unwrap();
    }
    let got = driver
        .output_topic(&topics.statements, StringSerde, bank::statement_serde())
        .read_records();
    let wrong_fees: i64 = got.iter().map(|r| r.value.fee).sum();
    let right_fees: i64 = (0..5)
        .map(|a| {
            let acct = format!("acct-{a}");
            let mine: Vec<(i64, i64)> = txs
                .iter()
                .filter(|t| t.0 == acct)
                .map(|t| (t.1, t.2))
                .collect();
            bank::expected_statements(&mine)
                .iter()
                .map(|s| s.fee)
                .sum::<i64>()
        })
        .sum();
    assert!(
        wrong_fees > right_fees,
        "offset order charges {wrong_fees}, event time {right_fees}"
    );
}
