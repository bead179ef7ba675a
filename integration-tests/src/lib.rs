//! Test harness for streamtime's integration tests, examples and benchmarks (`streamtime-bench`).
//!
//! * [`kafka`]: a real Apache Kafka broker (an existing cluster, or a container of the locally
//!   built image) shared by the tests of one process.
//! * [`app_process`]: an application in a child process, to kill or stop.
//! * [`chaos`]: the chaos runner: the test app's windowed count and join under kills and
//!   broker restarts, compared with an uninterrupted run.
//! * [`hopping`]: the hopping-window workload, its expected results and their check.
//! * [`records`]: producing test input and reading output back.
//! * [`secure`]: a broker of a test's own with SASL_SSL and ACLs switched on.
//! * [`stoppable`]: a broker of a test's own, to stop and start again.
//! * [`topics`]: unique topic names and topic creation through the admin client.
//! * [`wait`]: waiting for a condition, with a message that says what was awaited.

pub mod app_process;
pub mod chaos;
pub mod hopping;
pub mod kafka;
pub mod records;
pub mod secure;
pub mod stoppable;
pub mod topics;
pub mod wait;

pub use kafka::bootstrap_servers;
