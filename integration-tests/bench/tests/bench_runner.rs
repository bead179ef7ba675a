//! The benchmark runner end to end with tiny inputs: every workload and guarantee for
//! streamtime and the raw loop (Kafka Streams is left to full runs: it needs Maven) runs to completion on a real broker and lands in the report
//! with the output the workload must produce. No timing is asserted.

use std::process::Command;

use streamtime_integration_tests::{bootstrap_servers, topics};

#[test]
fn runner_measures_every_workload_and_reports_it() {
    let servers = bootstrap_servers();
    let out = std::env::temp_dir().join(format!("{}.md", topics::unique_name("bench-smoke")));
    let status = Command::new(env!("CARGO_BIN_EXE_streamtime-bench"))
        .args([
            "--records",
            "2000",
            "--state-records",
            "1000",
            "--keys",
            "100",
            "--restore-entries",
            "1500",
            "--contenders",
            "streamtime,raw",
            "--no-pin",
            "--timeout-secs",
            "120",
            "--latency-workloads",
            "pass,hopping",
            "--latency-guarantees",
            "at-least-once@100ms,exactly-once",
            "--latency-rate",
            "400",
            "--latency-secs",
            "3",
            "--latency-warmup-secs",
            "1",
            "--label",
            "smoke",
            "--out",
        ])
        .arg(&out)
        .env("KAFKA_BOOTSTRAP_SERVERS", &servers)
        .status()
        .expect("the runner starts");
    assert!(status.success(), "the runner reports no failed run");
    let report = std::fs::read_to_string(&out).expect("report written");
    let (throughput, latency) = report
        .split_once("#### End-to-end latency")
        .unwrap_or_else(|| panic!("no latency section in\n{report}"));
    let row_in = |text: &str, w: &str, g: &str, c: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {w} | {g} | {c} |")))
            .unwrap_or_else(|| panic!("no row for {w}/{g}/{c} in\n{report}"))
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let row = |w: &str, g: &str, c: &str| row_in(throughput, w, g, c);
    for g in ["at-least-once", "exactly-once"] {
        for c in ["streamtime", "raw"] {
            let r = row("pass", g, c);
            assert_eq!(r[3], "1", "round of {g}/{c}");
            assert_eq!(r[4], "2000", "records of {g}/{c}");
            // Values starting with 'j' (every tenth record) are filtered out; a
            // read_committed reader sees each of the others once.
            assert_eq!(r[11], "1800", "pass-through output of {g}/{c}");
            let rss: f64 = r[12].parse().expect("a peak RSS in MiB");
            assert!(rss > 1.0, "peak RSS of {g}/{c}: {rss} MiB");
        }
        // The record cache folds a key's updates between commits: every one of the 100
        // keys goes out at least once, and no more often than its records.
        let count = row("count", g, "streamtime");
        let output: i64 = count[10].parse().expect("output offsets");
        assert!((100..=1000).contains(&output), "count output {output}");
        let hopping = row("hopping", g, "streamtime");
        assert!(hopping[10].parse::<i64>().expect("output offsets") > 0);
        // Emit-final: only windows that closed are out; it reads every input record.
        let final_windows = row("hopping-final", g, "streamtime");
        assert_eq!(final_windows[4], "1000", "records of hopping-final/{g}");
        // Behind the repartition topic every record reaches the aggregation.
        for w in ["rekey-hopping", "rekey-hopping-watermarks", "session"] {
            let r = row(w, g, "streamtime");
            assert_eq!(r[4], "1000", "records of {w}/{g}");
            assert!(r[10].parse::<i64>().expect("output offsets") > 0, "{w}/{g}");
        }
        // The input spans one second: no 5-minute session closes.
        assert_eq!(row("session-final", g, "streamtime")[4], "1000");
        // Both sides of a join are read: 1000 on the right, or the table's 100 rows.
        let join = row("stream-stream-join", g, "streamtime");
        assert_eq!(join[4], "2000", "records of the stream-stream join/{g}");
        // A key recurs every 100 ms, so all 10 x 10 pairs of each of the 100 keys meet.
        assert!(join[10].parse::<i64>().expect("output offsets") >= 10_000);
        let table_join = row("stream-table-join", g, "streamtime");
        assert_eq!(
            table_join[4], "1100",
            "records of the stream-table join/{g}"
        );
        // The table is read first (its rows are older), so every stream record joins.
        assert!(table_join[10].parse::<i64>().expect("output offsets") >= 1000);
        // Every update reaches the adder; the counts of the 26 groups go out.
        let grouped = row("table-group-by", g, "streamtime");
        assert_eq!(grouped[4], "1000", "records of table-group-by/{g}");
        assert!(grouped[10].parse::<i64>().expect("output offsets") >= 26);
        // Each of the 1000 rows (written once) is joined with one of the ten rows its
        // value names; the record cache may fold nothing, since every row is new.
        let fk = row("fk-join", g, "streamtime");
        assert_eq!(fk[4], "1000", "records of fk-join/{g}");
        assert!(
            fk[10].parse::<i64>().expect("output offsets") >= 1000,
            "fk-join/{g}"
        );
    }
    // At a fixed rate of 400 records/s for 3 s, every output after the first second is
    // measured; a latency is never negative and ordered p50 <= p99 <= p99.9.
    for (w, g) in [
        ("pass", "at-least-once@100ms"),
        ("pass", "exactly-once"),
        ("hopping", "at-least-once@100ms"),
        ("hopping", "exactly-once"),
    ] {
        let r = row_in(latency, w, g, "streamtime");
        let cells: Vec<i64> = r[5..11]
            .iter()
            .map(|c| {
                c.parse()
                    .unwrap_or_else(|_| panic!("latency cell {c} of {w}/{g}"))
            })
            .collect();
        let [inputs, outputs, p50, p99, p999, max] = cells[..] else {
            unreachable!()
        };
        assert_eq!(inputs, 1200, "inputs of the latency run {w}/{g}");
        assert!(outputs > 0, "outputs of {w}/{g}");
        assert!(
            0 <= p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{r:?}"
        );
    }
    let restore = row("restore", "–", "streamtime");
    assert_eq!(restore[4], "1500");
    assert!(report.contains("CPU/record streamtime ÷ raw loop"));
    assert!(
        report.contains("| rekey-hopping | exactly-once | "),
        "the watermarks' cost"
    );
    let _ = std::fs::remove_file(&out);
}
