//! [`Committer`]: the only code that commits — input offsets, transactions and checkpoints —
//! in the order of docs/semantics.md §6, and that refuses to once the thread has failed.
//!
//! The rule every error exit rests on: after an error (a processing error or panic, a
//! failed delivery, a store error, a fatal client error) nothing is committed, ever. The
//! tasks are closed dirty instead: under at-least-once their input is processed again from
//! the last commit, under exactly-once the open transaction is aborted, so the failing
//! record's sends and store writes never become visible.

use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::app_shared::AppShared;
use super::commit_metadata;
use super::repartition_purger::RepartitionPurger;
use super::streams_producer::StreamsProducer;
use super::tasks::Tasks;
use crate::error::StreamsError;
use crate::faults::FaultPoint;

/// Changelog records after which a running task writes a checkpoint (at-least-once).
const CHECKPOINT_AFTER: u64 = 10_000;

/// What a commit did.
#[derive(Debug)]
pub(crate) enum CommitOutcome {
    /// Everything the tasks processed is committed.
    Committed,
    /// The broker could not be reached in time; the progress stays uncommitted and the next
    /// commit tries again, so nothing is skipped.
    Postponed,
    /// Exactly-once: the transaction failed in a way that requires aborting it. The caller
    /// aborts and rewinds the tasks to the last committed offsets.
    MustAbort(KafkaError),
    /// Exactly-once: the producer was fenced (the broker aborted the transaction after its
    /// timeout, or a newer producer took the transactional id). The caller closes the tasks
    /// dirty, makes a new producer and rejoins the group (a task migration).
    Fenced(KafkaError),
}

pub(crate) struct Committer {
    purger: RepartitionPurger,
    /// The error after which nothing may be committed.
    failed: Option<StreamsError>,
}

impl Committer {
    pub(crate) fn new(config: &crate::config::StreamsConfig) -> Self {
        Committer {
            purger: RepartitionPurger::new(config),
            failed: None,
        }
    }

    /// From now on every commit is refused: the thread failed with `error`.
    pub(crate) fn refuse_after(&mut self, error: &StreamsError) {
        self.failed.get_or_insert_with(|| error.clone());
    }

    /// Commits, in the order of docs/semantics.md §6: flush the stores' caches (their
    /// store and changelog writes), flush the producer and wait for every in-flight send,
    /// then commit the input offsets with their metadata; under exactly-once the offsets join
    /// the transaction, which then commits. A failed delivery fails the commit, so offsets never
    /// move past lost output. Refused once the thread failed; any error makes it refuse from
    /// then on.
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        tasks: &mut Tasks,
        consumer: &BaseConsumer<C>,
        producer: &StreamsProducer,
        shared: &AppShared,
    ) -> Result<CommitOutcome, StreamsError> {
        if let Some(e) = &self.failed {
            tracing::debug!(error = %e, "not committing after an error");
            return Err(e.clone());
        }
        let result = self.commit_steps(tasks, consumer, producer, shared);
        if let Err(e) = &result {
            self.refuse_after(e);
        }
        result
    }

    fn commit_steps<C: ConsumerContext>(
        &mut self,
        tasks: &mut Tasks,
        consumer: &BaseConsumer<C>,
        producer: &StreamsProducer,
        shared: &AppShared,
    ) -> Result<CommitOutcome, StreamsError> {
        let started = Instant::now();
        // A task that processed nothing since the last commit has nothing cached.
        for task in tasks.iter_mut().filter(|t| t.needs_commit()) {
            if let Err(e) = task.flush_for_commit() {
                if producer.must_abort() {
                    return Ok(CommitOutcome::MustAbort(KafkaError::MessageProduction(
                        RDKafkaErrorCode::State,
                    )));
                }
                return Err(e);
            }
        }
        let offsets = offsets_to_commit(tasks)?;
        if shared.config.is_exactly_once() {
            if !producer.in_transaction() {
                return Ok(CommitOutcome::Committed);
            }
            let group = consumer
                .group_metadata()
                .ok_or(KafkaError::MetadataFetch(RDKafkaErrorCode::State))?;
            if let Err(e) = producer.commit_transaction(&offsets, &group) {
                return match &e {
                    KafkaError::Transaction(t) if t.txn_requires_abort() => {
                        Ok(CommitOutcome::MustAbort(e))
                    }
                    _ if producer.is_fenced() => Ok(CommitOutcome::Fenced(e)),
                    _ => Err(StreamsError::Kafka(format!("transaction failed: {e}"))),
                };
            }
        } else {
            // While the broker is unreachable the flush or the offset commit fails; the
            // progress stays uncommitted and the next commit tries again. Output the producer
            // gave up on is lost for good, so that is an error.
            if let Err(e) = producer.flush() {
                postpone("the producer could not flush", &e);
                return Ok(CommitOutcome::Postponed);
            }
            if let Some(e) = producer.deliveries().error() {
                return Err(StreamsError::Kafka(e));
            }
            if offsets.count() > 0 {
                let commit = if shared.config.faults.fail_at(FaultPoint::CommitOffsets) {
                    Err(KafkaError::ConsumerCommit(
                        RDKafkaErrorCode::RequestTimedOut,
                    ))
                } else {
                    consumer.commit(&offsets, CommitMode::Sync)
                };
                if let Err(e) = commit {
                    postpone("the offset commit failed", &e);
                    return Ok(CommitOutcome::Postponed);
                }
            }
        }
        for task in tasks.iter_mut() {
            task.mark_committed();
        }
        if !shared.config.is_exactly_once() {
            checkpoint_busy_tasks(tasks, producer)?;
        }
        self.purger
            .after_commit(&offsets, &shared.repartition_topics);
        let latency = started.elapsed();
        for task in tasks.iter() {
            task.metrics().committed(latency);
        }
        tracing::debug!(partitions = offsets.count(), ?latency, "committed");
        Ok(CommitOutcome::Committed)
    }
}

/// Logs why a commit did not happen and counts it; the caller leaves the progress
/// uncommitted for the next attempt.
fn postpone(what: &str, error: &KafkaError) {
    metrics::counter!("streamtime_commit_retries_total").increment(1);
    tracing::warn!(%error, "{what}; the commit is retried at the next interval");
}

/// Offsets and metadata of every task with uncommitted progress.
fn offsets_to_commit(tasks: &Tasks) -> Result<TopicPartitionList, StreamsError> {
    let mut tpl = TopicPartitionList::new();
    for task in tasks.iter().filter(|t| t.needs_commit()) {
        for (tp, consumed) in task.committable() {
            let mut elem = tpl.add_partition(&tp.topic, tp.partition);
            elem.set_offset(Offset::Offset(consumed.next_offset))?;
            elem.set_metadata(commit_metadata::encode(
                consumed.partition_time,
                &consumed.processor_metadata,
            ));
        }
    }
    Ok(tpl)
}

/// Commit step 4 (at-least-once): checkpoint tasks whose stores sent more than
/// [`CHECKPOINT_AFTER`] changelog records since their last checkpoint.
fn checkpoint_busy_tasks(
    tasks: &mut Tasks,
    producer: &StreamsProducer,
) -> Result<(), StreamsError> {
    let deliveries = producer.deliveries();
    for task in tasks.iter_mut() {
        let state = task.state();
        if state.checkpoints_while_running() && state.sent_since_checkpoint() > CHECKPOINT_AFTER {
            task.checkpoint(&|tp| deliveries.changelog_offset(tp))?;
        }
    }
    Ok(())
}
