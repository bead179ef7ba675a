//! [`assign`]: which stream thread of which instance runs each task, and where its standby
//! replicas live.
//!
//! librdkafka has no API for a custom partition assignor, so streamtime keeps the consumer
//! group only for what it is good at — membership, generations (which fence the offset commits
//! of a member that was expelled) and noticing new partitions — and ignores the partitions the
//! built-in assignor hands out. After every eager rebalance each member reads the group's
//! member list (`DescribeGroups`) and computes the same assignment from it with this pure
//! function, then assigns itself exactly its tasks' partitions.
//!
//! The member list must be the one of the generation the member just joined, or members would
//! compute from different lists and leave tasks with two owners or none. A member therefore
//! uses a description only when the group is `Stable` and the description lists, for this
//! member, exactly the partitions librdkafka's callback gave it (the leader's assignment of
//! this generation; see `member_assignment`). Otherwise (the group is re-forming, or the
//! broker answers from slightly older state) it assigns itself nothing for the moment and
//! tries again every 250 ms from the stream loop, until it succeeds or a new rebalance starts.
//!
//! The function is rendezvous (highest-random-weight) hashing with bounded loads:
//!
//! * every task ranks every instance by a fixed hash of (task, instance), so a task's preferred
//!   owner depends only on the task and the set of instances: when an instance joins, it takes
//!   only tasks it ranks first for; when one leaves, only its tasks move;
//! * an instance takes at most its share of the tasks (rounded up, by thread count); a task
//!   whose first choice is full goes to its next choice, which keeps instances balanced at the
//!   cost of a few extra moves;
//! * a stateful task's first standby goes to the instance the task would move to if its active
//!   instance left (the same computation without that instance), further standbys to the next
//!   instances in its ranking. A single failure therefore always moves a task to warm state.
//!
//! Trade-offs: every rebalance is eager (each thread stops all its tasks while the group
//! re-forms), but the tasks that stay are only closed and reopened from their local,
//! checkpointed state. All members must compute from the same inputs: the member list is the
//! group's, and the task list comes from partition counts fetched fresh at each assignment;
//! a member whose metadata is briefly behind a topic's growth triggers another rebalance when
//! its metadata catches up.

use std::collections::{BTreeMap, BTreeSet};

use super::app_shared::AppShared;
use crate::task::TaskId;

/// One member of the consumer group: a stream thread of an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    /// The stable identity of the instance (its `instance_id`, or the process id persisted in
    /// its state directory), so a restarted instance gets its old tasks back.
    pub instance: String,
    /// The thread's index within the instance.
    pub thread: u32,
    /// The group member id.
    pub member_id: String,
}

/// What one member runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberTasks {
    pub active: BTreeSet<TaskId>,
    pub standby: BTreeSet<TaskId>,
}

/// A 64-bit FNV-1a hash followed by a finaliser: fixed across processes, versions and
/// platforms, unlike `std`'s randomly seeded hasher, which every member must agree on.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

fn score(task: TaskId, who: &str) -> u64 {
    stable_hash(&[
        &task.subtopology.to_be_bytes(),
        &task.partition.to_be_bytes(),
        who.as_bytes(),
    ])
}

/// `candidates` ordered by preference for `task`: highest score first, ties by name.
fn ranking<'a>(task: TaskId, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ranked: Vec<(u64, &str)> = candidates.map(|c| (score(task, c), c)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    ranked.into_iter().map(|(_, c)| c).collect()
}

/// The owning instance of each task: its highest-ranked instance that still has room for
/// its share (by thread count, rounded up).
fn place<'a>(
    tasks: &BTreeSet<TaskId>,
    threads: &BTreeMap<&'a str, usize>,
) -> BTreeMap<TaskId, &'a str> {
    let total_threads: usize = threads.values().sum();
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    let mut owners = BTreeMap::new();
    if total_threads == 0 {
        return owners;
    }
    for &task in tasks {
        let ranked = ranking(task, threads.keys().copied());
        let owner = ranked
            .iter()
            .copied()
            .find(|i| {
                let capacity = (tasks.len() * threads[i]).div_ceil(total_threads);
                load.get(i).copied().unwrap_or(0) < capacity
            })
            .unwrap_or(ranked[0]);
        *load.entry(owner).or_default() += 1;
        owners.insert(task, owner);
    }
    owners
}

/// Assigns every task to exactly one member, and each stateful task's standbys to members of
/// up to `standbys` other instances. Deterministic: the same inputs give the same result
/// regardless of their order.
pub(crate) fn assign(
    tasks: &BTreeSet<TaskId>,
    stateful: &dyn Fn(TaskId) -> bool,
    members: &[Member],
    standbys: usize,
) -> BTreeMap<String, MemberTasks> {
    let mut result: BTreeMap<String, MemberTasks> = members
        .iter()
        .map(|m| (m.member_id.clone(), MemberTasks::default()))
        .collect();
    if members.is_empty() {
        return result;
    }
    // Threads per instance, each thread by its member id.
    let mut instances: BTreeMap<&str, BTreeMap<String, &str>> = BTreeMap::new();
    for m in members {
        instances
            .entry(m.instance.as_str())
            .or_default()
            .insert(format!("{}#{}", m.instance, m.thread), m.member_id.as_str());
    }
    let threads: BTreeMap<&str, usize> = instances.iter().map(|(i, t)| (*i, t.len())).collect();
    let owners = place(tasks, &threads);
    // The first standby goes where the task would go if its active instance left, so a
    // single failure always fails over to warm state.
    let successors: BTreeMap<&str, BTreeMap<TaskId, &str>> = if standbys > 0 {
        threads
            .keys()
            .map(|&gone| {
                let mut rest = threads.clone();
                rest.remove(gone);
                (gone, place(tasks, &rest))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut by_instance: BTreeMap<&str, Vec<TaskId>> = BTreeMap::new();
    for (&task, &owner) in &owners {
        by_instance.entry(owner).or_default().push(task);
        if !stateful(task) || standbys == 0 {
            continue;
        }
        let mut chosen: Vec<&str> = successors[owner].get(&task).copied().into_iter().collect();
        for other in ranking(task, threads.keys().copied()) {
            if chosen.len() >= standbys {
                break;
            }
            if other != owner && !chosen.contains(&other) {
                chosen.push(other);
            }
        }
        for other in chosen {
            let thread = ranking(task, instances[other].keys().map(String::as_str))[0];
            let member = instances[other][thread];
            result
                .get_mut(member)
                .expect("known member")
                .standby
                .insert(task);
        }
    }
    // Within an instance, the same rule spreads its tasks over its threads.
    for (instance, owned) in by_instance {
        let threads = &instances[instance];
        let per_thread = owned.len().div_ceil(threads.len());
        let mut thread_load: BTreeMap<&str, usize> = BTreeMap::new();
        for task in owned {
            let ranked = ranking(task, threads.keys().map(String::as_str));
            let thread = ranked
                .iter()
                .copied()
                .find(|t| thread_load.get(t).copied().unwrap_or(0) < per_thread)
                .unwrap_or(ranked[0]);
            *thread_load.entry(thread).or_default() += 1;
            let member = threads[thread];
            result
                .get_mut(member)
                .expect("known member")
                .active
                .insert(task);
        }
    }
    result
}

/// The assignment of an application's tasks over `members`: one task per sub-topology and
/// partition of its largest source topic (`counts`: partition count by topic), standbys for
/// tasks with persistent, changelogged state.
pub(crate) fn assign_app(
    shared: &AppShared,
    counts: &BTreeMap<String, i32>,
    members: &[Member],
) -> BTreeMap<String, MemberTasks> {
    let app = &shared.config.application_id;
    let tasks: BTreeSet<TaskId> = shared
        .subs
        .iter()
        .flat_map(|sub| {
            let n = sub
                .source_topics
                .iter()
                .filter_map(|t| counts.get(&t.resolve(app)).copied())
                .max()
                .unwrap_or(0);
            (0..n).map(move |partition| TaskId {
                subtopology: sub.id,
                partition,
            })
        })
        .collect();
    let stateful = |t: TaskId| super::standby::has_standby_state(shared, t.subtopology);
    assign(
        &tasks,
        &stateful,
        members,
        shared.config.num_standby_replicas,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks whose owning instance differs between two assignments (tasks present in both).
    fn moved_tasks(before: &BTreeMap<TaskId, String>, after: &BTreeMap<TaskId, String>) -> usize {
        before
            .iter()
            .filter(|(task, owner)| after.get(task).is_some_and(|o| o != *owner))
            .count()
    }

    fn tasks(subs: u32, partitions: i32) -> BTreeSet<TaskId> {
        (0..subs)
            .flat_map(|s| {
                (0..partitions).map(move |p| TaskId {
                    subtopology: s,
                    partition: p,
                })
            })
            .collect()
    }

    fn members(instances: &[&str], threads: u32) -> Vec<Member> {
        instances
            .iter()
            .flat_map(|i| {
                (1..=threads).map(move |t| Member {
                    instance: i.to_string(),
                    thread: t,
                    member_id: format!("{i}-{t}-member"),
                })
            })
            .collect()
    }

    /// Owning instance of each task.
    fn owners(
        assignment: &BTreeMap<String, MemberTasks>,
        members: &[Member],
    ) -> BTreeMap<TaskId, String> {
        let instance: BTreeMap<&str, &str> = members
            .iter()
            .map(|m| (m.member_id.as_str(), m.instance.as_str()))
            .collect();
        let mut out = BTreeMap::new();
        for (member, t) in assignment {
            for task in &t.active {
                let previous = out.insert(*task, instance[member.as_str()].to_string());
                assert!(previous.is_none(), "{task} assigned twice");
            }
        }
        out
    }

    #[test]
    fn every_task_once_balanced_and_independent_of_input_order() {
        let all = tasks(2, 12);
        let ms = members(&["a", "b", "c"], 2);
        let a = assign(&all, &|_| true, &ms, 1);
        let mut reversed = ms.clone();
        reversed.reverse();
        assert_eq!(a, assign(&all, &|_| true, &reversed, 1));
        let owned = owners(&a, &ms);
        assert_eq!(owned.len(), all.len());
        for t in a.values() {
            assert_eq!(t.active.len(), 4, "24 tasks over 6 threads: {a:?}");
        }
    }

    #[test]
    fn standbys_live_on_other_instances_and_only_for_stateful_tasks() {
        let all = tasks(2, 6);
        let ms = members(&["a", "b", "c"], 1);
        let stateful = |t: TaskId| t.subtopology == 1;
        let a = assign(&all, &stateful, &ms, 2);
        let owned = owners(&a, &ms);
        for (member, t) in &a {
            for task in &t.standby {
                assert_eq!(task.subtopology, 1);
                assert_ne!(&owned[task], &member[..1], "standby on the active instance");
            }
        }
        let standbys: usize = a.values().map(|t| t.standby.len()).sum();
        assert_eq!(standbys, 6 * 2);
    }

    /// The moves a change forces at least (tasks of a departed instance, or the joiner's
    /// share), and what the assignment moved, over many instance names.
    fn movement(before: &[&str], after: &[&str]) -> (usize, usize) {
        let all = tasks(1, 12);
        let (mb, ma) = (members(before, 1), members(after, 1));
        let ob = owners(&assign(&all, &|_| true, &mb, 0), &mb);
        let oa = owners(&assign(&all, &|_| true, &ma, 0), &ma);
        let forced = ob.values().filter(|o| !after.contains(&o.as_str())).count();
        let joiners = after.iter().filter(|i| !before.contains(i)).count();
        let minimum = forced.max(joiners * all.len() / after.len());
        (minimum, moved_tasks(&ob, &oa))
    }

    #[test]
    fn joining_and_leaving_move_close_to_the_minimum() {
        let mut total = (0, 0);
        for seed in 0..50 {
            let names: Vec<String> = (0..4).map(|i| format!("app-{seed}-{i}")).collect();
            let n: Vec<&str> = names.iter().map(String::as_str).collect();
            for (before, after) in [(&n[..3], &n[..4]), (&n[..4], &n[1..4]), (&n[..3], &n[..2])] {
                let (minimum, moved) = movement(before, after);
                assert!(
                    moved <= minimum + 3,
                    "{before:?} -> {after:?}: moved {moved}, minimum {minimum}"
                );
                total.0 += minimum;
                total.1 += moved;
            }
        }
        // On average within a quarter of the minimum.
        assert!(
            total.1 * 4 <= total.0 * 5,
            "moved {} for a minimum of {}",
            total.1,
            total.0
        );
    }

    #[test]
    fn the_standby_instance_takes_over_when_the_active_one_leaves() {
        let all = tasks(1, 12);
        let (mut failed_over, mut warm) = (0, 0);
        for seed in 0..50 {
            let names: Vec<String> = (0..3).map(|i| format!("app-{seed}-{i}")).collect();
            let n: Vec<&str> = names.iter().map(String::as_str).collect();
            let ms = members(&n, 1);
            let before = assign(&all, &|_| true, &ms, 1);
            let instance_of = |member: &str| member.rsplitn(3, '-').nth(2).unwrap().to_string();
            let standby_of: BTreeMap<TaskId, String> = before
                .iter()
                .flat_map(|(m, t)| t.standby.iter().map(move |task| (*task, instance_of(m))))
                .collect();
            let survivors = members(&n[1..], 1);
            let after = owners(&assign(&all, &|_| true, &survivors, 1), &survivors);
            for (task, owner) in owners(&before, &ms) {
                if owner == n[0] {
                    failed_over += 1;
                    warm += usize::from(after[&task] == standby_of[&task]);
                }
            }
        }
        // Standbys sit where a failure sends their task.
        assert_eq!(
            warm, failed_over,
            "{warm} of {failed_over} failed over warm"
        );
    }
}
