//! Which instance of the application owns which partition, for the key → instance lookup of
//! interactive queries.
//!
//! Each stream thread's consumer publishes its instance's `application_server` (host:port of
//! the application's own query endpoint) in its client id, after a `@`. The group's members,
//! their client ids and their assignments come from the broker (DescribeGroups). If tasks
//! are ever assigned otherwise than by the consumer group's assignor, only
//! [`owner_of`] has to change.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::StreamsError;

/// The separator between a consumer's client id and its instance's server.
const SERVER_SEPARATOR: char = '@';

/// The client id of a stream thread's consumer, carrying the instance's server if any.
pub(crate) fn consumer_client_id(base: &str, application_server: Option<&str>) -> String {
    match application_server {
        Some(server) => format!("{base}{SERVER_SEPARATOR}{server}"),
        None => base.to_string(),
    }
}

/// One consumer of the application's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub client_id: String,
    /// The `application_server` its instance published; `None` when not configured.
    pub server: Option<String>,
    /// Its assigned (topic, partition)s.
    pub assignment: Vec<(String, i32)>,
}

/// The members of consumer group `group` as the broker describes them now.
pub(crate) fn members(
    bootstrap_servers: &str,
    group: &str,
    timeout: Duration,
) -> Result<Vec<Member>, StreamsError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()?;
    let list = consumer
        .fetch_group_list(Some(group), timeout)
        .map_err(|e| StreamsError::Kafka(format!("cannot describe consumer group {group}: {e}")))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| Member {
            client_id: m.client_id().to_string(),
            server: m
                .client_id()
                .rsplit_once(SERVER_SEPARATOR)
                .map(|(_, server)| server.to_string())
                .filter(|s| !s.is_empty()),
            assignment: m.assignment().map(parse_assignment).unwrap_or_default(),
        })
        .collect())
}

/// The member whose assignment holds `topic`-`partition`.
pub(crate) fn owner_of<'a>(
    members: &'a [Member],
    topic: &str,
    partition: i32,
) -> Option<&'a Member> {
    members.iter().find(|m| {
        m.assignment
            .iter()
            .any(|(t, p)| t == topic && *p == partition)
    })
}

/// Topic partitions of a consumer protocol assignment (`version: i16`, then
/// `[topic: string, [partition: i32]]`, then user data we do not need). Malformed input
/// yields what could be read.
fn parse_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut r = Reader(bytes);
    let read = (|| -> Option<()> {
        r.i16()?;
        for _ in 0..r.i32()? {
            let len = usize::try_from(r.i16()?).ok()?;
            let topic = String::from_utf8(r.take(len)?.to_vec()).ok()?;
            for _ in 0..r.i32()? {
                out.push((topic.clone(), r.i32()?));
            }
        }
        Some(())
    })();
    if read.is_none() {
        tracing::debug!("a group member's assignment could not be parsed completely");
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 1_i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            out.extend((topic.len() as i16).to_be_bytes());
            out.extend(topic.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1_i32).to_be_bytes()); // null user data
        out
    }

    #[test]
    fn assignments_parse_and_name_the_owner() {
        let a = parse_assignment(&assignment(&[("in", &[0, 2]), ("app-x-repartition", &[1])]));
        assert_eq!(
            a,
            vec![
                ("in".to_string(), 0),
                ("in".to_string(), 2),
                ("app-x-repartition".to_string(), 1)
            ]
        );
        let members = vec![
            Member {
                client_id: consumer_client_id("app-StreamThread-1-consumer", Some("h1:8080")),
                server: Some("h1:8080".into()),
                assignment: a,
            },
            Member {
                client_id: "app-StreamThread-1-consumer".into(),
                server: None,
                assignment: vec![("in".to_string(), 1)],
            },
        ];
        assert_eq!(members[0].client_id, "app-StreamThread-1-consumer@h1:8080");
        assert_eq!(
            owner_of(&members, "in", 2).unwrap().server.as_deref(),
            Some("h1:8080")
        );
        assert_eq!(owner_of(&members, "in", 1).unwrap().server, None);
        assert!(owner_of(&members, "in", 3).is_none());
    }

    #[test]
    fn truncated_assignments_yield_what_was_read() {
        let mut bytes = assignment(&[("in", &[0, 1])]);
        bytes.truncate(bytes.len() - 8); // cut the second partition and the user data
        assert_eq!(parse_assignment(&bytes), vec![("in".to_string(), 0)]);
        assert!(parse_assignment(&[]).is_empty());
    }
}
