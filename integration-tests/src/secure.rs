//! [`SecureBroker`]: a broker of a test's own with its client listener secured as managed
//! Kafka services secure theirs: `SASL_SSL` with SCRAM-SHA-512 logins, a CA and broker
//! certificate generated when the container starts, and the standard authorizer denying
//! whatever no ACL grants.
//!
//! The harness's own clients ([`crate::topics`], [`crate::records`]) connect to it as the
//! super user `admin`; an application under test connects as a principal that holds only the
//! ACLs the test grants with [`SecureBroker::grant`].
//!
//! ```no_run
//! use streamtime_integration_tests::secure::SecureBroker;
//! let broker = SecureBroker::start(&[("orders", "orders-secret")]);
//! broker.grant(&["--allow-principal", "User:orders", "--operation", "Read", "--topic", "in"]);
//! let properties = broker.client_properties("orders", "orders-secret");
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::stoppable::StoppableBroker;

/// The super user's name; its password is [`ADMIN_PASSWORD`].
pub const ADMIN: &str = "admin";
/// The super user's password.
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// The container-local PLAINTEXT listener the command-line tools use (the start script's
/// port + 2); its principal is a super user, and it is not published.
const TOOLS_BOOTSTRAP: &str = "127.0.0.1:9094";

/// A single-node `SASL_SSL` broker with ACLs switched on.
pub struct SecureBroker {
    broker: StoppableBroker,
    /// `127.0.0.1:<port>` of the `SASL_SSL` listener.
    pub bootstrap_servers: String,
    ca_file: PathBuf,
}

impl SecureBroker {
    /// Starts the broker with the SCRAM-SHA-512 users `users` (name, password) besides
    /// [`ADMIN`], waits until it serves, and registers the admin login for the harness's
    /// clients. Panics when it cannot.
    pub fn start(users: &[(&str, &str)]) -> Self {
        let mut logins = vec![format!("{ADMIN}={ADMIN_PASSWORD}")];
        logins.extend(
            users
                .iter()
                .map(|(name, password)| format!("{name}={password}")),
        );
        let logins = logins.join(",");
        let broker = StoppableBroker::start_with_env(&[
            ("KAFKA_SECURITY", "sasl_ssl"),
            ("KAFKA_SCRAM_USERS", &logins),
        ]);
        let ca = broker
            .exec(&["cat", "/tmp/tls/ca.pem"])
            .unwrap_or_else(|e| panic!("the secured broker wrote no CA certificate: {e}"));
        let ca_file = std::env::temp_dir().join(crate::topics::unique_name("test-ca"));
        std::fs::write(&ca_file, format!("{ca}\n")).expect("the CA certificate can be written");
        let secure = SecureBroker {
            bootstrap_servers: broker.bootstrap_servers.clone(),
            broker,
            ca_file,
        };
        crate::kafka::register_connection(
            &secure.bootstrap_servers,
            secure.client_properties(ADMIN, ADMIN_PASSWORD),
        );
        secure.wait_until_admin_connects();
        secure
    }

    /// The librdkafka properties that connect as `user` with `password`: SASL_SSL,
    /// SCRAM-SHA-512 and the broker's CA.
    pub fn client_properties(&self, user: &str, password: &str) -> Vec<(String, String)> {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", user),
            ("sasl.password", password),
            ("ssl.ca.location", &self.ca_file.to_string_lossy()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        self.broker.container_id()
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Adds ACLs: `args` are `kafka-acls` arguments after `--add`, such as
    /// `--allow-principal User:app --operation Read --topic in`. Panics when the tool fails.
    pub fn grant(&self, args: &[&str]) {
        let mut command = vec![
            "java",
            "-Xmx256m",
            "-cp",
            "/opt/kafka/libs/*",
            "-Dlog4j2.configurationFile=/opt/kafka/log4j2.yaml",
            "org.apache.kafka.tools.AclCommand",
            "--bootstrap-server",
            TOOLS_BOOTSTRAP,
            "--add",
            "--force",
        ];
        command.extend_from_slice(args);
        self.broker
            .exec(&command)
            .unwrap_or_else(|e| panic!("cannot add the ACLs {args:?}: {e}"));
    }

    /// The broker accepts connections once its SCRAM credentials are loaded, shortly after
    /// it logs that it started.
    fn wait_until_admin_connects(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
                crate::kafka::client_config(&self.bootstrap_servers).create();
            let answer = consumer.map_err(|e| e.to_string()).and_then(|c| {
                rdkafka::consumer::Consumer::fetch_metadata(&c, None, Duration::from_secs(5))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            match answer {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("the secured broker does not answer its admin login: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}
