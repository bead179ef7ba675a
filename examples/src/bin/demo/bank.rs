//! The bank overdraft example: produces sample transactions — all withdrawals first, then
//! all deposits, so offset order disagrees with event time — runs the topology, and prints
//! each account's statements next to the ones event-time order demands.

use std::collections::BTreeMap;
use std::time::Duration;

use streamtime::{KafkaStreams, StreamsConfig};
use streamtime_examples::bank::{self, Statement, Topics};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::topics;

use super::DemoResult;

/// Deterministic sample transactions: (account, timestamp, signed amount).
fn sample(accounts: usize, per_account: usize) -> Vec<(String, i64, i64)> {
    let mut seed: u64 = 42;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    let base = 1_700_000_000_000;
    let mut out = Vec::new();
    for a in 0..accounts {
        for t in 0..per_account {
            let amount = 10 + next() % 90;
            let signed = if next() % 2 == 0 { amount } else { -amount };
            out.push((
                format!("acct-{a}"),
                base + (t * accounts + a) as i64 * 1000,
                signed,
            ));
        }
    }
    // Each topic is written in event-time order, as a producer would.
    out.sort_by_key(|t| t.1);
    out
}

/// Runs the bank example with `accounts` accounts of `per_account` transactions each.
pub async fn run(servers: &str, accounts: usize, per_account: usize) -> DemoResult {
    let servers = servers.to_string();

    let names = Topics::new(
        &topics::unique_name("demo-deposits"),
        &topics::unique_name("demo-withdrawals"),
        &topics::unique_name("demo-statements"),
    );
    for t in [&names.deposits, &names.withdrawals, &names.statements] {
        topics::create(&servers, t, 2).await;
    }

    let transactions = sample(accounts, per_account);
    let (withdrawals, deposits): (Vec<_>, Vec<_>) =
        transactions.iter().partition(|(_, _, a)| *a < 0);
    let to_records = |txs: Vec<&(String, i64, i64)>| -> Vec<TestRecord> {
        txs.into_iter()
            .map(|(acct, ts, amount)| {
                TestRecord::new(acct, amount.abs().to_be_bytes().to_vec(), *ts)
            })
            .collect()
    };
    // Withdrawals first: a consumer in offset order would see every withdrawal before any
    // deposit and charge fees that event time does not justify.
    records::produce(&servers, &names.withdrawals, to_records(withdrawals)).await;
    records::produce(&servers, &names.deposits, to_records(deposits)).await;
    println!(
        "demo: produced {} transactions (withdrawals first, then deposits)",
        transactions.len()
    );

    let config = StreamsConfig::new(topics::unique_name("demo-bank"), servers.clone())
        .commit_interval(Duration::from_secs(1));
    let mut app = KafkaStreams::new(bank::topology(&names)?, config)?;
    app.start()?;
    let out = records::consume(
        &servers,
        &names.statements,
        transactions.len(),
        Duration::from_secs(120),
    )
    .await;
    app.close()?;

    let mut actual: BTreeMap<String, Vec<Statement>> = BTreeMap::new();
    for r in &out {
        let s: Statement = serde_json::from_slice(r.value.as_deref().unwrap_or_default())?;
        actual.entry(r.key_str()).or_default().push(s);
    }
    let mut by_account: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (acct, ts, amount) in &transactions {
        by_account
            .entry(acct.clone())
            .or_default()
            .push((*ts, *amount));
    }
    let mut all_match = true;
    for (acct, txs) in &by_account {
        let expected = bank::expected_statements(txs);
        let got = actual.get(acct).cloned().unwrap_or_default();
        println!("\n{acct}:   amount  balance  fee");
        for s in &got {
            println!("        {:>7}  {:>7}  {:>3}", s.amount, s.balance, s.fee);
        }
        if got != expected {
            all_match = false;
            println!("  MISMATCH: event-time order gives {expected:?}");
        }
    }
    if !all_match {
        return Err("statements differ from event-time order".into());
    }
    println!(
        "\ndemo: all {} statements match event-time order",
        out.len()
    );
    Ok(())
}
