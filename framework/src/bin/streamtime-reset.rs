//! `streamtime-reset`: resets a streamtime application for reprocessing. A thin command-line
//! wrapper around [`streamtime::tools::reset()`]; see its documentation for what a reset does.
//!
//! ```sh
//! streamtime-reset --bootstrap-servers localhost:9092 --application-id orders-app \
//!     --input-topics orders,payments --to-earliest --state-dir /var/lib/orders --dry-run
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use streamtime::tools::reset::{parse_datetime, reset, ResetOptions, ResetTarget};

/// Resets a streamtime application so that its next run reprocesses its input: moves the
/// input offsets of the consumer group named by --application-id, deletes the internal
/// (repartition and changelog) topics and deletes the local state. Every instance must be
/// stopped.
#[derive(Parser, Debug)]
#[command(name = "streamtime-reset", version)]
#[command(group(ArgGroup::new("target").args(["to_earliest", "to_datetime", "to_timestamp_ms"])))]
struct Args {
    /// Kafka bootstrap servers (host:port,...).
    #[arg(long)]
    bootstrap_servers: String,
    /// The application id (also its consumer group).
    #[arg(long)]
    application_id: String,
    /// The application's input topics, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    input_topics: Vec<String>,
    /// Move the input offsets to the earliest offset (the default).
    #[arg(long)]
    to_earliest: bool,
    /// Move the input offsets to the first record at or after this time, e.g.
    /// 2026-11-22T08:30:00Z or 2026-11-22T09:30:00.000+01:00 (no zone: UTC).
    #[arg(long)]
    to_datetime: Option<String>,
    /// Move the input offsets to the first record at or after this time (ms since the epoch).
    #[arg(long)]
    to_timestamp_ms: Option<i64>,
    /// The application's state directory; the application's directory in it is deleted
    /// (default: the system temp dir + streamtime, as in StreamsConfig).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Print what would be done and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Timeout of each broker operation, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

impl Args {
    fn options(&self) -> Result<ResetOptions, streamtime::StreamsError> {
        let target = match (&self.to_datetime, self.to_timestamp_ms) {
            (Some(text), _) => ResetTarget::Timestamp(parse_datetime(text)?),
            (None, Some(ms)) => ResetTarget::Timestamp(ms),
            (None, None) => ResetTarget::Earliest,
        };
        let mut options = ResetOptions::new(&self.application_id, &self.bootstrap_servers)
            .input_topics(self.input_topics.iter().filter(|t| !t.is_empty()))
            .target(target)
            .dry_run(self.dry_run)
            .timeout(Duration::from_secs(self.timeout_secs));
        if let Some(dir) = &self.state_dir {
            options = options.state_dir(dir);
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = args.options().and_then(|options| reset(&options));
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("streamtime-reset: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let mut all = vec![
            "streamtime-reset",
            "--bootstrap-servers",
            "b:9092",
            "--application-id",
            "app",
        ];
        all.extend_from_slice(args);
        Args::try_parse_from(all)
    }

    #[test]
    fn arguments_become_options() {
        let args = parse(&[
            "--input-topics",
            "a,b",
            "--to-datetime",
            "1970-01-01T00:00:02Z",
        ])
        .unwrap();
        assert_eq!(args.input_topics, vec!["a", "b"]);
        let options = format!("{:?}", args.options().unwrap());
        assert!(options.contains("Timestamp(2000)"), "{options}");
        let args = parse(&["--input-topics", "a", "--dry-run"]).unwrap();
        let options = format!("{:?}", args.options().unwrap());
        assert!(
            options.contains("Earliest") && options.contains("dry_run: true"),
            "{options}"
        );
    }

    #[test]
    fn conflicting_or_missing_arguments_are_refused() {
        assert!(
            parse(&["--to-earliest"]).is_err(),
            "input topics are required"
        );
        assert!(parse(&[
            "--input-topics",
            "a",
            "--to-earliest",
            "--to-timestamp-ms",
            "5"
        ])
        .is_err());
        let args = parse(&["--input-topics", "a", "--to-datetime", "last tuesday"]).unwrap();
        let error = args.options().unwrap_err().to_string();
        assert!(error.contains("not a date-time"), "{error}");
    }
}
