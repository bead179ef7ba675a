//! Stopping every instance of an application
//! ([`StreamThreadExceptionResponse::ShutdownApplication`]), through the consumer group the
//! instances share.
//!
//! The asking instance joins the group once more with a consumer whose `client.id` marks it
//! as a request. Joining makes the group rebalance, and every member reads the group's member
//! list while computing its tasks (see `task_assignment`): a member that finds a request
//! there stops its instance. The asker stays in the group until the others have left it, or
//! for [`STAY_AT_MOST`]. Kafka Streams sends the same request in its assignment protocol's
//! user data; streamtime computes assignments from client ids, so the request travels there.
//!
//! [`StreamThreadExceptionResponse::ShutdownApplication`]:
//!     crate::lifecycle::StreamThreadExceptionResponse::ShutdownApplication

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::app_shared::AppShared;
use super::identity::parse_member;
use crate::client_config::ClientRole;

const MARKER: &str = "-shutdown-request";
/// How long the request stays in the group at most: members notice it at their next
/// assignment, which follows its join within a rebalance (seconds).
const STAY_AT_MOST: Duration = Duration::from_secs(60);

/// The client id of instance `identity`'s shutdown request.
fn request_client_id(application_id: &str, identity: &str) -> String {
    format!("{application_id}-{identity}{MARKER}")
}

/// The instance asking for a shutdown, when `client_id` is a request of this application.
pub(crate) fn requester(application_id: &str, client_id: &str) -> Option<String> {
    client_id
        .strip_prefix(application_id)?
        .strip_prefix('-')?
        .strip_suffix(MARKER)
        .map(str::to_string)
}

/// Asks every instance of the application to stop, and returns once they left the group (or
/// after [`STAY_AT_MOST`]). Failures are logged: the asking instance stops either way.
pub(crate) fn request_application_shutdown(shared: &AppShared) {
    let config = &shared.config;
    let app = &config.application_id;
    let consumer: BaseConsumer = match config
        .with_client_properties(
            ClientRole::Consumer,
            ClientConfig::new()
                .set("bootstrap.servers", &config.bootstrap_servers)
                .set("group.id", app)
                .set("client.id", request_client_id(app, &shared.identity))
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "10000"),
        )
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot ask the other instances to shut down");
            return;
        }
    };
    let topics: Vec<&str> = shared.partition_counts.keys().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topics) {
        tracing::error!(error = %e, "cannot ask the other instances to shut down");
        return;
    }
    tracing::warn!(application = %app, "asking every instance of the application to shut down");
    let started = Instant::now();
    let mut last_check = Instant::now();
    while started.elapsed() < STAY_AT_MOST {
        // Records are not processed: the request only needs to be a member.
        let _ = consumer.poll(Duration::from_millis(200));
        if last_check.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last_check = Instant::now();
        let others = consumer
            .fetch_group_list(Some(app), Duration::from_secs(5))
            .ok()
            .and_then(|groups| {
                groups.groups().iter().find(|g| g.name() == app).map(|g| {
                    g.members()
                        .iter()
                        .filter(|m| parse_member(app, m.client_id(), m.id()).is_some())
                        .count()
                })
            });
        if others == Some(0) {
            tracing::info!(waited = ?started.elapsed(), "every instance left the group");
            return;
        }
    }
    tracing::warn!(
        waited = ?started.elapsed(),
        "some instances are still in the group after the shutdown request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recognised_and_thread_consumers_are_not() {
        let id = request_client_id("orders", "node-1");
        assert_eq!(requester("orders", &id).as_deref(), Some("node-1"));
        assert_eq!(requester("orders-eu", &id), None);
        let thread = super::super::identity::consumer_client_id("orders", "node-1", 1, None);
        assert_eq!(requester("orders", &thread), None);
        assert!(parse_member("orders", &id, "m").is_none());
    }
}
