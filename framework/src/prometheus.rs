//! A Prometheus scrape endpoint for every metric streamtime records (feature `prometheus`).
//!
//! streamtime records its metrics through the [`metrics`] facade, so any `metrics` recorder
//! sees them. This module installs `metrics-exporter-prometheus` as that recorder, serving
//! `GET /metrics`-style text (any path) on an address of your choice. Set it on the config
//! ([`crate::StreamsConfig::prometheus_endpoint`]) and [`crate::KafkaStreams::start`] calls
//! [`install`], or call [`install`] yourself.
//!
//! ```no_run
//! use streamtime::StreamsConfig;
//! let config = StreamsConfig::new("orders-app", "localhost:9092")
//!     .prometheus_endpoint("0.0.0.0:9464".parse().unwrap());
//! // Once the app runs: curl localhost:9464/metrics
//! ```

use std::net::SocketAddr;
use std::sync::Mutex;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::StreamsError;

/// The address the process' endpoint listens on, once installed. A process has one
/// global `metrics` recorder, so it has at most one endpoint.
static INSTALLED: Mutex<Option<SocketAddr>> = Mutex::new(None);

/// Serves every metric of this process in Prometheus' text format on `addr`. Calling it
/// again with the same address does nothing; another address, or a process that already
/// has another `metrics` recorder, is an error.
pub fn install(addr: SocketAddr) -> Result<(), StreamsError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    match *installed {
        Some(existing) if existing == addr => return Ok(()),
        Some(existing) => {
            return Err(StreamsError::Config(format!(
                "the Prometheus endpoint of this process already listens on {existing}; \
                 one process has one endpoint, cannot add {addr}"
            )))
        }
        None => {}
    }
    // Outside any Tokio runtime the exporter runs its listener on a runtime of its own
    // thread, so it keeps serving whatever runtime (if any) the caller has and however
    // long that lives.
    std::thread::spawn(move || PrometheusBuilder::new().with_http_listener(addr).install())
        .join()
        .map_err(|_| StreamsError::Config("installing the Prometheus endpoint panicked".into()))?
        .map_err(|e| {
            StreamsError::Config(format!("cannot serve Prometheus metrics on {addr}: {e}"))
        })?;
    tracing::info!(%addr, "serving Prometheus metrics");
    *installed = Some(addr);
    Ok(())
}
