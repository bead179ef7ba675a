//! The bank overdraft example: deposits and withdrawals arrive on two topics keyed by
//! account. They must be applied in event-time order across both topics; a withdrawal that
//! takes the true balance below zero is charged an overdraft fee.
//!
//! Offset order across the two topics says nothing about event order (the withdrawals may
//! all have been produced first), so only timestamp-ordered processing gets the fees right.
//!
//! Balances live in the changelogged key-value store `balances`, so a restart, a rebalance
//! or a crash changes no statement (exactly once under exactly-once processing).
//!
//! ```
//! use streamtime::{StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//! use streamtime_examples::bank;
//!
//! let topics = bank::Topics::new("deposits", "withdrawals", "statements");
//! let driver = TopologyTestDriver::new(bank::topology(&topics).unwrap(),
//!     StreamsConfig::new("bank", "unused")).unwrap();
//! let deposits = driver.input_topic(&topics.deposits, StringSerde, I64Serde);
//! let withdrawals = driver.input_topic(&topics.withdrawals, StringSerde, I64Serde);
//! deposits.pipe("alice".into(), 100, 1).unwrap();
//! withdrawals.pipe("alice".into(), 150, 2).unwrap();
//! let out = driver.output_topic(&topics.statements, StringSerde, bank::statement_serde());
//! let last = out.read_records().pop().unwrap().value;
//! assert_eq!((last.balance, last.fee), (-50 - bank::OVERDRAFT_FEE, bank::OVERDRAFT_FEE));
//! ```

use serde::{Deserialize, Serialize};
use streamtime::serdes::{I64Serde, JsonSerde, StringSerde};
use streamtime::stores::{KeyValueStoreHandle, Stores};
use streamtime::{
    Consumed, ProcessResult, Processor, ProcessorContext, Produced, Record, StreamsBuilder,
    StreamsError, Topology,
};

/// Fee charged when a withdrawal makes the balance negative.
pub const OVERDRAFT_FEE: i64 = 25;

/// One line of an account statement, written for every transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The transaction: positive for a deposit, negative for a withdrawal.
    pub amount: i64,
    /// Balance after the transaction and any fee.
    pub balance: i64,
    /// Overdraft fee charged for this transaction (0 or [`OVERDRAFT_FEE`]).
    pub fee: i64,
}

/// Serde of statements (JSON).
pub fn statement_serde() -> JsonSerde<Statement> {
    JsonSerde::new()
}

/// Topic names of one deployment of the example.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Deposits: account → amount (i64, big-endian).
    pub deposits: String,
    /// Withdrawals: account → amount (i64, big-endian).
    pub withdrawals: String,
    /// Statements: account → [`Statement`] (JSON).
    pub statements: String,
}

impl Topics {
    /// Names the three topics.
    pub fn new(deposits: &str, withdrawals: &str, statements: &str) -> Self {
        Topics {
            deposits: deposits.into(),
            withdrawals: withdrawals.into(),
            statements: statements.into(),
        }
    }
}

/// The store of the balances: account → balance.
pub const BALANCES: &str = "balances";

/// Applies transactions to the balances in the store [`BALANCES`].
#[derive(Default)]
pub struct Ledger {
    balances: Option<KeyValueStoreHandle<String, i64>>,
}

impl Processor<String, i64, String, Statement> for Ledger {
    fn init(&mut self, ctx: &mut ProcessorContext<String, Statement>) -> ProcessResult {
        self.balances = Some(ctx.key_value_store(BALANCES, StringSerde, I64Serde)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, Statement>,
        record: Record<String, i64>,
    ) -> ProcessResult {
        let balances = self.balances.as_ref().expect("init ran");
        let mut balance = balances.get(&record.key)?.unwrap_or(0) + record.value;
        let fee = if record.value < 0 && balance < 0 {
            OVERDRAFT_FEE
        } else {
            0
        };
        balance -= fee;
        balances.put(&record.key, &balance)?;
        let statement = Statement {
            amount: record.value,
            balance,
            fee,
        };
        ctx.forward(record.with_value(statement))
    }
}

/// The bank topology: both topics merged (withdrawals negated) into one ledger.
pub fn topology(topics: &Topics) -> Result<Topology, StreamsError> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(Stores::key_value(BALANCES));
    let deposits = builder.stream(&topics.deposits, Consumed::with(StringSerde, I64Serde));
    let withdrawals = builder
        .stream(&topics.withdrawals, Consumed::with(StringSerde, I64Serde))
        .map_values(|amount: i64| -amount);
    deposits
        .merge(&withdrawals)
        .process_values_with_stores(Ledger::default, &[BALANCES])
        .to(
            &topics.statements,
            Produced::with(StringSerde, statement_serde()),
        );
    builder.build()
}

/// The statements a correct run produces for `transactions` of one account: applied in
/// timestamp order. Each transaction is `(timestamp, signed amount)`.
pub fn expected_statements(transactions: &[(i64, i64)]) -> Vec<Statement> {
    let mut sorted = transactions.to_vec();
    sorted.sort();
    let mut balance = 0;
    sorted
        .into_iter()
        .map(|(_, amount)| {
            balance += amount;
            let fee = if amount < 0 && balance < 0 {
                OVERDRAFT_FEE
            } else {
                0
            };
            balance -= fee;
            Statement {
                amount,
                balance,
                fee,
            }
        })
        .collect()
}
