//! Instantiating the nodes of one sub-topology for one task.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::{NodeKind, SubTopology, TopicName, Topology};
use crate::error::StreamsError;
use crate::processor::node::{ChildHandle, Lifecycle, NodeBuild, RawInput};
use crate::task::task_context::TaskContext;
use crate::timestamp::TimestampExtractor;

/// A source of a task graph: the topic it reads (resolved), its node and its extractor.
pub(crate) struct TaskSource {
    pub topic: Arc<str>,
    pub node: Rc<RefCell<dyn RawInput>>,
    pub extractor: Option<Arc<dyn TimestampExtractor>>,
}

/// The live nodes of one task.
pub(crate) struct TaskGraph {
    pub sources: Vec<TaskSource>,
    /// Every node by topology index, in the order they were added (init order).
    pub nodes: Vec<(usize, Rc<RefCell<dyn Lifecycle>>)>,
}

impl Topology {
    /// Builds the nodes of `sub` for one task: children first, so each parent's factory gets
    /// its children (in the order they were added) to forward into.
    pub(crate) fn build_task_graph(
        &self,
        sub: &SubTopology,
        task: Rc<TaskContext>,
    ) -> Result<TaskGraph, StreamsError> {
        let mut built: HashMap<usize, crate::processor::node::BuiltNode> = HashMap::new();
        let mut sources = Vec::new();
        for &i in sub.nodes.iter().rev() {
            let def = &self.nodes[i];
            let children =
                sub.nodes
                    .iter()
                    .filter(|&&c| self.nodes[c].parents.contains(&i))
                    .map(|&c| {
                        let child = &built[&c];
                        ChildHandle {
                            name: self.nodes[c].name.clone(),
                            input: child.input.clone().expect(
                                "only source nodes lack an input, and they have no parents",
                            ),
                            input_type: self.nodes[c].input_type,
                        }
                    })
                    .collect();
            let node = (def.factory)(NodeBuild {
                name: def.name.clone(),
                index: i,
                task: task.clone(),
                children,
                output_type: def.output_type,
            })?;
            if let NodeKind::Source { topics, extractor } = &def.kind {
                let raw = node
                    .raw
                    .clone()
                    .expect("source factories return a raw input");
                for topic in topics {
                    sources.push(TaskSource {
                        topic: Arc::from(topic.resolve(&task.application_id)),
                        node: raw.clone(),
                        extractor: extractor.clone(),
                    });
                }
            }
            built.insert(i, node);
        }
        let nodes = sub
            .nodes
            .iter()
            .map(|i| (*i, built[i].lifecycle.clone()))
            .collect();
        Ok(TaskGraph { sources, nodes })
    }

    /// The sub-topology reading `topic` (resolved name) and its id.
    pub(crate) fn subtopology_reading(
        subs: &[SubTopology],
        application_id: &str,
        topic: &str,
    ) -> Option<u32> {
        subs.iter()
            .find(|s| {
                s.source_topics
                    .iter()
                    .any(|t: &TopicName| t.resolve(application_id) == topic)
            })
            .map(|s| s.id)
    }
}
