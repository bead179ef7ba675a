//! Interactive queries, runtime side: how a read of a store reaches the stream thread that
//! owns it.
//!
//! A task's stores are single-threaded (`Rc<RefCell<_>>`, RocksDB iterators and a write
//! cache used only by the task's thread). Two designs were possible:
//!
//! * share every store behind a lock, so any thread may read it: every put and get of the
//!   processing path would then pay for a lock, and a long range query would stall
//!   processing while it holds it;
//! * (chosen) send the read to the owning stream thread, which runs it between two batches of
//!   records and sends the answer back. Processing pays nothing when nobody queries, and a
//!   read sees the store exactly as processing left it, never half-way through a record.
//!   The cost is latency: a query waits for the thread to finish its batch or its poll (at
//!   most `poll_timeout`, 100 ms by default, when idle), and while the thread restores a task
//!   or rebalances it does not answer (the caller times out and may retry).
//!
//! A read sees every record processed so far, including what is not committed yet (under
//! exactly-once an aborted transaction can still take it back).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::StreamsError;
use crate::stores::TaskStore;
use crate::task::TaskId;

/// The local tasks' instances of one store: (task, store).
pub(crate) type LocalStores<'a> = [(TaskId, &'a TaskStore)];

type Run = Box<dyn FnOnce(&LocalStores<'_>) + Send>;

/// A read to run on a stream thread, over its tasks' instances of `store`.
pub(crate) struct QueryRequest {
    store: String,
    run: Run,
}

/// One inbox per stream thread.
pub(crate) struct QueryRouter {
    inboxes: Vec<Sender<QueryRequest>>,
    receivers: Mutex<Vec<Option<Receiver<QueryRequest>>>>,
}

impl QueryRouter {
    pub(crate) fn new(threads: usize) -> Self {
        let (inboxes, receivers) = (0..threads)
            .map(|_| {
                let (tx, rx) = mpsc::channel();
                (tx, Some(rx))
            })
            .unzip();
        QueryRouter {
            inboxes,
            receivers: Mutex::new(receivers),
        }
    }

    /// The inbox of stream thread `index`, taken once by that thread.
    pub(crate) fn take_inbox(&self, index: usize) -> Option<Receiver<QueryRequest>> {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index)
            .and_then(Option::take)
    }

    /// Runs `read` on every stream thread over its tasks' instances of `store` and returns
    /// what each thread answered. Fails when a thread does not answer within `timeout`, or
    /// when no thread runs any more.
    pub(crate) fn ask<T: Send + 'static>(
        &self,
        store: &str,
        timeout: Duration,
        read: impl Fn(&LocalStores<'_>) -> Result<T, StreamsError> + Clone + Send + 'static,
    ) -> Result<Vec<T>, StreamsError> {
        metrics::counter!("streamtime_interactive_queries_total").increment(1);
        let (reply, answers) = mpsc::channel();
        let mut asked = 0;
        for inbox in &self.inboxes {
            let (reply, read) = (reply.clone(), read.clone());
            let request = QueryRequest {
                store: store.to_string(),
                run: Box::new(move |stores| {
                    // The asker may have timed out and gone: nobody to tell.
                    let _ = reply.send(read(stores));
                }),
            };
            // A thread that has stopped dropped its inbox; it hosts nothing.
            if inbox.send(request).is_ok() {
                asked += 1;
            }
        }
        drop(reply);
        if asked == 0 {
            return Err(not_running());
        }
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(asked);
        for _ in 0..asked {
            match answers.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(answer) => out.push(answer?),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(StreamsError::State(format!(
                        "store {store}: a stream thread did not answer within {timeout:?} \
                         (restoring or rebalancing); retry later"
                    )))
                }
                // Threads that stopped before serving the request dropped it.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if out.is_empty() {
            return Err(not_running());
        }
        Ok(out)
    }
}

fn not_running() -> StreamsError {
    StreamsError::State("the application is not running: its stores cannot be queried".into())
}

/// Answers every waiting query of a stream thread; `tasks` lists the thread's tasks'
/// instances of a store. Called between batches, when no store is borrowed.
pub(crate) fn serve<'a>(
    inbox: &Receiver<QueryRequest>,
    tasks: impl Fn(&str) -> Vec<(TaskId, &'a TaskStore)>,
) {
    while let Ok(request) = inbox.try_recv() {
        let stores = tasks(&request.store);
        (request.run)(&stores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reaches_every_thread_and_times_out_without_answer() {
        let router = QueryRouter::new(2);
        let inbox0 = router.take_inbox(0).unwrap();
        assert!(router.take_inbox(0).is_none(), "taken once");
        let server = std::thread::spawn(move || {
            for _ in 0..100 {
                serve(&inbox0, |_| Vec::new());
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // Thread 1 never serves: its inbox is still in the router.
        let error = router
            .ask("s", Duration::from_millis(200), |stores| Ok(stores.len()))
            .unwrap_err();
        assert!(error.to_string().contains("did not answer"), "{error}");
        server.join().unwrap();
    }

    #[test]
    fn stopped_threads_make_queries_fail_clearly() {
        let router = QueryRouter::new(1);
        drop(router.take_inbox(0));
        let error = router
            .ask("s", Duration::from_secs(1), |_| Ok(()))
            .unwrap_err();
        assert!(error.to_string().contains("not running"), "{error}");
    }
}
