//! Which instance of the application runs which task, for the key → instance lookup of
//! interactive queries.
//!
//! Each stream thread's consumer publishes its instance's identity and `application_server`
//! (host:port of the application's own query endpoint) in its client id. The group's members
//! come from the broker (DescribeGroups); the task each runs is recomputed with the same
//! function the members use to assign themselves ([`super::assignor::assign_app`]).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::app_shared::AppShared;
use super::{assignor, identity, internal_topics};
use crate::client_config::ClientRole;
use crate::error::StreamsError;
use crate::task::TaskId;

/// The `application_server` of the instance running `task` now; `None` when no member runs
/// it or its instance published no server.
pub(crate) fn server_running(
    shared: &AppShared,
    task: TaskId,
    timeout: Duration,
) -> Result<Option<String>, StreamsError> {
    let config = &shared.config;
    let group = &config.application_id;
    let consumer: BaseConsumer = config
        .with_client_properties(
            ClientRole::Consumer,
            ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers),
        )
        .create()?;
    let list = consumer
        .fetch_group_list(Some(group), timeout)
        .map_err(|e| StreamsError::Kafka(format!("cannot describe consumer group {group}: {e}")))?;
    let mut servers = BTreeMap::new();
    let members: Vec<assignor::Member> = list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .filter_map(|m| {
            let member = identity::parse_member(group, m.client_id(), m.id())?;
            servers.insert(member.member_id.clone(), identity::server_of(m.client_id()));
            Some(member)
        })
        .collect();
    let counts = internal_topics::live_partition_counts(&consumer)?;
    let assignment = assignor::assign_app(shared, &counts, &members);
    Ok(assignment
        .iter()
        .find(|(_, tasks)| tasks.active.contains(&task))
        .and_then(|(member, _)| servers.get(member).cloned().flatten()))
}
