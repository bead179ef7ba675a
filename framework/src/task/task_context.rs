//! [`TaskContext`]: what the nodes of one task share — its identity, its mutable state
//! (stream time, the record being processed, punctuation schedules), its record collector
//! and its stores.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use streamtime_state::{KeyValueStore, SessionStore, StateStore, WindowStore};

use crate::error::StreamsError;
use crate::processor::{Punctuation, PunctuationType, PunctuatorId};
use crate::record::RecordMetadata;
use crate::task::record_collector::RecordCollector;
use crate::task::TaskId;

/// A registered punctuation schedule.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub id: PunctuatorId,
    pub node: usize,
    pub kind: PunctuationType,
    pub interval_ms: i64,
    pub next_ms: i64,
}

impl Schedule {
    /// Moves the schedule past `now`, skipping missed intervals instead of replaying them.
    pub(crate) fn advance(&mut self, now: i64) {
        let next = self.next_ms + self.interval_ms;
        self.next_ms = if now >= next {
            let missed = (now - self.next_ms) / self.interval_ms;
            self.next_ms + (missed + 1) * self.interval_ms
        } else {
            next
        };
    }
}

/// Mutable per-task state visible to every node of the task.
#[derive(Debug)]
pub(crate) struct TaskState {
    pub stream_time: i64,
    /// Timestamp of the record (or punctuation) being processed: stores log writes with it.
    pub current_timestamp: i64,
    pub wall_clock_ms: i64,
    pub current: Option<RecordMetadata>,
    pub schedules: Vec<Schedule>,
    pub commit_requested: bool,
    /// The task's lag is above the catching-up threshold (see
    /// [`ProcessorContext::is_catching_up`](crate::processor::ProcessorContext::is_catching_up)).
    pub catching_up: bool,
    /// Numbers processors keep with the committed offsets (`<node index>.<name>` → value),
    /// such as a windowed operator's observed stream time and last emitted window end.
    pub processor_metadata: std::collections::BTreeMap<String, i64>,
    /// A panic caught in a processor of the record (or punctuation) being handled. Kept here
    /// as well as returned, so a parent that ignores its `forward` result cannot hide it.
    pub caught_panic: Option<StreamsError>,
    /// The task reads watermarked repartition topics: the smallest progress of their active
    /// writers, which windowed operators do not advance their stream time past.
    pub watermark: Option<i64>,
    next_punctuator: u64,
}

impl TaskState {
    pub(crate) fn new(wall_clock_ms: i64) -> Self {
        TaskState {
            stream_time: -1,
            current_timestamp: -1,
            wall_clock_ms,
            current: None,
            schedules: Vec::new(),
            commit_requested: false,
            catching_up: false,
            processor_metadata: Default::default(),
            caught_panic: None,
            watermark: None,
            next_punctuator: 0,
        }
    }

    pub(crate) fn schedule(
        &mut self,
        node: usize,
        interval_ms: i64,
        kind: PunctuationType,
    ) -> PunctuatorId {
        let id = PunctuatorId(self.next_punctuator);
        self.next_punctuator += 1;
        let next_ms = match kind {
            // Aligned to 0 so stream-time punctuation fires as soon as there is data and then
            // on interval multiples, as in Kafka Streams.
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.wall_clock_ms + interval_ms,
        };
        self.schedules.push(Schedule {
            id,
            node,
            kind,
            interval_ms,
            next_ms,
        });
        id
    }

    pub(crate) fn cancel(&mut self, id: PunctuatorId) {
        self.schedules.retain(|s| s.id != id);
    }

    /// Schedules of `kind` due at `now`, advanced past it, in registration order.
    pub(crate) fn take_due(
        &mut self,
        kind: PunctuationType,
        now: i64,
    ) -> Vec<(usize, Punctuation)> {
        let mut due = Vec::new();
        for s in self.schedules.iter_mut().filter(|s| s.kind == kind) {
            if now >= s.next_ms {
                due.push((
                    s.node,
                    Punctuation {
                        id: s.id,
                        kind,
                        timestamp: now,
                    },
                ));
                s.advance(now);
            }
        }
        due
    }
}

/// What the nodes of one task share: identity, mutable state and the record collector.
pub(crate) struct TaskContext {
    pub task_id: TaskId,
    pub application_id: Arc<str>,
    pub state: RefCell<TaskState>,
    pub collector: RefCell<Box<dyn RecordCollector>>,
    /// The task's stores by name.
    pub stores: std::collections::BTreeMap<String, TaskStore>,
    /// The instance's global stores.
    pub globals: super::global_stores::GlobalStores,
    /// Per cached key-value store whose updates processors forward: what its cache wrote
    /// out (see `stores::FlushedUpdates`).
    pub flushes: RefCell<std::collections::BTreeMap<String, crate::stores::SharedFlushes>>,
}

pub(crate) type Shared<S> = Rc<RefCell<Box<S>>>;

/// One store of a task, by shape.
#[derive(Clone)]
pub(crate) enum TaskStore {
    KeyValue(Shared<dyn KeyValueStore>),
    Window(Shared<dyn WindowStore>),
    Session(Shared<dyn SessionStore>),
}

impl TaskStore {
    /// Runs `f` on the store's shape-independent side (flush, restore).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut dyn StateStore) -> R) -> R {
        match self {
            TaskStore::KeyValue(s) => f(&mut **s.borrow_mut()),
            TaskStore::Window(s) => f(&mut **s.borrow_mut()),
            TaskStore::Session(s) => f(&mut **s.borrow_mut()),
        }
    }

    pub(crate) fn shape(&self) -> &'static str {
        match self {
            TaskStore::KeyValue(_) => "a key-value store",
            TaskStore::Window(_) => "a window store",
            TaskStore::Session(_) => "a session store",
        }
    }
}
