//! Client calls rust-rdkafka does not wrap: a consumer's member id and its cached
//! watermarks.

use std::ffi::CString;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

/// This consumer's member id in its group; `None` before it joined.
pub(crate) fn member_id<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<String> {
    // SAFETY: the client pointer is valid while `consumer` lives; the returned string is
    // owned by us and freed with the matching librdkafka function after copying it.
    unsafe {
        let rk = consumer.client().native_ptr();
        let ptr = rdkafka::bindings::rd_kafka_memberid(rk);
        if ptr.is_null() {
            return None;
        }
        let id = std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(rk, ptr.cast());
        (!id.is_empty()).then_some(id)
    }
}

/// The low and high watermarks of `topic`-`partition` as librdkafka last heard them from a
/// fetch response (no network call); `None` until one told it.
pub(crate) fn cached_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = CString::new(topic.as_bytes()).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client pointer is valid while `consumer` lives, the topic is a valid C
    // string, and the out-pointers are valid for the call; the function only reads the
    // client's cached state.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        || high < 0
        || low < 0
    {
        return None;
    }
    Some((low, high))
}
