//! Table operators on a real broker, under exactly-once with the app SIGKILLed mid-stream and
//! restarted: a `KGroupedTable` count whose rows keep changing group (and are deleted) gives
//! every move's update exactly once and ends at the true counts; a foreign-key join of
//! tables with different partition counts, whose rows change foreign key and are deleted on
//! both sides, ends at the true join; a stream joined with a global table (filled from
//! every partition before processing) gives every join exactly once; a stream joined with a
//! versioned table as of each record's time, out-of-order records held for a grace period,
//! gives every order the price it had at its time, exactly once across two kills; a global
//! table restarts from its checkpoint, reading only what its topic gained meanwhile; a table
//! restoring from its source topic (`topology.optimization`) holds, after a kill, only what
//! was committed on that topic, and after a clean stop restores nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use streamtime_integration_tests::app_process::{read_status, AppConnection, AppProcess};
use streamtime_integration_tests::records::{self, TestRecord};
use streamtime_integration_tests::wait::eventually_async;
use streamtime_integration_tests::{bootstrap_servers, topics};

const USERS: usize = 400;
const REGIONS: usize = 7;
const ROUNDS: usize = 6;
const WAIT: Duration = Duration::from_secs(180);

/// Round `round`'s value for `user`: a region, or `None` (the user is deleted) for about one
/// user in eleven.
fn region_of(user: usize, round: usize) -> Option<String> {
    if (user + 3 * round).is_multiple_of(11) {
        return None;
    }
    Some(format!(
        "region-{}",
        (user * 31 + round * round * 17 + round) % REGIONS
    ))
}

/// What the rounds do to the regions: the number of aggregate updates they cause (one per
/// move, a row staying in its region moving once) and each region's final count.
fn ground_truth(rounds: usize) -> (usize, BTreeMap<String, i64>) {
    let mut current: Vec<Option<String>> = vec![None; USERS];
    let mut updates = 0;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..rounds {
        for (user, slot) in current.iter_mut().enumerate() {
            let next = region_of(user, round);
            updates += match (&*slot, &next) {
                (Some(a), Some(b)) if a == b => 1,
                (Some(_), Some(_)) => 2,
                (None, None) => 0,
                _ => 1,
            };
            if let Some(old) = slot.as_ref() {
                *counts.get_mut(old).expect("counted") -= 1;
            }
            if let Some(new) = &next {
                *counts.entry(new.clone()).or_default() += 1;
            }
            *slot = next;
        }
    }
    (updates, counts)
}

struct TableApp {
    connection: AppConnection,
    /// The `fk-join` topology's right table.
    right_input: String,
    state_dir: PathBuf,
    status: PathBuf,
    instance: String,
}

impl TableApp {
    /// An app whose input has 3 partitions and whose right table has 2.
    async fn new(prefix: &str) -> Self {
        Self::with_right_partitions(prefix, 2).await
    }

    async fn with_right_partitions(prefix: &str, right_partitions: i32) -> Self {
        let servers = bootstrap_servers();
        let input = topics::unique_name(&format!("{prefix}-in"));
        let output = topics::unique_name(&format!("{prefix}-out"));
        topics::create(&servers, &input, 3).await;
        topics::create(&servers, &output, 3).await;
        let right_input = topics::unique_name(&format!("{prefix}-right"));
        topics::create(&servers, &right_input, right_partitions).await;
        TableApp {
            right_input,
            connection: AppConnection {
                bootstrap_servers: servers,
                application_id: topics::unique_name(&format!("{prefix}-app")),
                input,
                output,
            },
            state_dir: std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-state"))),
            status: std::env::temp_dir().join(topics::unique_name(&format!("{prefix}-status"))),
            instance: topics::unique_name(prefix),
        }
    }

    fn start(&self, topology: &str) -> AppProcess {
        self.start_with(topology, &[])
    }

    /// [`TableApp::start`] with `extra` options.
    fn start_with(&self, topology: &str, extra: &[&str]) -> AppProcess {
        let _ = std::fs::remove_file(&self.status);
        let state_dir = self.state_dir.to_string_lossy().into_owned();
        let status = self.status.to_string_lossy().into_owned();
        let mut args = vec![
            "--topology",
            topology,
            "--exactly-once",
            "--instance-id",
            &self.instance,
            "--commit-interval-ms",
            "100",
            "--state-dir",
            &state_dir,
            "--status-file",
            &status,
            "--right-input",
            &self.right_input,
        ];
        args.extend_from_slice(extra);
        args.extend(self.connection.args());
        AppProcess::start(env!("CARGO_BIN_EXE_streamtime-test-app"), &args)
    }

    async fn produce_round(&self, round: usize) {
        let rows = (0..USERS).map(|user| (format!("user-{user}"), region_of(user, round)));
        self.produce(&self.connection.input, round, rows).await;
    }

    /// `rows` (key, value or `None` for a deletion) to `topic`, stamped after every earlier
    /// round's.
    async fn produce(
        &self,
        topic: &str,
        round: usize,
        rows: impl Iterator<Item = (String, Option<String>)>,
    ) {
        let records = rows
            .enumerate()
            .map(|(i, (key, value))| TestRecord {
                value: value.map(String::into_bytes),
                ..TestRecord::new(&key, Vec::new(), 1_000 + (round * 10_000 + i) as i64)
            })
            .collect();
        records::produce(&self.connection.bootstrap_servers, topic, records).await;
    }

    /// Waits until the running app reports at least `n` records processed (over both of its
    /// sub-topologies).
    async fn processed_at_least(&self, n: u64) {
        let status = &self.status;
        eventually_async(
            WAIT,
            &format!("the app to process {n} records"),
            move || async move {
                let processed: u64 = read_status(status)
                    .iter()
                    .filter(|t| t.role == "active")
                    .map(|t| t.processed)
                    .sum();
                if processed >= n {
                    Ok(())
                } else {
                    Err(format!("{processed} records processed"))
                }
            },
        )
        .await;
    }
}

impl Drop for TableApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_file(&self.status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_table_count_whose_rows_change_group_is_exact_under_exactly_once_across_kills() {
    let app = TableApp::new("table-group").await;
    let (updates, truth) = ground_truth(ROUNDS);

    // Two rounds, killed after a few hundred records; two more, killed again; the last two.
    for round in 0..2 {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");
    app.processed_at_least(300).await;
    process.kill();
    for round in 2..4 {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");
    app.processed_at_least(500).await;
    process.kill();
    for round in 4..ROUNDS {
        app.produce_round(round).await;
    }
    let process = app.start("table-group");

    let out = records::consume(
        &app.connection.bootstrap_servers,
        &app.connection.output,
        updates,
        WAIT,
    )
    .await;
    process.terminate();

    let mut per_region: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &out {
        let count = i64::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap());
        per_region.entry(r.key_str()).or_default().push(count);
    }
    assert_eq!(
        out.len(),
        updates,
        "one committed update per move, none lost or repeated across two kills"
    );
    for (region, counts) in &per_region {
        assert!(
            counts.iter().all(|n| *n >= 0),
            "{region}: a count never goes below zero: {counts:?}"
        );
        // Each update moves one user in or out (or keeps one): consecutive counts differ by
        // at most one.
        assert!(
            counts.windows(2).all(|w| (w[0] - w[1]).abs() <= 1),
            "{region}: counts move by one user at a time: {counts:?}"
        );
    }
    let last: BTreeMap<String, i64> = per_region
        .iter()
        .map(|(region, counts)| (region.clone(), *counts.last().unwrap()))
        .collect();
    assert_eq!(last, truth, "every region ends at its true number of users");
}

const JOINED_PRODUCTS: usize = 30;

/// Orders `range` (`o<n>`, keyed by product `p0`…), stamped from `from` on.
fn orders_from(range: std::ops::Range<usize>, from: i64) -> impl Iterator<Item = TestRecord> {
    range.map(move |o| {
        TestRecord::new(
            &format!("p{}", o % JOINED_PRODUCTS),
            format!("o{o}").into_bytes(),
            from + o as i64,
        )
    })
}

/// Every product's price `price`, stamped from `at` on.
fn prices(price: &str, at: i64) -> Vec<TestRecord> {
    (0..JOINED_PRODUCTS)
        .map(|p| TestRecord::new(&format!("p{p}"), price.as_bytes().to_vec(), at + p as i64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_restoring_from_its_source_topic_holds_only_what_was_committed_on_it() {
    // The stream and the table must be co-partitioned: 3 partitions each.
    let app = TableApp::with_right_partitions("table-source", 3).await;
    let servers = app.connection.bootstrap_servers.clone();
    let log = std::env::temp_dir().join(topics::unique_name("table-source-restores"));
    let log_arg = log.to_string_lossy().into_owned();
    let extra = ["--reuse-source-topics", "--restore-log", &log_arg];
    let (input, output) = (&app.connection.input, &app.connection.output);

    // Orders 0..300 join the first prices; the app is killed once they are out.
    records::produce(&servers, &app.right_input, prices("v0", 1_000)).await;
    records::produce(&servers, input, orders_from(0..300, 2_000).collect()).await;
    let process = app.start_with("table-join", &extra);
    records::consume(&servers, output, 300, WAIT).await;
    process.kill();
    // While it is down: orders 300..600, then new prices stamped after them. The table's
    // topic now runs past what was committed on it: a restore reading to its end would
    // join orders 300..600 with prices they precede.
    records::produce(&servers, input, orders_from(300..600, 10_000).collect()).await;
    records::produce(&servers, &app.right_input, prices("v1", 20_000)).await;
    let process = app.start_with("table-join", &extra);
    records::consume(&servers, output, 600, WAIT).await;
    process.terminate();
    // The first start had nothing to restore; the one after the kill read each partition
    // of the table's topic from its start to the committed offset: the 30 first prices.
    let (started, _) = restores_from(&log, &app.right_input);
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(started.iter().all(|(_, from, _)| *from == 0), "{started:?}");
    let restored: i64 = started.iter().map(|(_, _, to)| to).sum();
    assert_eq!(
        restored, JOINED_PRODUCTS as i64,
        "up to the committed offsets: {started:?}"
    );
    let app_id = &app.connection.application_id;
    let names = topics::names(&servers).await;
    assert!(
        !names.contains(&format!("{app_id}-prices-changelog")),
        "the table writes no changelog of its own"
    );

    // After the clean stop, the checkpoint holds: the next start restores nothing, and the
    // table still has every price (orders 600..900 come after the second prices).
    let _ = std::fs::remove_file(&log);
    let process = app.start_with("table-join", &extra);
    records::produce(&servers, input, orders_from(600..900, 30_000).collect()).await;
    let out = records::consume(&servers, output, 900, WAIT).await;
    process.terminate();
    let (again, _) = restores_from(&log, &app.right_input);
    assert_eq!(again, [], "restarted from its checkpoint");
    let _ = std::fs::remove_file(&log);

    let mut got: Vec<String> = out
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..900)
        .map(|o| format!("o{o}@{}", if o < 600 { "v0" } else { "v1" }))
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "every order joined once, with the price before it"
    );
}

const ORDERS: usize = 300;
const CUSTOMERS: usize = 40;

/// Round `round`'s order `order`: `o<order>-v<round>|c<customer>`, or deleted now and then.
fn order_in(order: usize, round: usize) -> Option<String> {
    if (order + 5 * round).is_multiple_of(17) {
        return None;
    }
    let customer = (order * 7 + round * 3) % CUSTOMERS;
    Some(format!("o{order}-v{round}|c{customer}"))
}

/// Round `round`'s customer `customer`: `name<customer>-v<round>`, or deleted now and then.
fn customer_in(customer: usize, round: usize) -> Option<String> {
    if (customer + round).is_multiple_of(9) {
        return None;
    }
    Some(format!("name{customer}-v{round}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_join_is_exact_under_exactly_once_across_kills() {
    let app = TableApp::new("fk-join").await;
    let customers =
        |round: usize| (0..CUSTOMERS).map(move |c| (format!("c{c}"), customer_in(c, round)));
    let orders = |round: usize| (0..ORDERS).map(move |o| (format!("o{o}"), order_in(o, round)));
    let round = |r: usize| {
        let app = &app;
        async move {
            app.produce(&app.right_input, r, customers(r)).await;
            app.produce(&app.connection.input, r, orders(r)).await;
        }
    };
    round(0).await;
    round(1).await;
    let process = app.start("fk-join");
    app.processed_at_least(400).await;
    process.kill();
    round(2).await;
    round(3).await;
    let process = app.start("fk-join");
    app.processed_at_least(400).await;
    process.kill();
    round(4).await;
    let process = app.start("fk-join");

    // The true join of the last round: every order whose customer exists.
    let last = 4;
    let truth: BTreeMap<String, Option<String>> = (0..ORDERS)
        .map(|o| {
            let joined = order_in(o, last).and_then(|order| {
                let customer: usize = order.split("|c").nth(1).unwrap().parse().unwrap();
                customer_in(customer, last).map(|name| format!("({order},{name})"))
            });
            (format!("o{o}"), joined)
        })
        .collect();
    let servers = &app.connection.bootstrap_servers;
    let output = &app.connection.output;
    let latest = |out: &[TestRecord]| {
        let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
        for r in out {
            let value = r
                .value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            latest.insert(r.key_str(), value);
        }
        latest
    };
    // Orders that never had a result have no output; those that lost it end at null.
    let matches = |out: &[TestRecord]| {
        let latest = latest(out);
        truth
            .iter()
            .all(|(order, want)| latest.get(order).cloned().flatten() == *want)
    };
    let out = records::consume_until(servers, output, WAIT, "read_committed", matches).await;
    process.terminate();
    let latest = latest(&out);
    for (order, want) in &truth {
        assert_eq!(
            latest.get(order).cloned().flatten(),
            *want,
            "{order}: the join of the last round's order and customer"
        );
    }
    assert!(
        out.iter().all(|r| r.value.as_ref().is_none_or(|v| {
            let v = String::from_utf8_lossy(v);
            let (order, customer) = v
                .trim_matches(|c| c == '(' || c == ')')
                .split_once(',')
                .unwrap();
            // An order joins only its own customer, from the same run of rounds.
            let wanted = order.split("|c").nth(1).unwrap();
            customer.starts_with(&format!("name{wanted}-"))
        })),
        "every result joins an order with the customer its foreign key names"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_global_table_join_is_exact_under_exactly_once_across_a_kill() {
    let app = TableApp::new("global-join").await;
    // 60 customers, c0..c59 (c7, c14... have no row); 2 000 orders, each naming one.
    let customers = (0..60_usize)
        .filter(|c| c % 7 != 0)
        .map(|c| (format!("c{c}"), Some(format!("name{c}"))));
    app.produce(&app.right_input, 0, customers).await;
    let order = |o: usize| (format!("o{o}"), Some(format!("c{}", (o * 13) % 60)));
    app.produce(&app.connection.input, 1, (0..1_000).map(order))
        .await;
    let process = app.start("global-join");
    app.processed_at_least(300).await;
    process.kill();
    app.produce(&app.connection.input, 2, (1_000..2_000).map(order))
        .await;
    let process = app.start("global-join");

    let want: BTreeMap<String, String> = (0..2_000_usize)
        .filter(|o| (o * 13) % 60 % 7 != 0)
        .map(|o| {
            let c = (o * 13) % 60;
            (format!("o{o}"), format!("c{c}=name{c}"))
        })
        .collect();
    let servers = &app.connection.bootstrap_servers;
    let out = records::consume(servers, &app.connection.output, want.len(), WAIT).await;
    process.terminate();
    let got: Vec<(String, String)> = out
        .iter()
        .map(|r| {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned();
            (r.key_str(), value)
        })
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "every join committed once, none repeated"
    );
    let got: BTreeMap<String, String> = got.into_iter().collect();
    assert_eq!(got, want, "each order joined with its customer's row");
}

const PRODUCTS: usize = 20;
const PRICE_VERSIONS: usize = 6;
const PRICED_ORDERS: usize = 3_000;

/// Product `product`'s price from version `version` on: its time, and its value or `None`
/// (the price is withdrawn) now and then. Versions are 20 s apart.
fn price_version(product: usize, version: usize) -> (i64, Option<String>) {
    let at = 35_000 + (version * 20_000 + product * 10) as i64;
    let value = (!(product + version).is_multiple_of(7) || version == 0)
        .then(|| format!("p{product}-v{version}"));
    (at, value)
}

/// Order `order`: its product and its time, 40 ms after the previous order's, except that
/// one in five is 3 s late (within the join's grace) and one in thirteen 30 s late (beyond
/// it, joined on arrival). Every time is positive (a producer stamps a record given time 0
/// with the wall clock).
fn priced_order(order: usize) -> (usize, i64) {
    let on_time = 40_000 + order as i64 * 40;
    let late = if order.is_multiple_of(13) {
        30_000
    } else if order.is_multiple_of(5) {
        3_000
    } else {
        0
    };
    ((order * 7) % PRODUCTS, on_time - late)
}

/// What order `order` joins with: the price its product had at the order's time.
fn price_at_order(order: usize) -> String {
    let (product, at) = priced_order(order);
    let price = (0..PRICE_VERSIONS)
        .rev()
        .map(|v| price_version(product, v))
        .find(|(from, _)| *from <= at)
        .and_then(|(_, value)| value);
    format!("o{order}@{}", price.as_deref().unwrap_or("none"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_stream_table_join_with_grace_is_exact_under_exactly_once_across_kills() {
    // The stream and the table must be co-partitioned: 3 partitions each.
    let app = TableApp::with_right_partitions("versioned-join", 3).await;
    let servers = app.connection.bootstrap_servers.clone();
    let stamped = |key: String, value: Option<String>, at: i64| TestRecord {
        value: value.map(String::into_bytes),
        ..TestRecord::new(&key, Vec::new(), at)
    };
    let prices: Vec<TestRecord> = (0..PRICE_VERSIONS)
        .flat_map(|v| (0..PRODUCTS).map(move |p| (p, v)))
        .map(|(p, v)| {
            let (at, value) = price_version(p, v);
            stamped(format!("p{p}"), value, at)
        })
        .collect();
    let orders = |range: std::ops::Range<usize>| -> Vec<TestRecord> {
        range
            .map(|o| {
                let (product, at) = priced_order(o);
                stamped(format!("p{product}"), Some(format!("o{o}")), at)
            })
            .collect()
    };
    let input = &app.connection.input;

    // Every price is in the table before the first order, so each order's as-of price is
    // known whatever order the task reads its partitions in.
    records::produce(&servers, &app.right_input, prices).await;
    let process = app.start("versioned-join");
    app.processed_at_least((PRODUCTS * PRICE_VERSIONS) as u64)
        .await;
    records::produce(&servers, input, orders(0..PRICED_ORDERS / 2)).await;
    app.processed_at_least((PRODUCTS * PRICE_VERSIONS + 800) as u64)
        .await;
    process.kill();
    records::produce(&servers, input, orders(PRICED_ORDERS / 2..PRICED_ORDERS)).await;
    let process = app.start("versioned-join");
    app.processed_at_least(1_000).await;
    process.kill();
    // One far-future order per product moves every partition's stream time past the last
    // real order's grace; these are held themselves and never joined.
    let flush = (0..PRODUCTS)
        .map(|p| stamped(format!("p{p}"), Some("flush".into()), 1_000_000))
        .collect();
    records::produce(&servers, input, flush).await;
    let process = app.start("versioned-join");

    let out = records::consume(&servers, &app.connection.output, PRICED_ORDERS, WAIT).await;
    process.terminate();
    let mut got: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for r in &out {
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned();
        let order: usize = value[1..value.find('@').unwrap()].parse().unwrap();
        got.entry(order).or_default().push(value);
    }
    let repeated: Vec<_> = got.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(repeated.is_empty(), "orders joined twice: {repeated:?}");
    let want: BTreeMap<usize, Vec<String>> = (0..PRICED_ORDERS)
        .map(|o| (o, vec![price_at_order(o)]))
        .collect();
    assert_eq!(
        got, want,
        "every order joined once, with its product's price at the order's time"
    );
}

/// What the restore log at `path` says of the restores from `topic`: per partition, the
/// `(from, to)` offsets of each restore started and the records each finished one read.
fn restores_from(path: &PathBuf, topic: &str) -> (Vec<(i32, i64, i64)>, Vec<u64>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut started, mut ended) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let of_topic = |tp: &str| {
            tp.rsplit_once(':')
                .filter(|(t, _)| *t == topic)
                .map(|(_, p)| p.parse::<i32>().unwrap())
        };
        match parts.as_slice() {
            ["start", tp, _store, from, to] => {
                if let Some(p) = of_topic(tp) {
                    started.push((p, from.parse().unwrap(), to.parse().unwrap()));
                }
            }
            ["end", tp, _store, total] if of_topic(tp).is_some() => {
                ended.push(total.parse().unwrap());
            }
            _ => {}
        }
    }
    started.sort();
    (started, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_table_restarts_from_its_checkpoint_reading_only_what_its_topic_gained() {
    let app = TableApp::new("global-checkpoint").await;
    let log = std::env::temp_dir().join(topics::unique_name("global-restore-log"));
    let log_arg = log.to_string_lossy().into_owned();
    // 51 customers (c7, c14... have no row) over the table topic's 2 partitions.
    let customers = (0..60_usize)
        .filter(|c| c % 7 != 0)
        .map(|c| (format!("c{c}"), Some(format!("name{c}"))));
    app.produce(&app.right_input, 0, customers).await;
    let order = |o: usize| (format!("o{o}"), Some(format!("c{}", (o * 13) % 60)));
    app.produce(&app.connection.input, 1, (0..300).map(order))
        .await;
    let process = app.start_with("global-join", &["--restore-log", &log_arg]);
    app.processed_at_least(300).await;
    process.terminate();
    let (started, ended) = restores_from(&log, &app.right_input);
    assert!(started.iter().all(|(_, from, _)| *from == 0), "{started:?}");
    assert_eq!(
        ended.iter().sum::<u64>(),
        51,
        "the first start reads the whole topic"
    );
    let ends: BTreeMap<i32, i64> = started.iter().map(|(p, _, to)| (*p, *to)).collect();

    // While the app is down, eleven customers are renamed and c13 is removed.
    let renamed = |c: usize| (1..=12).contains(&c) && !c.is_multiple_of(7);
    let changes = (1..=13_usize)
        .filter(|&c| renamed(c) || c == 13)
        .map(|c| (format!("c{c}"), (c != 13).then(|| format!("new{c}"))));
    app.produce(&app.right_input, 2, changes).await;
    app.produce(&app.connection.input, 3, (300..600).map(order))
        .await;
    let _ = std::fs::remove_file(&log);
    let process = app.start_with("global-join", &["--restore-log", &log_arg]);
    let want: BTreeMap<String, String> = (0..600_usize)
        .filter_map(|o| {
            let c = (o * 13) % 60;
            let name = match c {
                _ if c % 7 == 0 => return None,
                13 if o >= 300 => return None,
                _ if o >= 300 && renamed(c) => format!("new{c}"),
                _ => format!("name{c}"),
            };
            Some((format!("o{o}"), format!("c{c}={name}")))
        })
        .collect();
    let servers = &app.connection.bootstrap_servers;
    let out = records::consume(servers, &app.connection.output, want.len(), WAIT).await;
    process.terminate();
    let (started, ended) = restores_from(&log, &app.right_input);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&app.state_dir);

    for (p, from, _) in &started {
        assert_eq!(
            Some(from),
            ends.get(p),
            "partition {p} continues where the first run's read ended"
        );
    }
    assert_eq!(
        ended.iter().sum::<u64>(),
        12,
        "the restart reads only the twelve changes"
    );
    let got: BTreeMap<String, String> = out
        .iter()
        .map(|r| {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned();
            (r.key_str(), value)
        })
        .collect();
    assert_eq!(got, want, "orders after the restart join the changed table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_table_on_a_missing_topic_fails_the_start_naming_it() {
    use streamtime::serdes::StringSerde;
    use streamtime::{
        Consumed, KafkaStreams, Materialized, Produced, StreamsBuilder, StreamsConfig,
    };
    let servers = bootstrap_servers();
    let input = topics::unique_name("global-missing-in");
    topics::create(&servers, &input, 1).await;
    let missing = topics::unique_name("global-missing");
    let builder = StreamsBuilder::new();
    let table = builder.global_table(
        &missing,
        Consumed::with(StringSerde, StringSerde),
        Materialized::as_("missing"),
    );
    builder
        .stream(&input, Consumed::with(StringSerde, StringSerde))
        .join_global(
            &table,
            |_k, v: &String| v.clone(),
            |v: &String, t: &String| format!("{v}{t}"),
        )
        .to(&input, Produced::with(StringSerde, StringSerde));
    let config = StreamsConfig::new(topics::unique_name("global-missing-app"), &servers);
    let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
    let err = app
        .start()
        .expect_err("the global topic is missing")
        .to_string();
    assert!(
        err.contains(&missing) && err.contains("does not exist"),
        "{err}"
    );
}
