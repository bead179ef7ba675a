//! Test harness for streamtime's integration tests, examples and benchmarks.
//!
//! * [`kafka`]: a real Apache Kafka broker (an existing cluster, or a container of the locally
//!   built image) shared by the tests of one process.
//! * [`app_process`]: an application in a child process, to kill or stop.
//! * [`hopping`]: the hopping-window workload, its expected results and their check.
//! * [`records`]: producing test input and reading output back.
//! * [`topics`]: unique topic names and topic creation through the admin client.

pub mod app_process;
pub mod hopping;
pub mod kafka;
pub mod records;
pub mod stoppable;
pub mod topics;

pub use kafka::bootstrap_servers;
