//! [`StoppableBroker`]: a broker of a test's own that the test can stop and start again, for
//! outage tests. It never is the shared broker of [`crate::bootstrap_servers`], so stopping it
//! disturbs no other test.
//!
//! It is a container of the local image published on a fixed host port: a restarted
//! container keeps its port mapping and its data, so the advertised address stays right and
//! topics survive the restart.
//!
//! ```no_run
//! let mut broker = streamtime_integration_tests::stoppable::StoppableBroker::start();
//! broker.stop();
//! broker.start_again();
//! ```

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::kafka::{
    ensure_docker, ensure_image, no_broker_message, remove_when_process_exits, KafkaImage,
};

const STARTED: &str = "Kafka Server started";
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// A single-node broker in a container of its own.
pub struct StoppableBroker {
    id: String,
    /// `127.0.0.1:<port>`, the same across restarts.
    pub bootstrap_servers: String,
    starts: usize,
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl StoppableBroker {
    /// Starts the broker and waits until it serves. Panics with a message saying how to get
    /// Docker and the image when it cannot.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Like [`start`](Self::start), with more environment for the start script (for
    /// example `KAFKA_SECURITY=sasl_ssl`, see `kafka-image/start-kafka.sh`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let image = KafkaImage::local();
        ensure_docker()
            .and_then(|_| ensure_image(&image))
            .unwrap_or_else(|e| panic!("{}", no_broker_message(&e)));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free local port");
        let publish = format!("127.0.0.1:{port}:9092");
        let advertised = format!("KAFKA_ADVERTISED_PORT={port}");
        let extra: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec![
            "run",
            "-d",
            "-p",
            &publish,
            "-e",
            "KAFKA_ADVERTISED_HOST=127.0.0.1",
            "-e",
            &advertised,
        ];
        for variable in &extra {
            args.extend(["-e", variable.as_str()]);
        }
        let reference = image.reference();
        args.push(&reference);
        let id = docker(&args).unwrap_or_else(|e| panic!("{}", no_broker_message(&e)));
        remove_when_process_exits(&id);
        let mut broker = StoppableBroker {
            id,
            bootstrap_servers: format!("127.0.0.1:{port}"),
            starts: 0,
        };
        broker.wait_until_started();
        broker
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&self) {
        docker(&["stop", "-t", "10", &self.id]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Kills the broker (SIGKILL): no controlled shutdown, open transactions stay open in
    /// its logs until it is back and times them out.
    pub fn kill(&self) {
        docker(&["kill", &self.id]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the stopped broker again and waits until it serves.
    pub fn start_again(&mut self) {
        docker(&["start", &self.id]).unwrap_or_else(|e| panic!("{e}"));
        self.wait_until_started();
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        &self.id
    }

    /// Runs `command` inside the broker's container and returns its standard output.
    pub fn exec(&self, command: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(command);
        docker(&args)
    }

    fn wait_until_started(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let logs = Command::new("docker")
                .args(["logs", &self.id])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).matches(STARTED).count())
                .unwrap_or(0);
            if logs > self.starts {
                self.starts = logs;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "broker container {} did not start within {START_TIMEOUT:?}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for StoppableBroker {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.id]);
    }
}
