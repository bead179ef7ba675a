//! This thread's active and standby tasks, computed by every member alike from the group's
//! member list (see [`assignor`]) as the broker describes it for the generation this member
//! joined. The partitions librdkafka's assignor chose are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::app_shared::AppShared;
use super::assignor::{self, Member, MemberTasks};
use super::identity::parse_member;
use super::member_assignment::{self, PartitionSet};
use super::native::client::member_id;
use super::shutdown_request;
use crate::error::StreamsError;
use crate::task::TaskId;

const GROUP_TIMEOUT: Duration = Duration::from_secs(10);

/// This thread's tasks, computed from the group's current members; `None` when the
/// broker's description of the group is not the generation this member joined (the group
/// is re-forming, or the description lags), or it cannot be read.
pub(crate) fn this_threads_tasks<C: ConsumerContext>(
    shared: &AppShared,
    consumer: &BaseConsumer<C>,
    counts: &BTreeMap<String, i32>,
    offered: &PartitionSet,
) -> Option<MemberTasks> {
    let app = &shared.config.application_id;
    let groups = match consumer.fetch_group_list(Some(app), GROUP_TIMEOUT) {
        Ok(groups) => groups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot describe the group; retrying the assignment");
            return None;
        }
    };
    let Some(group) = groups.groups().iter().find(|g| g.name() == app) else {
        tracing::warn!("the group is not described by the broker; retrying the assignment");
        return None;
    };
    if let Some(who) = group
        .members()
        .iter()
        .find_map(|m| shutdown_request::requester(app, m.client_id()))
    {
        shared.fail(StreamsError::Processing {
            context: format!("application {app}"),
            message: format!(
                "instance {who} asked every instance to shut down after one of its stream threads failed"
            ),
        });
        return None;
    }
    if group.state() != "Stable" {
        // Members that read the list now could see different ones; either a rebalance is
        // under way (it gives everyone a new assignment) or the description lags.
        tracing::info!(
            state = group.state(),
            "the group is not stable yet; retrying the assignment"
        );
        return None;
    }
    let me = member_id(consumer)?;
    let Some(described) = group.members().iter().find(|m| m.id() == me) else {
        tracing::info!(member = %me, "the group's description does not list this thread yet; retrying the assignment");
        return None;
    };
    if described
        .assignment()
        .and_then(member_assignment::parse_assignment)
        .as_ref()
        != Some(offered)
    {
        tracing::info!(member = %me, "the group's description is of another generation; retrying the assignment");
        return None;
    }
    let members: Vec<Member> = group
        .members()
        .iter()
        .filter_map(|m| parse_member(app, m.client_id(), m.id()))
        .collect();
    let mut assignment = assignor::assign_app(shared, counts, &members);
    let instances: BTreeSet<&str> = members.iter().map(|m| m.instance.as_str()).collect();
    tracing::debug!(
        members = members.len(),
        instances = instances.len(),
        "computed the assignment"
    );
    Some(assignment.remove(&me).unwrap_or_default())
}

/// `[0_1 1_0 ...]`, for logs.
pub(crate) fn task_list(tasks: &BTreeSet<TaskId>) -> String {
    let ids: Vec<String> = tasks.iter().map(TaskId::to_string).collect();
    format!("[{}]", ids.join(" "))
}
