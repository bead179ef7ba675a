//! Merging the repartition topics that follow one key change (Kafka Streams'
//! `merge.repartition.topics`).
//!
//! A re-keyed stream that is counted and joined gets a repartition topic from each operation,
//! so every record is written to Kafka and read back twice. The rewrite writes it once: one
//! repartition topic right after the key-changing node, read by every operation that had its
//! own. The stateless steps between the key change and an operation move behind the topic.
//!
//! An operation takes part only where moving those steps cannot change a result: each step on
//! the way is a processor without stores with a single child (a step feeding other operations
//! too would carry them behind the topic as well), and the operation reads the type the key
//! changer forwards (so the first operation's serdes fit every reader). Explicit
//! `KStream::repartition` topics are never merged: their user chose them, partition count and
//! all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{NodeKind, TopicName, Topology};

/// One repartition that can be merged: its sink, the source reading its topic, and the node
/// just below the key changer on the way up from the sink (the sink itself when it hangs
/// right under it).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key_changer: usize,
    top: usize,
    sink: usize,
    source: usize,
}

impl Topology {
    /// Merges the repartition topics after each key change that feeds more than one
    /// key-based operation; returns how many topics were merged away. Unlike Kafka Streams, a
    /// key change feeding one operation keeps its topic where it is, so the steps before it
    /// (a filter, say) still run before the write.
    pub(crate) fn merge_repartition_topics(&mut self) -> usize {
        let mut groups: BTreeMap<usize, Vec<Candidate>> = BTreeMap::new();
        let children = self.children();
        for sink in 0..self.nodes.len() {
            if let Some(c) = self.merge_candidate(sink, &children) {
                groups.entry(c.key_changer).or_default().push(c);
            }
        }
        let mut removed = BTreeSet::new();
        for group in groups.into_values() {
            // A node reading two of the topics (a cogroup of two inputs, say) gets each record
            // once per topic; after a merge it would get it once. Such a topic keeps its own.
            let mut readers = BTreeSet::new();
            let group: Vec<Candidate> = group
                .into_iter()
                .filter(|c| {
                    let own = &children[c.source];
                    let fresh = own.iter().all(|r| !readers.contains(r));
                    if fresh {
                        readers.extend(own.iter().copied());
                    }
                    fresh
                })
                .collect();
            if group.len() > 1 {
                self.merge_group(&group, &mut removed);
            }
        }
        let merged = removed.len() / 2;
        if merged > 0 {
            self.remove_and_reorder(&removed);
        }
        merged
    }

    /// Every node's children, by index.
    fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.parents {
                children[p].push(i);
            }
        }
        children
    }

    /// `sink` as a merge candidate, if it writes an optimizable repartition topic reached
    /// from a key changer through movable steps only.
    fn merge_candidate(&self, sink: usize, children: &[Vec<usize>]) -> Option<Candidate> {
        let NodeKind::Sink { topic } = &self.nodes[sink].kind else {
            return None;
        };
        if !self.repartition_topics.get(topic)?.optimizable {
            return None;
        }
        let source = *self.source_topics.get(topic)?;
        match &self.nodes[source].kind {
            NodeKind::Source { topics, .. } if topics.len() == 1 => {}
            _ => return None,
        }
        let mut below = sink;
        loop {
            let [parent] = self.nodes[below].parents[..] else {
                return None;
            };
            let node = &self.nodes[parent];
            if node.key_changing {
                return (node.output_type == self.nodes[sink].input_type).then_some(Candidate {
                    key_changer: parent,
                    top: below,
                    sink,
                    source,
                });
            }
            let movable = matches!(node.kind, NodeKind::Processor)
                && node.stores.is_empty()
                && children[parent].len() == 1;
            if !movable {
                return None;
            }
            below = parent;
        }
    }

    /// Rewires one key changer's candidates onto the first one's topic: its sink moves right
    /// under the key changer, each candidate's steps hang under its source, and each other
    /// candidate's readers hang under its last step. The other sinks and sources go into
    /// `removed`.
    fn merge_group(&mut self, group: &[Candidate], removed: &mut BTreeSet<usize>) {
        let kept = group[0];
        let kept_topic = self.topic_of(kept.sink);
        for c in group {
            let children = self.children();
            let last_step = self.nodes[c.sink].parents[0];
            let new_parent = if c.top == c.sink {
                kept.source
            } else {
                replace(&mut self.nodes[c.top].parents, c.key_changer, kept.source);
                last_step
            };
            for &reader in &children[c.source] {
                replace(&mut self.nodes[reader].parents, c.source, new_parent);
            }
            if c.sink == kept.sink {
                // Moved under the key changer once every candidate is rewired.
                continue;
            }
            let topic = self.topic_of(c.sink);
            self.repartition_topics.remove(&topic);
            for group in &mut self.copartition_groups {
                if group.remove(&topic) {
                    group.insert(kept_topic.clone());
                }
            }
            removed.insert(c.sink);
            removed.insert(c.source);
        }
        self.nodes[kept.sink].parents = vec![kept.key_changer];
        self.copartition_groups.retain(|g| g.len() > 1);
        tracing::info!(
            topic = %kept_topic,
            merged = group.len(),
            key_changer = %self.nodes[kept.key_changer].name,
            "merged repartition topics after a key change into one"
        );
    }

    fn topic_of(&self, sink: usize) -> TopicName {
        match &self.nodes[sink].kind {
            NodeKind::Sink { topic } => topic.clone(),
            _ => unreachable!("merge candidates are sinks"),
        }
    }

    /// Drops the `removed` nodes and puts the others back in an order where every parent
    /// comes before its children (building a task relies on it), keeping the original order
    /// wherever the rewrite did not force a change.
    fn remove_and_reorder(&mut self, removed: &BTreeSet<usize>) {
        let n = self.nodes.len();
        let mut waiting = vec![0usize; n];
        let mut children = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            if removed.contains(&i) {
                continue;
            }
            waiting[i] = node.parents.len();
            for &p in &node.parents {
                children[p].push(i);
            }
        }
        let mut ready: BTreeSet<usize> = (0..n)
            .filter(|i| !removed.contains(i) && waiting[*i] == 0)
            .collect();
        let mut order = Vec::with_capacity(n - removed.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &c in &children[i] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        assert_eq!(
            order.len(),
            n - removed.len(),
            "the merged topology has a cycle"
        );
        let position: HashMap<usize, usize> = order
            .iter()
            .enumerate()
            .map(|(new, &old)| (old, new))
            .collect();
        let mut old: Vec<Option<_>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order
            .iter()
            .map(|&i| {
                let mut node = old[i].take().expect("each node is placed once");
                for p in &mut node.parents {
                    *p = position[p];
                }
                node
            })
            .collect();
        self.names = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.name.clone(), i))
            .collect();
        self.source_topics = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, node)| match &node.kind {
                NodeKind::Source { topics, .. } => topics.iter().map(|t| (t.clone(), i)).collect(),
                _ => Vec::new(),
            })
            .collect();
    }
}

/// Replaces `from` by `to` in a parent list (once: a node lists a parent once).
fn replace(parents: &mut [usize], from: usize, to: usize) {
    if let Some(p) = parents.iter_mut().find(|p| **p == from) {
        *p = to;
    }
}
