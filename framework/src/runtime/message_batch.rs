//! [`MessageBatch`]: many messages from a consumer's queue in one librdkafka call.
//!
//! `BaseConsumer::poll` hands out one message per call, and each call takes the queue's lock
//! and reads the clock. For bulk reads (restoring a store from its changelog) one
//! `rd_kafka_consume_batch_queue` call per few thousand messages costs far less, and the
//! messages' keys and values can be read in place instead of being copied out first.
//!
//! Only for consumers without group subscription callbacks of interest: the batch call
//! serves other events of the queue (such as errors) through the client's own callbacks.

use std::marker::PhantomData;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;

/// A consumer's message queue, valid while the consumer lives.
pub(crate) struct ConsumerQueue<'a> {
    queue: *mut rd::rd_kafka_queue_t,
    _consumer: PhantomData<&'a ()>,
}

impl<'a> ConsumerQueue<'a> {
    /// The queue `consumer`'s messages arrive on.
    pub fn of<C: ConsumerContext>(consumer: &'a BaseConsumer<C>) -> Self {
        // SAFETY: the client pointer is valid while `consumer` lives, which the lifetime
        // ties this queue to; the returned handle is released in `drop`.
        let queue = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        ConsumerQueue {
            queue,
            _consumer: PhantomData,
        }
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

/// Up to `capacity` messages taken from a queue in one call; released when refilled or
/// dropped.
pub(crate) struct MessageBatch {
    messages: Vec<*mut rd::rd_kafka_message_t>,
    capacity: usize,
}

impl MessageBatch {
    /// An empty batch that takes at most `capacity` messages at a time.
    pub fn new(capacity: usize) -> Self {
        MessageBatch {
            messages: Vec::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Releases the current messages and takes the next ones, waiting up to `timeout` for the
    /// first; returns how many it took.
    pub fn fill(&mut self, queue: &ConsumerQueue<'_>, timeout: Duration) -> usize {
        self.release();
        if queue.queue.is_null() {
            return 0;
        }
        self.messages.resize(self.capacity, std::ptr::null_mut());
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the queue handle is valid (see `ConsumerQueue`); librdkafka writes at most
        // `capacity` message pointers into the buffer, each owned by us until destroyed.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                queue.queue,
                timeout_ms,
                self.messages.as_mut_ptr(),
                self.capacity,
            )
        };
        self.messages.truncate(n.max(0) as usize);
        self.messages.len()
    }

    /// The messages taken by the last [`fill`](Self::fill).
    pub fn iter(&self) -> impl Iterator<Item = BatchMessage<'_>> {
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
    pub fn error(&self) -> Option<RDKafkaRespErr> {
        (self.message.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR).then_some(self.message.err)
    }

    /// The message's topic (`None` only if librdkafka gave no topic or a name that is not
    /// UTF-8).
    pub fn topic(&self) -> Option<&'a str> {
        if self.message.rkt.is_null() {
            return None;
        }
        // SAFETY: the topic handle lives at least as long as its message, and its name is a
        // NUL-terminated string owned by the handle.
        let name = unsafe { std::ffi::CStr::from_ptr(rd::rd_kafka_topic_name(self.message.rkt)) };
        name.to_str().ok()
    }

    pub fn partition(&self) -> i32 {
        self.message.partition
    }

    pub fn offset(&self) -> i64 {
        self.message.offset
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        bytes(self.message.key, self.message.key_len)
    }

    pub fn payload(&self) -> Option<&'a [u8]> {
        bytes(self.message.payload, self.message.len)
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
