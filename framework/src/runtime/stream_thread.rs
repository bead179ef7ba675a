//! [`StreamThread`]: one consumer, one producer and the tasks of the partitions assigned to
//! it, driven by a poll → process → punctuate → commit loop on a dedicated OS thread.
//!
//! Rebalance callbacks run inside `poll` on this same thread, so they reach the thread's
//! [`TaskManager`] through a thread-local instead of locks: on revocation the tasks commit and
//! close before their partitions go away; on assignment new tasks open their stores, which the
//! loop then restores a batch per round while it keeps polling.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::app_shared::AppShared;
use super::client_health::ClientHealth;
use super::consumed_record::to_raw;
use super::partition_queues::PartitionQueues;
use super::streams_producer::StreamsProducer;
use super::task_manager::TaskManager;
use crate::client_config::ClientRole;
use crate::error::StreamsError;

thread_local! {
    static TASK_MANAGER: RefCell<Option<TaskManager>> = const { RefCell::new(None) };
    /// Counts the thread's assignments and revocations, so the loop knows when to split the
    /// partition queues again.
    static ASSIGNMENT_VERSION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn next_assignment_version() {
    ASSIGNMENT_VERSION.with(|v| v.set(v.get() + 1));
}

fn with_tasks<R>(f: impl FnOnce(&mut TaskManager) -> R) -> Option<R> {
    TASK_MANAGER.with(|tm| tm.borrow_mut().as_mut().map(f))
}

/// Consumer context that hands rebalances to the thread's task manager, and assigns the
/// partitions the task manager computed instead of those librdkafka's assignor chose.
pub(crate) struct RebalanceListener {
    health: Arc<ClientHealth>,
}

impl ClientContext for RebalanceListener {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.health.observe("consumer", &error, reason);
    }
}

impl ConsumerContext for RebalanceListener {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::debug!(offered = tpl.count(), "group joined");
                let mine = with_tasks(|tm| tm.on_assigned(consumer, tpl)).unwrap_or_default();
                assign_partitions(consumer, &mine);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("partitions revoked");
                with_tasks(|tm| tm.commit_and_close(consumer));
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(error = %e, "cannot unassign partitions");
                }
                next_assignment_version();
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                with_tasks(|tm| tm.commit_and_close(consumer));
                let _ = consumer.unassign();
                next_assignment_version();
            }
        }
    }
}

/// Hands the consumer the partitions of this thread's tasks.
fn assign_partitions<C: ConsumerContext>(consumer: &BaseConsumer<C>, mine: &TopicPartitionList) {
    tracing::info!(partitions = mine.count(), "partitions assigned");
    if let Err(e) = consumer.assign(mine) {
        tracing::error!(error = %e, "cannot assign partitions");
    }
    next_assignment_version();
}

/// How the stream loop ended, when not with an error.
enum LoopExit {
    /// The application shuts down.
    Shutdown,
    /// The consumer cannot go on, but the thread can: it rejoins with a new consumer.
    NewConsumer,
}

/// After a broker outage librdkafka can report its own static member as fenced by another
/// with the same `group.instance.id` (a heartbeat sent without its member id;
/// confluentinc/librdkafka#3437): seen after every broker restart in chaos runs. Such a
/// fence, within [`SPURIOUS_FENCE_WINDOW`] of the outage's last client error, is answered
/// with a new consumer, once per window: a second one means another instance really has the
/// id, which stays fatal.
fn spuriously_fenced(
    consumer: &BaseConsumer<RebalanceListener>,
    health: &ClientHealth,
    replaced: Option<Instant>,
) -> bool {
    let fenced = consumer
        .client()
        .fatal_error()
        .is_some_and(|(code, _)| code == rdkafka::error::RDKafkaErrorCode::FencedInstanceId);
    fenced
        && health.recent_outage(SPURIOUS_FENCE_WINDOW)
        && replaced.is_none_or(|at| at.elapsed() >= SPURIOUS_FENCE_WINDOW)
}

const SPURIOUS_FENCE_WINDOW: Duration = Duration::from_secs(120);

const POLL_BATCH: usize = 500;
/// Records taken from each partition's queue per round.
const PARTITION_BATCH: usize = 200;
const PROCESS_BUDGET: usize = 2000;
const STATUS_INTERVAL: Duration = Duration::from_millis(200);

pub(crate) struct StreamThread {
    shared: Arc<AppShared>,
    index: usize,
}

impl StreamThread {
    pub(crate) fn new(shared: Arc<AppShared>, index: usize) -> Self {
        StreamThread { shared, index }
    }

    fn client_id(&self) -> String {
        format!(
            "{}-StreamThread-{}",
            self.shared.config.application_id,
            self.index + 1
        )
    }

    fn consumer(
        &self,
        health: Arc<ClientHealth>,
    ) -> Result<BaseConsumer<RebalanceListener>, StreamsError> {
        let config = &self.shared.config;
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &config.bootstrap_servers)
            .set("group.id", &config.application_id)
            // Carries the instance identity every member reads to compute the assignment, and
            // the address where it answers interactive queries.
            .set(
                "client.id",
                super::identity::consumer_client_id(
                    &config.application_id,
                    &self.shared.identity,
                    self.index as u32 + 1,
                    config.application_server.as_deref(),
                ),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // An eager protocol: every member gives up its partitions before the group
            // re-forms, so the assignment each computes never overlaps another's (see
            // `assignor`). Which partitions range hands out does not matter.
            .set("partition.assignment.strategy", "range")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // librdkafka prefetches 100 000 messages per partition by default, all of which
            // land in the task's buffer regardless of pausing, and the first partition's
            // backlog is served before the others'. Prefetching what one buffer holds keeps
            // memory bounded and lets every task of the thread progress.
            .set(
                "queued.min.messages",
                config.buffered_records_per_partition.to_string(),
            )
            // A fetch response overshoots that small queue nearly every time, and librdkafka
            // then postpones the partition's next fetch by this backoff (default 1 s): the
            // thread would sit idle most of the time with data waiting on the broker.
            .set("fetch.queue.backoff.ms", "5")
            // A refresh that finds new partitions of a subscribed topic triggers a
            // rebalance, which creates their tasks.
            .set(
                "topic.metadata.refresh.interval.ms",
                config.metadata_refresh_interval.as_millis().to_string(),
            );
        if config.is_exactly_once() {
            cc.set("isolation.level", "read_committed");
        }
        if let Some(id) = &config.instance_id {
            cc.set("group.instance.id", format!("{id}-{}", self.index + 1));
        }
        config.with_client_properties(ClientRole::MainConsumer, &mut cc);
        Ok(cc.create_with_context(RebalanceListener { health })?)
    }

    fn producer(&self) -> Result<StreamsProducer, StreamsError> {
        let config = &self.shared.config;
        let mut pc = ClientConfig::new();
        pc.set("bootstrap.servers", &config.bootstrap_servers)
            .set("client.id", format!("{}-producer", self.client_id()))
            .set("acks", "all")
            .set("linger.ms", "5");
        if !config.is_exactly_once() {
            // Per-partition order across retries, without idempotence: librdkafka's idempotent
            // producer sends one request per partition at a time and its broker thread spins
            // (poll with no timeout) while one is out, which cost a third of a pass-through
            // topology's CPU. One request in flight per connection keeps order the same way;
            // a retried request may write duplicates, which at-least-once allows.
            pc.set("enable.idempotence", "false")
                .set("max.in.flight.requests.per.connection", "1");
        } else {
            // One transactional producer per thread (EOS v2): zombies are fenced through the
            // consumer group generation sent with the offsets, so the id need not be stable
            // across restarts; it only has to be unique among live threads.
            let instance = config.instance_id.clone().unwrap_or_else(process_id);
            pc.set(
                "transactional.id",
                format!("{}-{instance}-{}", config.application_id, self.index + 1),
            )
            // Short, like Kafka Streams' EOS default: a crashed instance's open transaction
            // blocks read_committed readers until it times out.
            .set("transaction.timeout.ms", "10000");
        }
        config.with_client_properties(ClientRole::Producer, &mut pc);
        StreamsProducer::new(
            pc,
            config.is_exactly_once(),
            config.production_error_policy == crate::error_policy::ProductionErrorPolicy::Continue,
            Arc::new(ClientHealth::default()),
            self.shared.shutdown_flag(),
            config.faults.clone(),
        )
    }

    /// Runs until shutdown; on the way out commits, closes the tasks and leaves the group.
    /// After an error (or a panic) it commits nothing: the tasks are closed dirty and, under
    /// exactly-once, the open transaction is aborted.
    pub(crate) fn run(self) -> Result<(), StreamsError> {
        let mut health = Arc::new(ClientHealth::default());
        let mut consumer = Arc::new(self.consumer(health.clone())?);
        let producer = Arc::new(self.producer()?);
        TASK_MANAGER.with(|tm| {
            *tm.borrow_mut() = Some(TaskManager::new(
                self.shared.clone(),
                producer.clone(),
                self.index,
            ));
        });
        let topics = self.source_topics();
        consumer.subscribe(&topics)?;
        tracing::info!(thread = self.index, ?topics, "stream thread started");
        let inbox = self.shared.queries.take_inbox(self.index);
        let mut replaced: Option<Instant> = None;
        let result = loop {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_loop(&consumer, &health, inbox.as_ref(), replaced)
            }))
            .unwrap_or_else(|panic| {
                Err(crate::error::panic_error(
                    format!("stream thread {}", self.index + 1),
                    panic.as_ref(),
                ))
            });
            if !matches!(result, Ok(LoopExit::NewConsumer)) {
                break result.map(|_| ());
            }
            with_tasks(|tm| tm.abandon(&consumer));
            // The fenced consumer closes first: the new one joins with the same
            // `group.instance.id`.
            drop(consumer);
            health = Arc::new(ClientHealth::default());
            consumer = match self.consumer(health.clone()) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    TASK_MANAGER.with(|tm| tm.borrow_mut().take());
                    return Err(e);
                }
            };
            if let Err(e) = consumer.subscribe(&topics) {
                break Err(e.into());
            }
            replaced = Some(Instant::now());
            tracing::info!(
                thread = self.index + 1,
                "rejoined the group with a new consumer"
            );
        };
        let closing = with_tasks(|tm| {
            match &result {
                Ok(()) => tm.commit_and_close(&consumer),
                Err(e) => {
                    tracing::error!(thread = self.index + 1, error = %e,
                        "stream thread failed; closing its tasks dirty, committing nothing");
                    tm.record_exit_error(e);
                    tm.close_dirty(&consumer);
                }
            }
            tm.close_standbys();
            tm.take_error()
        })
        .flatten();
        // Leaving the group runs the revoke callback; the tasks are already closed.
        consumer.unsubscribe();
        drop(consumer);
        TASK_MANAGER.with(|tm| tm.borrow_mut().take());
        tracing::info!(thread = self.index, "stream thread stopped");
        result.and(closing.map_or(Ok(()), Err))
    }

    fn run_loop(
        &self,
        consumer: &Arc<BaseConsumer<RebalanceListener>>,
        health: &ClientHealth,
        queries: Option<&std::sync::mpsc::Receiver<super::queries::QueryRequest>>,
        replaced: Option<Instant>,
    ) -> Result<LoopExit, StreamsError> {
        let config = &self.shared.config;
        let commit_interval = config.effective_commit_interval();
        let mut last_commit = Instant::now();
        let mut last_status = Instant::now();
        let mut idle_polls = 0_u32;
        let mut partition_queues = PartitionQueues::<RebalanceListener>::new(PARTITION_BATCH);
        let mut topic_name = None;
        let mut phase = None;
        while !self.shared.is_shutting_down() {
            // Block in poll only when the last round did nothing; a restore waits for its
            // records itself.
            let restoring = with_tasks(|tm| tm.is_restoring()).unwrap_or(false);
            let timeout = if idle_polls > 0 && !restoring {
                config.poll_timeout
            } else {
                Duration::ZERO
            };
            let mut polled = 0;
            let mut main_queue_empty = false;
            while polled < POLL_BATCH {
                let wait = if polled == 0 { timeout } else { Duration::ZERO };
                match consumer.poll(wait) {
                    None => {
                        main_queue_empty = true;
                        break;
                    }
                    Some(Ok(message)) => {
                        let record = to_raw(&message, &mut topic_name);
                        with_tasks(|tm| tm.add_records(vec![record])).unwrap_or(Ok(()))?;
                        polled += 1;
                    }
                    Some(Err(e)) => {
                        health.observe("consumer", &e, "");
                        break;
                    }
                }
            }
            if let Some(mine) = with_tasks(|tm| tm.retry_assignment(consumer)).flatten() {
                assign_partitions(consumer, &mine);
            }
            with_tasks(|tm| tm.retry_rebuild(consumer)).unwrap_or(Ok(()))?;
            if health.is_failed() {
                if let Some(e) = health.take_fatal(consumer.client()) {
                    return self.unless_spuriously_fenced(consumer, health, replaced, e);
                }
            }
            if let Some(e) = with_tasks(|tm| tm.take_error()).flatten() {
                return Err(e);
            }
            if with_tasks(|tm| tm.take_migration()) == Some(true) {
                if let Err(e) = self.migrate(consumer) {
                    // A fenced producer and a spuriously fenced consumer often come together
                    // after an outage: the rejoin then fails on the consumer's fatal error.
                    return self.unless_spuriously_fenced(consumer, health, replaced, e);
                }
            }
            let now_phase = with_tasks(|tm| tm.phase());
            if now_phase != phase {
                phase = now_phase;
                if let Some(p) = phase {
                    self.shared.state.set_thread(self.index, p);
                }
            }
            partition_queues.follow_assignment(consumer, ASSIGNMENT_VERSION.with(|v| v.get()))?;
            // Records fetched before a partition's queue was split wait in the consumer's
            // queue and come before those in the partition's own: reading the partition
            // queues only once the consumer's queue is empty keeps each partition in offset
            // order.
            if main_queue_empty {
                polled += partition_queues
                    .poll(|records| with_tasks(|tm| tm.add_records(records)).unwrap_or(Ok(())))?;
            }
            let now = super::wall_clock_ms();
            let processed = with_tasks(|tm| -> Result<usize, StreamsError> {
                tm.apply_exclusions();
                tm.refresh_catching_up(consumer);
                let n = tm.restore(consumer)?;
                let n = n + tm.process(consumer, now, PROCESS_BUDGET)?;
                tm.punctuate_wall_clock(now)?;
                tm.rewind_if_needed(consumer)?;
                tm.update_pauses(consumer)?;
                Ok(n)
            })
            .unwrap_or(Ok(0))?;
            idle_polls = if polled == 0 && processed == 0 {
                idle_polls + 1
            } else {
                0
            };

            let gate = &self.shared.commit_gate;
            let due = last_commit.elapsed() >= commit_interval || gate.is_pending();
            if due && gate.begin() {
                let result = with_tasks(|tm| tm.commit(consumer)).unwrap_or(Ok(()));
                gate.end();
                result?;
                last_commit = Instant::now();
            }
            if let Some(inbox) = queries {
                with_tasks(|tm| super::queries::serve(inbox, |store| tm.task_stores(store)));
            }
            if last_status.elapsed() >= STATUS_INTERVAL {
                with_tasks(|tm| tm.publish_status(consumer));
                last_status = Instant::now();
            }
        }
        Ok(LoopExit::Shutdown)
    }
}

impl StreamThread {
    /// Every source topic (resolved names), as the consumer subscribes to them.
    fn source_topics(&self) -> Vec<&str> {
        self.shared
            .partition_counts
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// Task migration after the producer was fenced (exactly-once): a new producer takes
    /// over the transactional id, the tasks are closed dirty, and the thread rejoins the group
    /// so its assignment creates them again from the committed offsets.
    /// Ends the loop with `error`, unless the consumer's fatal error is librdkafka fencing its
    /// own static member after an outage: then the thread goes on with a new consumer.
    fn unless_spuriously_fenced(
        &self,
        consumer: &BaseConsumer<RebalanceListener>,
        health: &ClientHealth,
        replaced: Option<Instant>,
        error: StreamsError,
    ) -> Result<LoopExit, StreamsError> {
        if !spuriously_fenced(consumer, health, replaced) {
            return Err(error);
        }
        tracing::warn!(thread = self.index + 1, %error,
            "the static member was fenced right after a broker outage (a librdkafka fault, confluentinc/librdkafka#3437); closing the tasks dirty and rejoining with a new consumer");
        metrics::counter!("streamtime_consumer_replacements_total").increment(1);
        Ok(LoopExit::NewConsumer)
    }

    fn migrate(&self, consumer: &BaseConsumer<RebalanceListener>) -> Result<(), StreamsError> {
        let producer = Arc::new(self.producer()?);
        with_tasks(|tm| tm.migrate(consumer, producer));
        consumer.unsubscribe();
        let topics = self.source_topics();
        consumer.subscribe(&topics)?;
        tracing::info!(
            thread = self.index + 1,
            "rejoining the group after a task migration"
        );
        Ok(())
    }
}

/// A per-process id for transactional ids when no instance id is configured.
fn process_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos)
}
