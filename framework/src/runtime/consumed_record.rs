//! Consumed records as tasks take them: a [`RawRecord`] built from what librdkafka handed
//! over, for the readers of the consumer's queue and of the partition queues alike.

use std::sync::Arc;

use rdkafka::message::{Headers as _, Message};

use crate::record::{Headers, RawRecord, TimestampType};

/// A consumed record, its key and value copied out of librdkafka; a timestamp the record
/// does not have is `-1`.
pub(crate) fn raw_record(
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: rdkafka::Timestamp,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Headers,
) -> RawRecord {
    let (timestamp, timestamp_type) = match timestamp {
        rdkafka::Timestamp::NotAvailable => (-1, TimestampType::NotAvailable),
        rdkafka::Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
        rdkafka::Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
    };
    RawRecord {
        topic,
        partition,
        offset,
        timestamp,
        timestamp_type,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers,
    }
}

/// A record polled from the consumer's own queue. `topic` keeps the last topic name, which
/// nearly every next record shares: one `Arc` for them all instead of an allocation per
/// record.
pub(crate) fn to_raw<M: Message>(message: &M, topic: &mut Option<Arc<str>>) -> RawRecord {
    let name = message.topic();
    let topic = match topic {
        Some(t) if &**t == name => t.clone(),
        _ => topic.insert(Arc::from(name)).clone(),
    };
    let headers = message
        .headers()
        .map(|hs| {
            let mut headers = Headers::new();
            for h in hs.iter() {
                headers.push(h.key, h.value.map(<[u8]>::to_vec));
            }
            headers
        })
        .unwrap_or_default();
    raw_record(
        topic,
        message.partition(),
        message.offset(),
        message.timestamp(),
        message.key(),
        message.payload(),
        headers,
    )
}
