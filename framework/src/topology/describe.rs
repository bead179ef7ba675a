//! [`TopologyDescription`]: the topology in Kafka Streams' text format, plus Mermaid.

use std::fmt;

use super::{NodeKind, Topology};
use crate::stores::StoreKind;

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

/// One state store as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDescription {
    /// Store name.
    pub name: String,
    /// `key-value`, `window` or `session`.
    pub kind: &'static str,
    /// Its changelog topic without the application prefix (`<store>-changelog`), when the
    /// store is logged.
    pub changelog: Option<String>,
}

/// A stable description of a topology; `Display` prints Kafka Streams' format and
/// [`TopologyDescription::to_mermaid`] a diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    /// Sub-topologies by id.
    pub subtopologies: Vec<SubtopologyDescription>,
    /// Repartition topics without the application prefix, sorted.
    pub repartition_topics: Vec<String>,
    /// State stores by name.
    pub stores: Vec<StoreDescription>,
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
    let stores = topology
        .stores
        .values()
        .map(|spec| StoreDescription {
            name: spec.name().to_string(),
            kind: match spec.kind() {
                StoreKind::KeyValue => "key-value",
                StoreKind::Versioned { .. } => "versioned key-value",
                StoreKind::Window { .. } => "window",
                StoreKind::Session { .. } => "session",
            },
            changelog: spec
                .is_logged()
                .then(|| Topology::changelog_topic(spec.name()).to_string()),
        })
        .collect();
    TopologyDescription {
        subtopologies,
        repartition_topics: topology
            .repartition_topics
            .keys()
            .map(|t| t.to_string())
            .collect(),
        stores,
    }
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
    /// A [Mermaid](https://mermaid.js.org) flowchart of the topology, to paste into Markdown
    /// (GitHub renders it) or the Mermaid live editor: one box per sub-topology holding its
    /// nodes; user topics as stadiums, repartition topics (which link sub-topologies) as
    /// hexagons, stores as cylinders, each logged store with its changelog topic.
    ///
    /// ```
    /// use streamtime::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
    /// use streamtime::serdes::{I64Serde, StringSerde};
    ///
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream("clicks", Consumed::with(StringSerde, StringSerde))
    ///     .group_by(|_user, page: &String| page.clone(), Grouped::as_("by-page"))
    ///     .count(Materialized::as_("page-counts"))
    ///     .to_stream()
    ///     .to("page-counts", Produced::with(StringSerde, I64Serde));
    /// let mermaid = builder.build().unwrap().describe().to_mermaid();
    /// assert!(mermaid.contains("by-page-repartition"));
    /// assert!(mermaid.contains("page-counts-changelog"));
    /// ```
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let repartition = |topic: &str| self.repartition_topics.iter().any(|t| t == topic);
        let topic_node = |topic: &str| {
            let t = format!("topic_{}", id(topic));
            if repartition(topic) {
                format!("{t}{{{{\"{topic}\"}}}}")
            } else {
                format!("{t}([\"{topic}\"])")
            }
        };
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
                    match node.kind {
                        "Source" => out.push_str(&format!(
                            "  {} --> {}\n",
                            topic_node(topic),
                            id(&node.name)
                        )),
                        _ => out.push_str(&format!(
                            "  {} --> {}\n",
                            id(&node.name),
                            topic_node(topic)
                        )),
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
        for store in &self.stores {
            if let Some(changelog) = &store.changelog {
                out.push_str(&format!(
                    "  store_{} -.-> changelog_{}[/\"{changelog}\"/]\n",
                    id(&store.name),
                    id(changelog)
                ));
            }
        }
        // Classes let a reader tell topic kinds apart at a glance, even without colour.
        out.push_str("  classDef repartition fill:#fde68a,stroke:#b45309\n");
        out.push_str("  classDef changelog fill:#e5e7eb,stroke:#6b7280\n");
        out.push_str("  classDef store fill:#bfdbfe,stroke:#1d4ed8\n");
        for topic in &self.repartition_topics {
            out.push_str(&format!("  class topic_{} repartition\n", id(topic)));
        }
        for store in &self.stores {
            out.push_str(&format!("  class store_{} store\n", id(&store.name)));
            if let Some(changelog) = &store.changelog {
                out.push_str(&format!("  class changelog_{} changelog\n", id(changelog)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::serdes::{I64Serde, StringSerde};
    use crate::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};

    /// clicks → group by page (repartition) → count in a logged store → page-counts.
    fn page_counts() -> crate::Topology {
        let builder = StreamsBuilder::new();
        builder
            .stream("clicks", Consumed::with(StringSerde, StringSerde))
            .group_by(|_user, page: &String| page.clone(), Grouped::as_("by-page"))
            .count(Materialized::as_("page-counts"))
            .to_stream()
            .to("page-counts-out", Produced::with(StringSerde, I64Serde));
        builder.build().unwrap()
    }

    #[test]
    fn mermaid_shows_subtopologies_topic_kinds_stores_and_changelogs() {
        let description = page_counts().describe();
        assert_eq!(description.repartition_topics, ["by-page-repartition"]);
        assert_eq!(description.stores.len(), 1);
        assert_eq!(
            description.stores[0].changelog.as_deref(),
            Some("page-counts-changelog")
        );
        let mermaid = description.to_mermaid();
        let lines: Vec<&str> = mermaid.lines().collect();
        assert_eq!(lines[0], "flowchart TD");
        let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("  subgraph sub"), 2, "{mermaid}");
        assert_eq!(count("  end"), 2, "{mermaid}");
        for line in [
            // User topics are stadiums, at the edges of the graph.
            "  topic_clicks([\"clicks\"]) --> KSTREAM_SOURCE_0000000000",
            "  KSTREAM_SINK_0000000003 --> topic_page_counts_out([\"page-counts-out\"])",
            // The repartition topic is a hexagon written by sub-topology 0 and read by 1.
            "  by_page_repartition_sink --> topic_by_page_repartition{{\"by-page-repartition\"}}",
            "  topic_by_page_repartition{{\"by-page-repartition\"}} --> by_page_repartition_source",
            "  class topic_by_page_repartition repartition",
            // The store hangs off the processor that uses it, and mirrors to its changelog.
            "  store_page_counts -.-> changelog_page_counts_changelog[/\"page-counts-changelog\"/]",
            "  class store_page_counts store",
            "  class changelog_page_counts_changelog changelog",
        ] {
            assert!(lines.contains(&line), "{line:?} missing from\n{mermaid}");
        }
        let store_edges: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains("--- store_page_counts[(\"page-counts\")]"))
            .collect();
        assert_eq!(store_edges.len(), 1, "{mermaid}");
        // Sub-topology 0 holds the source, sub-topology 1 the count: the store is not in 0.
        let sub1 = mermaid.find("subgraph sub1").unwrap();
        let store_node = store_edges[0].split(" --- ").next().unwrap().trim();
        assert!(
            mermaid[sub1..].contains(&format!("    {store_node}[")),
            "{mermaid}"
        );
        assert_eq!(mermaid, page_counts().describe().to_mermaid(), "stable");
    }
}
