//! [`TopologyDescription`]: the topology in Kafka Streams' text format, plus Mermaid.

use std::fmt;

use super::{NodeKind, Topology};

/// One node as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDescription {
    /// `Source`, `Processor` or `Sink`.
    pub kind: &'static str,
    /// Node name.
    pub name: String,
    /// Topics read (sources) or written (sinks).
    pub topics: Vec<String>,
    /// Stores used (processors).
    pub stores: Vec<String>,
    /// Successor names.
    pub successors: Vec<String>,
    /// Predecessor names.
    pub predecessors: Vec<String>,
}

/// One sub-topology as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtopologyDescription {
    /// Sub-topology id.
    pub id: u32,
    /// Its nodes in the order they were added.
    pub nodes: Vec<NodeDescription>,
}

/// A stable description of a topology; `Display` prints Kafka Streams' format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    /// Sub-topologies by id.
    pub subtopologies: Vec<SubtopologyDescription>,
}

pub(super) fn describe(topology: &Topology) -> TopologyDescription {
    let subtopologies = topology
        .subtopologies()
        .into_iter()
        .map(|sub| SubtopologyDescription {
            id: sub.id,
            nodes: sub
                .nodes
                .iter()
                .map(|&i| {
                    let def = &topology.nodes[i];
                    let (kind, topics) = match &def.kind {
                        NodeKind::Source { topics, .. } => {
                            ("Source", topics.iter().map(|t| t.to_string()).collect())
                        }
                        NodeKind::Processor => ("Processor", Vec::new()),
                        NodeKind::Sink { topic } => ("Sink", vec![topic.to_string()]),
                    };
                    NodeDescription {
                        kind,
                        name: def.name.to_string(),
                        topics,
                        stores: def.stores.clone(),
                        successors: topology
                            .nodes
                            .iter()
                            .filter(|c| c.parents.contains(&i))
                            .map(|c| c.name.to_string())
                            .collect(),
                        predecessors: def
                            .parents
                            .iter()
                            .map(|&p| topology.nodes[p].name.to_string())
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    TopologyDescription { subtopologies }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Topologies:")?;
        for sub in &self.subtopologies {
            writeln!(f, "   Sub-topology: {}", sub.id)?;
            for node in &sub.nodes {
                match node.kind {
                    "Source" => writeln!(
                        f,
                        "    Source: {} (topics: [{}])",
                        node.name,
                        node.topics.join(", ")
                    )?,
                    "Sink" => writeln!(f, "    Sink: {} (topic: {})", node.name, node.topics[0])?,
                    _ => writeln!(
                        f,
                        "    Processor: {} (stores: [{}])",
                        node.name,
                        node.stores.join(", ")
                    )?,
                }
                if node.kind != "Sink" {
                    let successors = if node.successors.is_empty() {
                        "none".to_string()
                    } else {
                        node.successors.join(", ")
                    };
                    writeln!(f, "      --> {successors}")?;
                }
                if !node.predecessors.is_empty() {
                    writeln!(f, "      <-- {}", node.predecessors.join(", "))?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl TopologyDescription {
    /// A Mermaid flowchart: one subgraph per sub-topology, topics as stadium shapes, stores
    /// as cylinders.
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut out = String::from("flowchart TD\n");
        for sub in &self.subtopologies {
            out.push_str(&format!(
                "  subgraph sub{}[\"Sub-topology {}\"]\n",
                sub.id, sub.id
            ));
            for node in &sub.nodes {
                out.push_str(&format!("    {}[\"{}\"]\n", id(&node.name), node.name));
            }
            out.push_str("  end\n");
            for node in &sub.nodes {
                for topic in &node.topics {
                    let t = format!("topic_{}", id(topic));
                    match node.kind {
                        "Source" => {
                            out.push_str(&format!("  {t}([\"{topic}\"]) --> {}\n", id(&node.name)))
                        }
                        _ => {
                            out.push_str(&format!("  {} --> {t}([\"{topic}\"])\n", id(&node.name)))
                        }
                    }
                }
                for store in &node.stores {
                    out.push_str(&format!(
                        "  {} --- store_{}[(\"{store}\")]\n",
                        id(&node.name),
                        id(store)
                    ));
                }
                for successor in &node.successors {
                    out.push_str(&format!("  {} --> {}\n", id(&node.name), id(successor)));
                }
            }
        }
        out
    }
}
