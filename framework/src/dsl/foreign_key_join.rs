//! Foreign-key table–table joins ([`KTable::join_foreign_key`],
//! [`KTable::left_join_foreign_key`]; Kafka Streams' KIP-213): each row of the left table
//! joins the row of the right table whose key its value names, whatever the two tables'
//! keys and partition counts.
//!
//! The design is Kafka Streams' subscription and response. A left row *subscribes* to its
//! foreign key: a record keyed by the foreign key, carrying the left key, an instruction and
//! a 128-bit hash of the left value, goes through `<app>-<name>-subscription-repartition`
//! to the task holding that key of the right table, which keeps the subscriptions (store
//! `<name>-subscriptions`). That task *responds* — on the subscription, and on every later
//! change of the right row, to every subscriber — with the right value and the hash it
//! answers, keyed by the left key, through `<app>-<name>-subscription-response-repartition`.
//! The left side joins a response only if its hash is the hash of the left row's current
//! value: a response to a value the row no longer has (its foreign key moved on, it was
//! deleted, responses crossed) is dropped, so out-of-order responses never leave a stale
//! result. The left side keeps each row's foreign key (store `<name>-foreign-keys`) to
//! unsubscribe when it changes.
//!
//! Deletions (`None` changes) are forwarded only for results that existed, as for the other
//! table joins; Kafka Streams can also forward a tombstone for a key that had no result.
//!
//! ```
//! use streamtime::{Consumed, Materialized, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{OptionSerde, StringSerde};
//!
//! // orders: order id -> customer id; customers: customer id -> name
//! let builder = StreamsBuilder::new();
//! let orders = builder.table("orders", Consumed::with(StringSerde, StringSerde), Materialized::as_("orders"));
//! let customers = builder.table("customers", Consumed::with(StringSerde, StringSerde), Materialized::as_("customers"));
//! orders
//!     .join_foreign_key(&customers, |customer: &String| customer.clone(), |order: &String, name: &String| format!("{order} for {name}"),
//!         Materialized::as_("orders-with-names").with_value_serde(StringSerde))
//!     .to_change_stream()
//!     .to("named-orders", Produced::with(StringSerde, OptionSerde(StringSerde)));
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! driver.input_topic("orders", StringSerde, StringSerde).pipe("o1".into(), "c1".into(), 1).unwrap();
//! driver.input_topic("customers", StringSerde, StringSerde).pipe("c1".into(), "Ann".into(), 2).unwrap();
//! let out = driver.output_topic("named-orders", StringSerde, OptionSerde(StringSerde)).read_key_values();
//! assert_eq!(out, [("o1".to_string(), Some("c1 for Ann".to_string()))]);
//! ```

use std::sync::Arc;

use super::cached_forwarder::CachedForwarder;
use super::join::require_copartitioned;
use super::options::{Materialized, Repartitioned};
use super::table::{update_joined, updates_of, KTable};
use crate::error::StreamsError;
use crate::processor::{Processor, ProcessorContext};
use crate::record::Record;
use crate::serdes::{BytesSerde, Serde, SerdeError, TimestampedSerde};
use crate::stores::{KeyValueStoreHandle, Stores};
use crate::ProcessResult;

/// What the right side does with a subscription (Kafka Streams' `SubscriptionWrapper`
/// instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Instruction {
    /// Unsubscribe, say nothing (the row subscribed to another key).
    DeleteNoPropagate = 0,
    /// Unsubscribe and answer with no value (the row was deleted).
    DeleteAndPropagate = 1,
    /// Subscribe and answer, with no value if the right row is missing (a left join, or a
    /// changed row whose earlier result must go).
    PropagateNullIfNoFk = 2,
    /// Subscribe and answer only if the right row exists (a new row of an inner join).
    PropagateOnlyIfFk = 3,
}

/// A 128-bit hash of a left value's bytes (FNV-1a): stable across processes and versions,
/// which the hashes kept in the subscription store and in flight on the topics need.
/// Rejected: the standard library's hasher, whose output may change between Rust releases.
fn value_hash(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// A left row's subscription to its foreign key.
#[derive(Clone)]
struct Subscription<K> {
    instruction: Instruction,
    /// The hash of the left value (none for a deleted row).
    hash: Option<u128>,
    key: K,
}

/// The right side's answer to a subscriber.
#[derive(Clone)]
struct Response<VO> {
    /// The hash of the left value this answers.
    hash: Option<u128>,
    value: Option<VO>,
}

fn put_hash(hash: Option<u128>, out: &mut Vec<u8>) {
    match hash {
        Some(h) => {
            out.push(1);
            out.extend_from_slice(&h.to_be_bytes());
        }
        None => out.push(0),
    }
}

fn take_hash(bytes: &[u8]) -> Result<(Option<u128>, &[u8]), SerdeError> {
    match bytes.split_first() {
        Some((0, rest)) => Ok((None, rest)),
        Some((1, rest)) if rest.len() >= 16 => {
            let h = u128::from_be_bytes(rest[..16].try_into().expect("16 bytes"));
            Ok((Some(h), &rest[16..]))
        }
        _ => Err(SerdeError::new(
            "foreign-key join record with a malformed hash",
        )),
    }
}

/// A [`Subscription`] on the topic: the instruction byte, the hash (a presence byte, then 16
/// bytes big-endian) and the left key's bytes.
struct SubscriptionSerde<K>(Arc<dyn Serde<K>>);

impl<K: 'static> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(&self, s: &Subscription<K>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.push(s.instruction as u8);
        put_hash(s.hash, out);
        self.0.serialize(&s.key, out)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Subscription<K>, SerdeError> {
        let (&instruction, rest) = bytes
            .split_first()
            .ok_or_else(|| SerdeError::new("empty foreign-key subscription"))?;
        let instruction = match instruction {
            0 => Instruction::DeleteNoPropagate,
            1 => Instruction::DeleteAndPropagate,
            2 => Instruction::PropagateNullIfNoFk,
            3 => Instruction::PropagateOnlyIfFk,
            i => {
                return Err(SerdeError::new(format!(
                    "unknown subscription instruction {i}"
                )))
            }
        };
        let (hash, key) = take_hash(rest)?;
        Ok(Subscription {
            instruction,
            hash,
            key: self.0.deserialize(key)?,
        })
    }
}

/// A [`Response`] on the topic: the hash, a presence byte for the value, the value's bytes.
struct ResponseSerde<VO>(Arc<dyn Serde<VO>>);

impl<VO: 'static> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(&self, r: &Response<VO>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        put_hash(r.hash, out);
        match &r.value {
            Some(v) => {
                out.push(1);
                self.0.serialize(v, out)
            }
            None => {
                out.push(0);
                Ok(())
            }
        }
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Response<VO>, SerdeError> {
        let (hash, rest) = take_hash(bytes)?;
        let value = match rest.split_first() {
            Some((0, _)) => None,
            Some((1, v)) => Some(self.0.deserialize(v)?),
            _ => {
                return Err(SerdeError::new(
                    "foreign-key response with a malformed value",
                ))
            }
        };
        Ok(Response { hash, value })
    }
}

/// `bytes` of `value`, or a processing error naming `what`.
fn bytes_of<T: 'static>(
    serde: &dyn Serde<T>,
    value: &T,
    what: &str,
) -> Result<Vec<u8>, StreamsError> {
    let mut out = Vec::new();
    serde
        .serialize(value, &mut out)
        .map_err(|e| StreamsError::Serde {
            context: what.to_string(),
            message: e.0,
        })?;
    Ok(out)
}

/// The subscription store's key: the foreign key's length (4 bytes big-endian) and bytes,
/// then the left key's bytes, so that one foreign key's subscribers are one key range.
fn subscription_key(foreign: &[u8], left: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + foreign.len() + left.len());
    key.extend_from_slice(&(foreign.len() as u32).to_be_bytes());
    key.extend_from_slice(foreign);
    key.extend_from_slice(left);
    key
}

/// A foreign-key join reduced to one function: `None` when the left row has no result.
type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// Inner foreign-key join with `other`: each row of this table whose value names, by
    /// `foreign_key(value)`, a key `other` has gets `joiner(value, other_value)`; the result
    /// follows updates and deletions on both sides and changes of the foreign key. The result
    /// is a table keyed like this one, kept in the store `materialized` names, which must
    /// give the result's value serde. The tables need not be co-partitioned.
    pub fn join_foreign_key<KO, VO, VR>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + PartialEq + 'static,
        VO: Clone + 'static,
        VR: Clone + 'static,
    {
        self.foreign_key_join(
            other,
            Arc::new(foreign_key),
            Arc::new(move |v: &V, vo: Option<&VO>| vo.map(|vo| joiner(v, vo))),
            false,
            materialized,
        )
    }

    /// Left foreign-key join with `other`: every row of this table has a result,
    /// `joiner(value, None)` while `other` lacks the row its foreign key names.
    pub fn left_join_foreign_key<KO, VO, VR>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + PartialEq + 'static,
        VO: Clone + 'static,
        VR: Clone + 'static,
    {
        self.foreign_key_join(
            other,
            Arc::new(foreign_key),
            Arc::new(move |v: &V, vo: Option<&VO>| Some(joiner(v, vo))),
            true,
            materialized,
        )
    }

    fn foreign_key_join<KO, VO, VR>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: Arc<dyn Fn(&V) -> KO + Send + Sync>,
        joiner: FkJoiner<V, VO, VR>,
        left_join: bool,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + PartialEq + 'static,
        VO: Clone + 'static,
        VR: Clone + 'static,
    {
        let state = self.stream.state().clone();
        let base = materialized
            .name
            .clone()
            .unwrap_or_else(|| state.borrow_mut().next_name("KTABLE-FK-JOIN"));
        let failed = |e: StreamsError| {
            state.borrow_mut().record_error(e);
            KTable {
                stream: self.stream.derive(None, None, None, false),
                store: base.clone(),
            }
        };
        let what = format!("foreign-key join into {base}");
        let serdes = (|| {
            let (k, v) = self.serdes(&what)?;
            let (ko, vo) = other.serdes(&what)?;
            self.check_lookup(&what)?;
            other.check_lookup(&what)?;
            let vr = materialized.value_serde.clone().ok_or_else(|| {
                StreamsError::Topology(format!(
                    "{what}: the joined value's serde is unknown; pass it with \
                     Materialized::with_value_serde"
                ))
            })?;
            Ok::<_, StreamsError>((k, v, ko, vo, vr))
        })();
        let (k_serde, v_serde, ko_serde, vo_serde, vr_serde) = match serdes {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let foreign_keys = format!("{base}-foreign-keys");
        let subscriptions = format!("{base}-subscriptions");
        let result_spec =
            materialized.configure(Stores::key_value(&base).with_timestamped_values());
        for spec in [
            Stores::key_value(&foreign_keys),
            Stores::key_value(&subscriptions),
            result_spec,
        ] {
            let registered = state.borrow_mut().topology.register_store(spec);
            if let Err(e) = registered {
                return failed(e);
            }
        }

        // Left side: each change of a row subscribes to its foreign key (and unsubscribes
        // from the one it had).
        let left_changes = self.to_change_stream();
        let send = {
            let (store, ks, kos, vs) = (
                foreign_keys.clone(),
                k_serde.clone(),
                ko_serde.clone(),
                v_serde.clone(),
            );
            let fk = foreign_key.clone();
            left_changes.add_processor(
                "KTABLE-FK-JOIN-SUBSCRIPTION-SEND",
                &[],
                vec![foreign_keys.clone()],
                move || SubscriptionSend {
                    store_name: store.clone(),
                    key_serde: ks.clone(),
                    foreign_key_serde: kos.clone(),
                    value_serde: vs.clone(),
                    foreign_key: fk.clone(),
                    left_join,
                    store: None,
                },
            )
        };
        let subscription_serde: Arc<dyn Serde<Subscription<K>>> =
            Arc::new(SubscriptionSerde(k_serde.clone()));
        let mut options = Repartitioned::as_(format!("{base}-subscription"));
        options.key_serde = Some(ko_serde.clone());
        options.value_serde = Some(subscription_serde.clone());
        let registrations = left_changes
            .derive::<KO, Subscription<K>>(
                send,
                Some(ko_serde.clone()),
                Some(subscription_serde),
                true,
            )
            .repartition(options);

        // Right side: subscriptions are kept and answered; a change of a right row answers
        // all of its subscribers.
        let response_serde: Arc<dyn Serde<Response<VO>>> =
            Arc::new(ResponseSerde(vo_serde.clone()));
        let receive = {
            let (subs, right, kos, ks, vos) = (
                subscriptions.clone(),
                other.store.clone(),
                ko_serde.clone(),
                k_serde.clone(),
                vo_serde.clone(),
            );
            registrations.add_processor(
                "KTABLE-FK-JOIN-SUBSCRIPTION-RECEIVE",
                &[],
                vec![subscriptions.clone(), other.store.clone()],
                move || SubscriptionReceive {
                    subscriptions_name: subs.clone(),
                    right_name: right.clone(),
                    foreign_key_serde: kos.clone(),
                    key_serde: ks.clone(),
                    right_serde: vos.clone(),
                    stores: None,
                },
            )
        };
        let right_changes = other.to_change_stream();
        let foreign = {
            let (subs, kos, ks) = (subscriptions.clone(), ko_serde.clone(), k_serde.clone());
            right_changes.add_processor(
                "KTABLE-FK-JOIN-FOREIGN-CHANGE",
                &[],
                vec![subscriptions.clone()],
                move || ForeignChange {
                    subscriptions_name: subs.clone(),
                    foreign_key_serde: kos.clone(),
                    key_serde: ks.clone(),
                    store: None,
                },
            )
        };
        let (Some(registration_node), Some(right_node)) =
            (registrations.node(), other.stream.node())
        else {
            return failed(StreamsError::Topology(format!(
                "{what}: an input failed to build"
            )));
        };
        require_copartitioned(&state, registration_node, right_node);
        let answers = registrations.derive::<K, Response<VO>>(
            receive,
            Some(k_serde.clone()),
            Some(response_serde.clone()),
            false,
        );
        let updates = right_changes.derive::<K, Response<VO>>(
            foreign,
            Some(k_serde.clone()),
            Some(response_serde.clone()),
            false,
        );
        let mut options = Repartitioned::as_(format!("{base}-subscription-response"));
        options.key_serde = Some(k_serde.clone());
        options.value_serde = Some(response_serde);
        let responses = answers.merge(&updates).repartition(options);

        // Left side again: a response for the row's current value is joined.
        let (Some(response_node), Some(left_node)) = (responses.node(), self.stream.node()) else {
            return failed(StreamsError::Topology(format!(
                "{what}: an input failed to build"
            )));
        };
        require_copartitioned(&state, response_node, left_node);
        let join = {
            let (left, result, ks, vs, vrs) = (
                self.store.clone(),
                base.clone(),
                k_serde.clone(),
                v_serde.clone(),
                vr_serde.clone(),
            );
            responses.add_processor(
                "KTABLE-FK-JOIN-RESPONSE",
                &[],
                vec![self.store.clone(), base.clone()],
                move || ResponseJoin {
                    left_name: left.clone(),
                    result_name: result.clone(),
                    key_serde: ks.clone(),
                    value_serde: vs.clone(),
                    result_serde: vrs.clone(),
                    joiner: joiner.clone(),
                    left_join,
                    stores: None,
                },
            )
        };
        let stream = updates_of(
            &responses,
            join,
            &base,
            materialized.key_serde.clone().unwrap_or(k_serde),
            vr_serde,
        );
        KTable {
            stream,
            store: base,
        }
    }
}

/// The subscription store: subscription keys (see [`subscription_key`]) to hashes.
type Subscriptions = KeyValueStoreHandle<Vec<u8>, Vec<u8>>;

/// A table's store: values with the timestamps of their last updates.
type Timestamped<K, V> = KeyValueStoreHandle<K, (V, i64)>;

/// Sends a left row's subscriptions, keeping its foreign key to unsubscribe later.
struct SubscriptionSend<K, V, KO> {
    store_name: String,
    key_serde: Arc<dyn Serde<K>>,
    foreign_key_serde: Arc<dyn Serde<KO>>,
    value_serde: Arc<dyn Serde<V>>,
    foreign_key: Arc<dyn Fn(&V) -> KO + Send + Sync>,
    left_join: bool,
    store: Option<KeyValueStoreHandle<K, KO>>,
}

impl<K, V, KO> Processor<K, Option<V>, KO, Subscription<K>> for SubscriptionSend<K, V, KO>
where
    K: Clone + 'static,
    V: Clone + 'static,
    KO: Clone + PartialEq + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<KO, Subscription<K>>) -> ProcessResult {
        self.store = Some(ctx.key_value_store(
            &self.store_name,
            self.key_serde.clone(),
            self.foreign_key_serde.clone(),
        )?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<KO, Subscription<K>>,
        record: Record<K, Option<V>>,
    ) -> ProcessResult {
        let store = self.store.as_ref().expect("init ran");
        let old = store.get(&record.key)?;
        let new = record.value.as_ref().map(|v| (self.foreign_key)(v));
        let hash = match &record.value {
            Some(v) => Some(value_hash(&bytes_of(
                &*self.value_serde,
                v,
                &self.store_name,
            )?)),
            None => None,
        };
        match &new {
            Some(fk) if old.as_ref() != Some(fk) => store.put(&record.key, fk)?,
            Some(_) => {}
            None if old.is_some() => store.delete(&record.key)?,
            None => {}
        }
        let (timestamp, headers) = (record.timestamp, record.headers);
        let key = record.key;
        let send = |ctx: &mut ProcessorContext<KO, Subscription<K>>, fk: KO, instruction| {
            ctx.forward(Record {
                key: fk,
                value: Subscription {
                    instruction,
                    hash,
                    key: key.clone(),
                },
                timestamp,
                headers: headers.clone(),
            })
        };
        match (old, new) {
            (Some(old), Some(new)) => {
                if old != new {
                    send(ctx, old, Instruction::DeleteNoPropagate)?;
                }
                // A changed row's earlier result must go if the new key has no row.
                send(ctx, new, Instruction::PropagateNullIfNoFk)
            }
            (Some(old), None) => send(ctx, old, Instruction::DeleteAndPropagate),
            (None, Some(new)) if self.left_join => send(ctx, new, Instruction::PropagateNullIfNoFk),
            (None, Some(new)) => send(ctx, new, Instruction::PropagateOnlyIfFk),
            (None, None) => Ok(()),
        }
    }
}

/// Keeps the subscriptions to this task's right rows and answers them.
struct SubscriptionReceive<K, KO, VO> {
    subscriptions_name: String,
    right_name: String,
    foreign_key_serde: Arc<dyn Serde<KO>>,
    key_serde: Arc<dyn Serde<K>>,
    right_serde: Arc<dyn Serde<VO>>,
    stores: Option<(Subscriptions, Timestamped<KO, VO>)>,
}

impl<K, KO, VO> Processor<KO, Subscription<K>, K, Response<VO>> for SubscriptionReceive<K, KO, VO>
where
    K: Clone + 'static,
    KO: Clone + 'static,
    VO: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Response<VO>>) -> ProcessResult {
        self.stores = Some((
            ctx.key_value_store(&self.subscriptions_name, BytesSerde, BytesSerde)?,
            ctx.key_value_store(
                &self.right_name,
                self.foreign_key_serde.clone(),
                TimestampedSerde(self.right_serde.clone()),
            )?,
        ));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Response<VO>>,
        record: Record<KO, Subscription<K>>,
    ) -> ProcessResult {
        let (subscriptions, right) = self.stores.as_ref().expect("init ran");
        let Subscription {
            instruction,
            hash,
            key,
        } = record.value;
        let stored = subscription_key(
            &bytes_of(
                &*self.foreign_key_serde,
                &record.key,
                &self.subscriptions_name,
            )?,
            &bytes_of(&*self.key_serde, &key, &self.subscriptions_name)?,
        );
        let value = match instruction {
            Instruction::DeleteNoPropagate => return subscriptions.delete(&stored),
            Instruction::DeleteAndPropagate => {
                subscriptions.delete(&stored)?;
                None
            }
            Instruction::PropagateNullIfNoFk | Instruction::PropagateOnlyIfFk => {
                let mut h = Vec::new();
                put_hash(hash, &mut h);
                subscriptions.put(&stored, &h)?;
                let value = right.get(&record.key)?.map(|(v, _)| v);
                if value.is_none() && instruction == Instruction::PropagateOnlyIfFk {
                    return Ok(());
                }
                value
            }
        };
        ctx.forward(Record {
            key,
            value: Response { hash, value },
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}

/// Answers every subscriber of a right row when the row changes.
struct ForeignChange<K, KO> {
    subscriptions_name: String,
    foreign_key_serde: Arc<dyn Serde<KO>>,
    key_serde: Arc<dyn Serde<K>>,
    store: Option<Subscriptions>,
}

impl<K, KO, VO> Processor<KO, Option<VO>, K, Response<VO>> for ForeignChange<K, KO>
where
    K: Clone + 'static,
    KO: Clone + 'static,
    VO: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Response<VO>>) -> ProcessResult {
        self.store = Some(ctx.key_value_store(&self.subscriptions_name, BytesSerde, BytesSerde)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Response<VO>>,
        record: Record<KO, Option<VO>>,
    ) -> ProcessResult {
        let store = self.store.as_ref().expect("init ran");
        let prefix = subscription_key(
            &bytes_of(
                &*self.foreign_key_serde,
                &record.key,
                &self.subscriptions_name,
            )?,
            &[],
        );
        // The prefix's keys lie between the prefix and the prefix followed by 0xff bytes as
        // long as the longest left key; scanning to the foreign key's successor instead needs
        // no length and is filtered to the prefix.
        let subscribers = match successor(&prefix) {
            Some(end) => store.range(&prefix, &end)?,
            None => store.all()?,
        };
        for (stored, hash) in subscribers {
            let Some(left) = stored.strip_prefix(prefix.as_slice()) else {
                continue;
            };
            let serde_error = |e: SerdeError| StreamsError::Serde {
                context: self.subscriptions_name.clone(),
                message: e.0,
            };
            let key = self.key_serde.deserialize(left).map_err(serde_error)?;
            let (hash, _) = take_hash(&hash).map_err(serde_error)?;
            ctx.forward(Record {
                key,
                value: Response {
                    hash,
                    value: record.value.clone(),
                },
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Joins the responses that answer a left row's current value.
struct ResponseJoin<K, V, VO, VR> {
    left_name: String,
    result_name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    result_serde: Arc<dyn Serde<VR>>,
    joiner: FkJoiner<V, VO, VR>,
    left_join: bool,
    stores: Option<(Timestamped<K, V>, CachedForwarder<K, VR>)>,
}

impl<K, V, VO, VR> Processor<K, Response<VO>, K, Option<VR>> for ResponseJoin<K, V, VO, VR>
where
    K: Clone + 'static,
    V: Clone + 'static,
    VO: Clone + 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Option<VR>>) -> ProcessResult {
        self.stores = Some((
            ctx.key_value_store(
                &self.left_name,
                self.key_serde.clone(),
                TimestampedSerde(self.value_serde.clone()),
            )?,
            CachedForwarder::new(ctx.key_value_store(
                &self.result_name,
                self.key_serde.clone(),
                TimestampedSerde(self.result_serde.clone()),
            )?),
        ));
        Ok(())
    }

    fn before_commit(&mut self, ctx: &mut ProcessorContext<K, Option<VR>>) -> ProcessResult {
        let (_, result) = self.stores.as_ref().expect("init ran");
        result.before_commit(ctx, Some)
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<K, Option<VR>>,
        record: Record<K, Response<VO>>,
    ) -> ProcessResult {
        let (left, result) = self.stores.as_ref().expect("init ran");
        let current = left.get(&record.key)?.map(|(v, _)| v);
        let current_hash = match &current {
            Some(v) => Some(value_hash(&bytes_of(
                &*self.value_serde,
                v,
                &self.left_name,
            )?)),
            None => None,
        };
        // An answer to a value the row no longer has is stale.
        if record.value.hash != current_hash {
            return Ok(());
        }
        let joined = match (&current, &record.value.value) {
            (Some(v), vo) if vo.is_some() || self.left_join => (self.joiner)(v, vo.as_ref()),
            _ => None,
        };
        match update_joined(result.store(), &record.key, joined, record.timestamp)? {
            Some(value) => {
                let change = Record {
                    key: record.key,
                    value,
                    timestamp: record.timestamp,
                    headers: record.headers,
                };
                result.written(ctx, change, Some)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::StringSerde;

    #[test]
    fn subscriptions_and_responses_survive_their_topics() {
        let subs = SubscriptionSerde::<String>(Arc::new(StringSerde));
        for (instruction, hash) in [
            (Instruction::DeleteNoPropagate, Some(7_u128 << 100)),
            (Instruction::DeleteAndPropagate, None),
            (Instruction::PropagateOnlyIfFk, Some(1)),
        ] {
            let mut bytes = Vec::new();
            let s = Subscription {
                instruction,
                hash,
                key: "order-1".to_string(),
            };
            subs.serialize(&s, &mut bytes).unwrap();
            let back = subs.deserialize(&bytes).unwrap();
            assert_eq!(
                (back.instruction, back.hash, back.key),
                (instruction, hash, s.key)
            );
        }
        let responses = ResponseSerde::<String>(Arc::new(StringSerde));
        for value in [None, Some(String::new()), Some("Ann".to_string())] {
            let mut bytes = Vec::new();
            let r = Response {
                hash: Some(42),
                value: value.clone(),
            };
            responses.serialize(&r, &mut bytes).unwrap();
            let back = responses.deserialize(&bytes).unwrap();
            assert_eq!((back.hash, back.value), (Some(42), value));
        }
        assert!(subs.deserialize(&[9, 0]).is_err());
        assert!(responses.deserialize(&[1, 0, 0]).is_err());
    }

    #[test]
    fn the_value_hash_is_stable_and_tells_values_apart() {
        // FNV-1a 128 of the empty string is its offset basis.
        assert_eq!(value_hash(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_ne!(value_hash(b"c1"), value_hash(b"c2"));
        assert_eq!(value_hash(b"c1"), value_hash(b"c1"));
    }

    #[test]
    fn a_prefix_successor_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
    }
}
