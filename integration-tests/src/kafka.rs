//! A real Apache Kafka broker for tests, examples and benchmarks.
//!
//! [`bootstrap_servers`] returns the address of a broker shared by everything in the current
//! process:
//!
//! * `KAFKA_BOOTSTRAP_SERVERS`, when set, names an existing cluster and nothing is started;
//! * otherwise a container of the locally built image `streamtime/kafka:<version>` is started
//!   with testcontainers (the image is built first by `kafka-image/build-image.sh` when it is
//!   missing), and removed again when the process exits.
//!
//! When no broker can be had the call panics with a message that says how to get one, so a
//! test that needs Kafka fails loudly instead of skipping.
//!
//! ```no_run
//! let servers = streamtime_integration_tests::kafka::bootstrap_servers();
//! println!("testing against {servers}");
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{ContainerPort, ContainerState, ExecCommand, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Image, ImageExt};

/// Port the broker listens on inside the container.
pub const KAFKA_PORT: ContainerPort = ContainerPort::Tcp(9092);

/// Environment variable naming an existing cluster to use instead of a container.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP_SERVERS";

/// Environment variable overriding the image reference (`name:tag`).
pub const IMAGE_ENV: &str = "STREAMTIME_KAFKA_IMAGE";

/// File inside the container that the start script waits for; it holds the mapped host port,
/// which is only known once the container runs and must be the advertised port.
const ADVERTISED_FILE: &str = "/tmp/advertised-port";

/// Where the broker behind [`bootstrap_servers`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerMode {
    /// An existing cluster named by `KAFKA_BOOTSTRAP_SERVERS`.
    External,
    /// A container of the local image, started by this process.
    Container {
        /// Docker container id.
        id: String,
        /// Image reference the container runs.
        image: String,
    },
}

/// A broker the current process can use.
#[derive(Debug, Clone)]
pub struct Broker {
    /// `host:port` list for `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// How the broker was obtained.
    pub mode: BrokerMode,
}

/// The testcontainers description of the local Kafka image.
#[derive(Debug, Clone)]
pub struct KafkaImage {
    name: String,
    tag: String,
}

impl KafkaImage {
    /// The image named by `STREAMTIME_KAFKA_IMAGE`, or the one `build-image.sh` builds.
    pub fn local() -> Self {
        let reference = std::env::var(IMAGE_ENV).unwrap_or_else(|_| default_image());
        let (name, tag) = reference
            .rsplit_once(':')
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .unwrap_or((reference.clone(), "latest".to_string()));
        KafkaImage { name, tag }
    }

    /// `name:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

impl Image for KafkaImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        Vec::new()
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        [
            ("KAFKA_ADVERTISED_FILE", ADVERTISED_FILE),
            ("KAFKA_ADVERTISED_HOST", "127.0.0.1"),
        ]
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &[KAFKA_PORT]
    }

    fn exec_after_start(
        &self,
        cs: ContainerState,
    ) -> Result<Vec<ExecCommand>, testcontainers::TestcontainersError> {
        let port = cs.host_port_ipv4(KAFKA_PORT)?;
        let write_port = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "echo {port} > {ADVERTISED_FILE}.tmp && mv {ADVERTISED_FILE}.tmp {ADVERTISED_FILE}"
            ),
        ];
        Ok(vec![ExecCommand::new(write_port)
            .with_container_ready_conditions(vec![
                WaitFor::message_on_stdout("Kafka Server started"),
            ])])
    }
}

/// Connection properties (key, value) by bootstrap address.
type Connections = BTreeMap<String, Vec<(String, String)>>;

/// Connection properties (security protocol, login, CA) per bootstrap address, for brokers
/// that need more than an address; see [`client_config`].
fn connection_properties() -> &'static Mutex<Connections> {
    static PROPERTIES: OnceLock<Mutex<Connections>> = OnceLock::new();
    PROPERTIES.get_or_init(Default::default)
}

/// Makes every harness client for `servers` (topic administration, producing input, reading
/// output) connect with `properties`, e.g. a secured broker's admin login.
pub fn register_connection(servers: &str, properties: Vec<(String, String)>) {
    connection_properties()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(servers.to_string(), properties);
}

/// A client configuration for the broker at `servers`: its address and the connection
/// properties registered for it with [`register_connection`].
///
/// ```
/// let config = streamtime_integration_tests::kafka::client_config("127.0.0.1:1");
/// assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:1"));
/// ```
pub fn client_config(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", servers);
    if let Some(properties) = connection_properties()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(servers)
    {
        for (key, value) in properties {
            config.set(key, value);
        }
    }
    config
}

fn default_image() -> String {
    format!("streamtime/kafka:{}", kafka_version())
}

/// The Kafka version the local image is built from (read from the Maven pom).
pub fn kafka_version() -> String {
    let pom = include_str!("../kafka-image/pom.xml");
    pom.split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split("</kafka.version>").next())
        .expect("kafka-image/pom.xml has a <kafka.version> property")
        .trim()
        .to_string()
}

/// Directory holding the image build scripts.
pub fn image_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka-image")
}

/// The process-wide broker, started on first use. Panics with instructions if none can be had.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    let result = BROKER.get_or_init(|| {
        // testcontainers' blocking runner owns a runtime; it must not run inside a test's
        // tokio runtime, so the start happens on a plain thread.
        std::thread::spawn(obtain_broker)
            .join()
            .unwrap_or_else(|_| Err("the broker start-up thread panicked".to_string()))
    });
    match result {
        Ok(broker) => broker,
        Err(message) => panic!("{}", no_broker_message(message)),
    }
}

/// `bootstrap.servers` of the process-wide broker. See [`broker`].
pub fn bootstrap_servers() -> String {
    broker().bootstrap_servers.clone()
}

pub(crate) fn no_broker_message(cause: &str) -> String {
    format!(
        "this test needs a real Apache Kafka broker and none could be had: {cause}\n\
         To get one, either\n  \
         * run `bash .ci/setup` once (installs docker.io/debootstrap, starts dockerd, builds the \
         local image {image}), then run the tests again; or\n  \
         * point the tests at an existing cluster: KAFKA_BOOTSTRAP_SERVERS=host:9092 cargo test",
        image = KafkaImage::local().reference()
    )
}

/// Writes straight to the process's stderr: libtest captures `eprintln!` per test, and the
/// run's log must show which broker the tests used.
fn announce(message: &str) {
    let _ = writeln!(std::io::stderr(), "streamtime-it: {message}");
}

fn obtain_broker() -> Result<Broker, String> {
    if let Ok(servers) = std::env::var(BOOTSTRAP_ENV) {
        if !servers.trim().is_empty() {
            announce(&format!(
                "using the existing Kafka cluster at {servers} ({BOOTSTRAP_ENV})"
            ));
            return Ok(Broker {
                bootstrap_servers: servers,
                mode: BrokerMode::External,
            });
        }
    }
    let image = KafkaImage::local();
    ensure_docker()?;
    ensure_image(&image)?;
    start_container(image)
}

fn run_script(script: &str) -> Result<(), String> {
    let path = image_dir().join(script);
    let status = Command::new("bash")
        .arg(&path)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed with {status}", path.display()))
    }
}

pub(crate) fn ensure_docker() -> Result<(), String> {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if answers {
        return Ok(());
    }
    announce("no Docker engine answers; trying to start dockerd");
    run_script("ensure-docker.sh").map_err(|e| format!("no Docker engine: {e}"))
}

pub(crate) fn ensure_image(image: &KafkaImage) -> Result<(), String> {
    let present = Command::new("docker")
        .args(["image", "inspect", &image.reference()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        return Ok(());
    }
    if std::env::var(IMAGE_ENV).is_ok() {
        return Err(format!(
            "the image {} named by {IMAGE_ENV} does not exist",
            image.reference()
        ));
    }
    announce(&format!(
        "image {} is missing; building it (takes a few minutes)",
        image.reference()
    ));
    run_script("build-image.sh")
}

fn start_container(image: KafkaImage) -> Result<Broker, String> {
    let reference = image.reference();
    let started = Instant::now();
    let container = image
        .with_startup_timeout(Duration::from_secs(180))
        .with_host_config_modifier(publish_on_loopback)
        .start()
        .map_err(|e| format!("cannot start a container of {reference}: {e}"))?;
    let id = container.id().to_string();
    let port = container
        .get_host_port_ipv4(KAFKA_PORT)
        .map_err(|e| format!("container {id} has no mapped Kafka port: {e}"))?;
    remove_when_process_exits(&id);
    // The container is removed by the watcher above, whatever way this process ends; the
    // handle must not be dropped earlier, since dropping it would remove the container.
    std::mem::forget(container);
    let servers = format!("127.0.0.1:{port}");
    announce(&format!(
        "Kafka {version} broker in container {short} (image {reference}) ready at {servers} after {secs:.1} s",
        version = kafka_version(),
        short = &id[..12.min(id.len())],
        secs = started.elapsed().as_secs_f64()
    ));
    Ok(Broker {
        bootstrap_servers: servers,
        mode: BrokerMode::Container {
            id,
            image: reference,
        },
    })
}

/// A test broker has no business on the machine's network: its port is published on
/// 127.0.0.1 only (testcontainers would publish it on every interface).
fn publish_on_loopback(host: &mut HostConfig) {
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".to_string()),
        // Empty: Docker picks a free port.
        host_port: Some(String::new()),
    };
    host.publish_all_ports = Some(false);
    host.port_bindings = Some(HashMap::from([(
        KAFKA_PORT.to_string(),
        Some(vec![binding]),
    )]));
}

/// The host addresses the ports of container `id` are published on, from `docker inspect`.
pub fn published_addresses(id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostIp}} {{end}}{{end}}",
            id,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker inspect: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Starts a detached watcher that removes the container once this process is gone, so a test
/// binary that panics or is killed leaves no broker behind.
pub(crate) fn remove_when_process_exits(container_id: &str) {
    let pid = std::process::id();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; docker rm -f -v {container_id} >/dev/null 2>&1"
    );
    let spawned = Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(e) = spawned {
        announce(&format!(
            "cannot start the container cleanup watcher ({e}); remove {container_id} by hand"
        ));
    }
}
