//! Cutting a topology into sub-topologies, and sizing its repartition topics.
//!
//! Processors and sinks join the component of their parents, and processors sharing a store
//! join each other. A sink writing topic X and a source reading X are never joined: that edge
//! goes through Kafka, and it is where the graph is cut. Components are numbered in the order
//! their first node was added, so upstream sub-topologies get the lower ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{NodeKind, TopicName, Topology};
use crate::error::StreamsError;

/// One connected component of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubTopology {
    pub id: u32,
    /// Node indices in the order they were added.
    pub nodes: Vec<usize>,
    /// Topics its sources read, in node order.
    pub source_topics: Vec<TopicName>,
    /// Topics its sinks write.
    pub sink_topics: Vec<TopicName>,
    /// Stores its processors use, in first-use order.
    pub stores: Vec<String>,
}

impl SubTopology {
    /// Its number of tasks: one per partition of its largest source topic (which is also the
    /// partition count of its stores' changelogs).
    pub(crate) fn task_count(&self, partitions: &BTreeMap<TopicName, i32>) -> i32 {
        self.source_topics
            .iter()
            .filter_map(|t| partitions.get(t))
            .max()
            .copied()
            .unwrap_or(1)
    }
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    // The smaller index becomes the root so a component is named by its first node.
    if ra < rb {
        parent[rb] = ra;
    } else if rb < ra {
        parent[ra] = rb;
    }
}

impl Topology {
    pub(crate) fn subtopologies(&self) -> Vec<SubTopology> {
        let n = self.nodes.len();
        let mut parent: Vec<usize> = (0..n).collect();
        let mut store_owner: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.parents {
                union(&mut parent, i, p);
            }
            for store in &node.stores {
                match store_owner.get(store.as_str()) {
                    Some(&other) => union(&mut parent, i, other),
                    None => {
                        store_owner.insert(store, i);
                    }
                }
            }
        }
        let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            let root = find(&mut parent, i);
            components.entry(root).or_default().push(i);
        }
        components
            .into_values()
            .enumerate()
            .map(|(id, nodes)| {
                let mut source_topics = Vec::new();
                let mut sink_topics = Vec::new();
                let mut stores: Vec<String> = Vec::new();
                for &i in &nodes {
                    for s in &self.nodes[i].stores {
                        if !stores.contains(s) {
                            stores.push(s.clone());
                        }
                    }
                    match &self.nodes[i].kind {
                        NodeKind::Source { topics, .. } => {
                            source_topics.extend(topics.iter().cloned())
                        }
                        NodeKind::Sink { topic } => sink_topics.push(topic.clone()),
                        NodeKind::Processor => {}
                    }
                }
                SubTopology {
                    id: id as u32,
                    nodes,
                    source_topics,
                    sink_topics,
                    stores,
                }
            })
            .collect()
    }

    /// Partition counts of every source topic, given the counts of the external ones.
    ///
    /// A repartition topic without a fixed count gets the largest count among the source
    /// topics of the sub-topologies writing into it; since those may themselves read
    /// repartition topics, this iterates until nothing changes. Co-partition groups must end
    /// with equal counts.
    pub(crate) fn resolve_partition_counts(
        &self,
        external: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<BTreeMap<TopicName, i32>, StreamsError> {
        let subs = self.subtopologies();
        let mut counts: BTreeMap<TopicName, i32> = BTreeMap::new();
        for topic in self.all_source_topics() {
            if let TopicName::External(name) = topic {
                let n = external(name).ok_or_else(|| {
                    StreamsError::MissingTopic(format!(
                        "source topic {name} does not exist; create it before starting the app"
                    ))
                })?;
                counts.insert(topic.clone(), n);
            }
        }
        for (topic, def) in &self.repartition_topics {
            if let Some(n) = def.partitions {
                counts.insert(topic.clone(), n);
            }
        }
        // A repartition topic co-partitioned with an input topic takes that topic's count
        // (the group below), not its writers': the subscription topic of a foreign-key join,
        // written by the left table's tasks, must match the right table's partitions.
        let follows_input = |topic: &TopicName| {
            self.copartition_groups.iter().any(|group| {
                group.contains(topic) && group.iter().any(|t| matches!(t, TopicName::External(_)))
            })
        };
        loop {
            let mut changed = false;
            for topic in self.repartition_topics.keys() {
                if follows_input(topic) {
                    continue;
                }
                let derived = subs
                    .iter()
                    .filter(|s| s.sink_topics.contains(topic))
                    .flat_map(|s| s.source_topics.iter())
                    .filter_map(|t| counts.get(t).copied())
                    .max();
                if let Some(n) = derived {
                    if self.repartition_topics[topic].partitions.is_none()
                        && counts.get(topic).is_none_or(|&c| c < n)
                    {
                        counts.insert(topic.clone(), n);
                        changed = true;
                    }
                }
            }
            // A repartition topic in a co-partition group follows the group's other topics.
            for group in &self.copartition_groups {
                let max = group.iter().filter_map(|t| counts.get(t).copied()).max();
                if let Some(n) = max {
                    for t in group {
                        let unfixed = self
                            .repartition_topics
                            .get(t)
                            .is_some_and(|d| d.partitions.is_none());
                        if unfixed && counts.get(t) != Some(&n) {
                            counts.insert(t.clone(), n);
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for topic in self.repartition_topics.keys() {
            if !counts.contains_key(topic) {
                return Err(StreamsError::Topology(format!(
                    "cannot derive the partition count of repartition topic {topic}: no \
                     sub-topology writing it reads a topic of known size; set it explicitly"
                )));
            }
        }
        self.check_copartitioning(&counts)?;
        Ok(counts)
    }

    pub(crate) fn check_copartitioning(
        &self,
        counts: &BTreeMap<TopicName, i32>,
    ) -> Result<(), StreamsError> {
        for group in &self.copartition_groups {
            let sizes: BTreeSet<i32> = group
                .iter()
                .filter_map(|t| counts.get(t).copied())
                .collect();
            if sizes.len() > 1 {
                let listed: Vec<String> = group
                    .iter()
                    .map(|t| format!("{t} ({} partitions)", counts.get(t).copied().unwrap_or(-1)))
                    .collect();
                return Err(StreamsError::Topology(format!(
                    "co-partitioned topics must have the same number of partitions: {}",
                    listed.join(", ")
                )));
            }
        }
        Ok(())
    }
}
