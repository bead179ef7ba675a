//! The partitions the group leader gave a member, as the broker reports them in a group
//! description (the consumer protocol's assignment bytes).
//!
//! A member computes its tasks from the group's member list, which it reads in its assignment
//! callback. That list must be the one of the generation the member has just joined: a list
//! from another generation (the broker can answer a description from slightly older state)
//! would make members compute different assignments, leaving tasks with two owners or none.
//! The leader's own assignment for this member identifies the generation: when the broker
//! reports the same partitions the callback was given, the list is the current one.

use std::collections::BTreeSet;
use std::sync::Arc;

use rdkafka::TopicPartitionList;

use crate::task::TopicPartition;

/// A set of topic partitions, compared independently of order.
pub(crate) type PartitionSet = BTreeSet<TopicPartition>;

/// The partitions of `tpl`.
pub(crate) fn partition_set(tpl: &TopicPartitionList) -> PartitionSet {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

/// Decodes a consumer-protocol assignment: version (i16), then topics (i32 count; each a name
/// as i16 length + bytes and partitions as i32 count + i32s); user data follows and is
/// ignored. `None` when the bytes are not such an assignment.
pub(crate) fn parse_assignment(bytes: &[u8]) -> Option<PartitionSet> {
    let mut reader = Reader(bytes);
    let _version = reader.i16()?;
    let topics = reader.i32()?;
    let mut set = PartitionSet::new();
    for _ in 0..topics.max(0) {
        let len = usize::try_from(reader.i16()?).ok()?;
        let name: Arc<str> = Arc::from(std::str::from_utf8(reader.take(len)?).ok()?);
        let partitions = reader.i32()?;
        for _ in 0..partitions.max(0) {
            set.insert(TopicPartition::new(name.clone(), reader.i32()?));
        }
    }
    Some(set)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
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

    fn encode(topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut out = 1_i16.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend((name.len() as i16).to_be_bytes());
            out.extend(name.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((user_data.len() as i32).to_be_bytes());
        out.extend(user_data);
        out
    }

    #[test]
    fn decodes_topics_and_partitions_ignoring_user_data() {
        let bytes = encode(&[("in", &[0, 3]), ("other", &[1])], b"xyz");
        let want: PartitionSet = [("in", 0), ("in", 3), ("other", 1)]
            .into_iter()
            .map(|(t, p)| TopicPartition::new(t, p))
            .collect();
        assert_eq!(parse_assignment(&bytes), Some(want));
        assert_eq!(
            parse_assignment(&encode(&[], b"")),
            Some(PartitionSet::new())
        );
    }

    #[test]
    fn truncated_bytes_are_not_an_assignment() {
        let bytes = encode(&[("in", &[0, 3])], b"");
        for cut in [1, 5, 8, bytes.len() - 6] {
            assert_eq!(parse_assignment(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse_assignment(&[]), None);
    }

    #[test]
    fn partition_set_of_a_list() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("b", 2);
        tpl.add_partition("a", 1);
        let set = partition_set(&tpl);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec![TopicPartition::new("a", 1), TopicPartition::new("b", 2)]
        );
    }
}
