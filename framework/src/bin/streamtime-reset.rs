//! `streamtime-reset`: resets a streamtime application for reprocessing. A thin command-line
//! wrapper around [`streamtime::tools::reset()`]; see its documentation for what a reset does.
//!
//! ```sh
//! streamtime-reset --bootstrap-servers localhost:9092 --application-id orders-app \
//!     --input-topics orders,payments --to-earliest --state-dir /var/lib/orders --dry-run
//! # on a secured cluster, with the application's own properties file:
//! streamtime-reset --config-file /etc/orders/streams.properties --input-topics orders
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use streamtime::tools::reset::{parse_datetime, reset, ResetOptions, ResetTarget};
use streamtime::{StreamsConfig, StreamsError};

/// Resets a streamtime application so that its next run reprocesses its input: moves the
/// input offsets of the consumer group named by --application-id, deletes the internal
/// (repartition and changelog) topics and deletes the local state. Every instance must be
/// stopped.
#[derive(Parser, Debug)]
#[command(name = "streamtime-reset", version)]
#[command(group(ArgGroup::new("target").args(["to_earliest", "to_datetime", "to_timestamp_ms"])))]
struct Args {
    /// The application's properties file (as read by StreamsConfig::from_properties):
    /// application.id, bootstrap.servers, state.dir and the client properties (security
    /// settings) every client of the reset connects with.
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Kafka bootstrap servers (host:port,...); required without --config-file.
    #[arg(long)]
    bootstrap_servers: Option<String>,
    /// The application id (also its consumer group); required without --config-file.
    #[arg(long)]
    application_id: Option<String>,
    /// The application's input topics, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    input_topics: Vec<String>,
    /// The internal topics to delete, comma-separated (default: every
    /// `APPLICATION_ID-...-repartition` and `-changelog` topic, refused when another
    /// application's group shares the prefix).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    internal_topics: Option<Vec<String>>,
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
    /// (default: the config file's state.dir, else the system temp dir + streamtime, as in
    /// StreamsConfig).
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
        let mut options = ResetOptions::from_config(&self.config()?)
            .input_topics(self.input_topics.iter().filter(|t| !t.is_empty()))
            .target(target)
            .dry_run(self.dry_run)
            .timeout(Duration::from_secs(self.timeout_secs));
        if let Some(dir) = &self.state_dir {
            options = options.state_dir(dir);
        }
        if let Some(topics) = &self.internal_topics {
            options = options.internal_topics(topics.iter().filter(|t| !t.is_empty()));
        }
        Ok(options)
    }

    /// The application's configuration: the properties file, or the two flags. A flag given
    /// next to the file must agree with it, so a reset never acts on another application
    /// than the file names.
    fn config(&self) -> Result<StreamsConfig, StreamsError> {
        let Some(path) = &self.config_file else {
            let (Some(app), Some(servers)) = (&self.application_id, &self.bootstrap_servers) else {
                return Err(StreamsError::Config(
                    "give --config-file, or both --application-id and --bootstrap-servers".into(),
                ));
            };
            return Ok(StreamsConfig::new(app, servers));
        };
        let config = StreamsConfig::from_properties(path)?;
        let file = path.display();
        if let Some(app) = self.application_id.as_deref() {
            if app != config.application_id() {
                return Err(StreamsError::Config(format!(
                    "--application-id {app} contradicts application.id={} in {file}",
                    config.application_id()
                )));
            }
        }
        if let Some(servers) = self.bootstrap_servers.as_deref() {
            if servers != config.bootstrap_servers() {
                return Err(StreamsError::Config(format!(
                    "--bootstrap-servers {servers} contradicts bootstrap.servers={} in {file}",
                    config.bootstrap_servers()
                )));
            }
        }
        Ok(config)
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
    fn a_config_file_gives_the_application_and_its_client_properties() {
        let dir = std::env::temp_dir().join(format!("st-reset-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app.properties");
        std::fs::write(
            &file,
            "application.id=orders\nbootstrap.servers=b:9093\nstate.dir=/var/lib/orders\n\
             security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.username=orders\nsasl.password=hunter2\n",
        )
        .unwrap();
        let file = file.to_string_lossy().into_owned();
        let run = |extra: &[&str]| {
            let mut all = vec![
                "streamtime-reset",
                "--config-file",
                &file,
                "--input-topics",
                "in",
            ];
            all.extend_from_slice(extra);
            Args::try_parse_from(all).unwrap().options()
        };
        let options = format!("{:?}", run(&[]).unwrap());
        assert!(options.contains("\"orders\""), "{options}");
        assert!(options.contains("/var/lib/orders"), "{options}");
        assert!(options.contains("SASL_SSL"), "{options}");
        assert!(!options.contains("hunter2"), "{options}");
        let other = run(&["--application-id", "orders-eu"])
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("contradicts application.id=orders"),
            "{other}"
        );
        let same = run(&[
            "--application-id",
            "orders",
            "--internal-topics",
            "orders-x-changelog",
        ]);
        assert!(format!("{:?}", same.unwrap()).contains("orders-x-changelog"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_config_file_the_application_and_servers_are_required() {
        let args = Args::try_parse_from(["streamtime-reset", "--input-topics", "a"]).unwrap();
        let error = args.options().unwrap_err().to_string();
        assert!(error.contains("--config-file"), "{error}");
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
