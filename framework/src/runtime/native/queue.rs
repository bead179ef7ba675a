//! [`MessageBatch`]: many messages from a consumer's queue in one librdkafka call.
//!
//! `BaseConsumer::poll` hands out one message per call, and each call takes the queue's lock
//! and reads the clock. For bulk reads (restoring a store from its changelog) one
//! `rd_kafka_consume_batch_queue` call per few thousand messages costs far less, and the
//! messages' keys and values can be read in place instead of being copied out first.
//!
//! Only for queues without group rebalance events: the batch call serves other events of the
//! queue (such as errors) through the client's own callbacks. A restore consumer's queue and a
//! partition's own fetch queue qualify; a group consumer's main queue does not.

use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;

use crate::record::Headers;

/// A librdkafka queue handle messages can be taken from in batches.
pub(crate) trait MessageQueue {
    fn native(&self) -> *mut rd::rd_kafka_queue_t;
}

/// A consumer's message queue, valid while the consumer lives.
pub(crate) struct ConsumerQueue<'a> {
    queue: *mut rd::rd_kafka_queue_t,
    _consumer: PhantomData<&'a ()>,
}

impl<'a> ConsumerQueue<'a> {
    /// The queue `consumer`'s messages arrive on.
    pub(crate) fn of<C: ConsumerContext>(consumer: &'a BaseConsumer<C>) -> Self {
        // SAFETY: the client pointer is valid while `consumer` lives, which the lifetime
        // ties this queue to; the returned handle is released in `drop`.
        let queue = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        ConsumerQueue {
            queue,
            _consumer: PhantomData,
        }
    }
}

impl MessageQueue for ConsumerQueue<'_> {
    fn native(&self) -> *mut rd::rd_kafka_queue_t {
        self.queue
    }
}

impl Drop for ConsumerQueue<'_> {
    fn drop(&mut self) {
        if !self.queue.is_null() {
            // SAFETY: obtained from `rd_kafka_queue_get_consumer` and released once.
            unsafe { rd::rd_kafka_queue_destroy(self.queue) }
        }
    }
}

/// A partition's own fetch queue, split off its consumer's queue (as rdkafka's
/// `split_partition_queue`), so its messages can be read in batches.
pub(crate) struct PartitionFetchQueue<C: ConsumerContext + 'static> {
    queue: *mut rd::rd_kafka_queue_t,
    // The queue must not outlive its client.
    _consumer: Arc<BaseConsumer<C>>,
}

// SAFETY: librdkafka queue handles may be used and destroyed from any thread.
unsafe impl<C: ConsumerContext + 'static> Send for PartitionFetchQueue<C> {}

impl<C: ConsumerContext + 'static> PartitionFetchQueue<C> {
    /// Splits `topic`-`partition`'s messages off `consumer`'s queue; `None` if the partition is
    /// unknown to the consumer.
    pub(crate) fn split(
        consumer: &Arc<BaseConsumer<C>>,
        topic: &str,
        partition: i32,
    ) -> Option<Self> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: the client pointer is valid while `consumer` lives, and the queue keeps it.
        let queue = unsafe {
            rd::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
            )
        };
        if queue.is_null() {
            return None;
        }
        // SAFETY: a valid queue handle; forwarding to nothing keeps its messages here.
        unsafe { rd::rd_kafka_queue_forward(queue, std::ptr::null_mut()) };
        Some(PartitionFetchQueue {
            queue,
            _consumer: consumer.clone(),
        })
    }
}

impl<C: ConsumerContext + 'static> MessageQueue for PartitionFetchQueue<C> {
    fn native(&self) -> *mut rd::rd_kafka_queue_t {
        self.queue
    }
}

impl<C: ConsumerContext + 'static> Drop for PartitionFetchQueue<C> {
    fn drop(&mut self) {
        // SAFETY: obtained from `rd_kafka_queue_get_partition` and released once.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) }
    }
}

/// Up to `capacity` messages taken from a queue in one call; released when refilled or
/// dropped.
pub(crate) struct MessageBatch {
    messages: Vec<*mut rd::rd_kafka_message_t>,
    capacity: usize,
}

impl MessageBatch {
    /// An empty batch that takes at most `capacity` messages at a time.
    pub(crate) fn new(capacity: usize) -> Self {
        MessageBatch {
            messages: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Releases the current messages and takes the next ones, waiting up to `timeout` for the
    /// first; returns how many it took.
    pub(crate) fn fill(&mut self, queue: &impl MessageQueue, timeout: Duration) -> usize {
        self.release();
        let queue = queue.native();
        if queue.is_null() {
            return 0;
        }
        self.messages.resize(self.capacity, std::ptr::null_mut());
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the queue handle is valid (see `ConsumerQueue`); librdkafka writes at most
        // `capacity` message pointers into the buffer, each owned by us until destroyed.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                queue,
                timeout_ms,
                self.messages.as_mut_ptr(),
                self.capacity,
            )
        };
        self.messages.truncate(n.max(0) as usize);
        self.messages.len()
    }

    /// The messages taken by the last [`fill`](Self::fill).
    pub(crate) fn iter(&self) -> impl Iterator<Item = BatchMessage<'_>> {
        self.messages.iter().map(|&m| BatchMessage {
            // SAFETY: every pointer kept is a live message until `release`, which needs
            // `&mut self` and so cannot run while these borrows exist.
            message: unsafe { &*m },
        })
    }

    fn release(&mut self) {
        for m in self.messages.drain(..) {
            if !m.is_null() {
                // SAFETY: each message is destroyed exactly once, here.
                unsafe { rd::rd_kafka_message_destroy(m) }
            }
        }
    }
}

impl Drop for MessageBatch {
    fn drop(&mut self) {
        self.release();
    }
}

/// One message of a [`MessageBatch`], read in place.
pub(crate) struct BatchMessage<'a> {
    message: &'a rd::rd_kafka_message_t,
}

impl<'a> BatchMessage<'a> {
    /// The error the message carries instead of data (such as reaching a partition's end).
    pub(crate) fn error(&self) -> Option<RDKafkaRespErr> {
        (self.message.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR).then_some(self.message.err)
    }

    /// The message's topic (`None` only if librdkafka gave no topic or a name that is not
    /// UTF-8).
    pub(crate) fn topic(&self) -> Option<&'a str> {
        if self.message.rkt.is_null() {
            return None;
        }
        // SAFETY: the topic handle lives at least as long as its message, and its name is a
        // NUL-terminated string owned by the handle.
        let name = unsafe { std::ffi::CStr::from_ptr(rd::rd_kafka_topic_name(self.message.rkt)) };
        name.to_str().ok()
    }

    pub(crate) fn partition(&self) -> i32 {
        self.message.partition
    }

    pub(crate) fn offset(&self) -> i64 {
        self.message.offset
    }

    pub(crate) fn key(&self) -> Option<&'a [u8]> {
        bytes(self.message.key, self.message.key_len)
    }

    pub(crate) fn payload(&self) -> Option<&'a [u8]> {
        bytes(self.message.payload, self.message.len)
    }

    pub(crate) fn timestamp(&self) -> rdkafka::Timestamp {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message; librdkafka writes the type through the pointer.
        let ts = unsafe { rd::rd_kafka_message_timestamp(self.message, &mut kind) };
        match kind {
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => {
                rdkafka::Timestamp::CreateTime(ts)
            }
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => {
                rdkafka::Timestamp::LogAppendTime(ts)
            }
            _ => rdkafka::Timestamp::NotAvailable,
        }
    }

    /// The message's headers, copied (none: empty).
    pub(crate) fn headers(&self) -> Headers {
        let mut headers = Headers::new();
        let mut native = std::ptr::null_mut();
        // SAFETY: a live message; the headers it hands out live as long as the message.
        let err = unsafe { rd::rd_kafka_message_headers(self.message, &mut native) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || native.is_null() {
            return headers;
        }
        for idx in 0.. {
            let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
            // SAFETY: valid headers; librdkafka writes pointers into them for index `idx`.
            let err = unsafe {
                rd::rd_kafka_header_get_all(native, idx, &mut name, &mut value, &mut size)
            };
            if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                break;
            }
            // SAFETY: header names are NUL-terminated and values `size` bytes long.
            let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
            let value = bytes(value.cast_mut(), size).map(<[u8]>::to_vec);
            headers.push(name.into_owned(), value);
        }
        headers
    }
}

fn bytes<'a>(ptr: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: librdkafka guarantees `len` readable bytes at `ptr` for the message's lifetime,
    // which outlives `'a` (see `MessageBatch::iter`).
    Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}
