//! [`ClientHealth`]: what a stream thread's Kafka clients reported about themselves, and
//! whether any of them can no longer go on.
//!
//! librdkafka retries most failures by itself and reports them as client errors only to
//! inform. A few it cannot get past: a fatal error (a fenced `group.instance.id`, a producer
//! fenced or out of sequence) and a failed authentication. A thread that ignored them would
//! live on as a zombie whose commits never succeed, so they end the thread with the error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::StreamsError;

/// See the module documentation. Shared by the thread's consumer and producer contexts.
#[derive(Default)]
pub(crate) struct ClientHealth {
    /// Set by a client context when librdkafka raised a fatal error; the details are read
    /// from the client itself.
    fatal: AtomicBool,
    /// An error that ends the thread and that librdkafka does not keep as fatal.
    ending: Mutex<Option<String>>,
    transient: OutageLog,
}

impl ClientHealth {
    /// Called from a client context's error callback.
    pub(crate) fn observe(&self, client: &str, error: &KafkaError, reason: &str) {
        // A consumer hands its fatal errors out of `poll` as `MessageConsumptionFatal`.
        let fatal = matches!(error, KafkaError::MessageConsumptionFatal(_));
        match error.rdkafka_error_code() {
            _ if fatal => {
                tracing::error!(client, %error, reason, "fatal client error");
                self.fatal.store(true, Ordering::SeqCst);
            }
            Some(RDKafkaErrorCode::Fatal) => {
                tracing::error!(client, %error, reason, "fatal client error");
                self.fatal.store(true, Ordering::SeqCst);
            }
            Some(RDKafkaErrorCode::Authentication) => {
                tracing::error!(client, %error, reason, "authentication failed");
                self.ending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| format!("{client}: authentication failed: {reason}"));
            }
            _ => self.transient.observe(client, error, reason),
        }
    }

    /// The error that ends the thread, if a client reported one. `client` is asked for the
    /// details of a fatal error.
    pub(crate) fn take_fatal<C: ClientContext>(&self, client: &Client<C>) -> Option<StreamsError> {
        if let Some(text) = self
            .ending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(StreamsError::Kafka(text));
        }
        if !self.fatal.load(Ordering::SeqCst) {
            return None;
        }
        let (code, text) = client.fatal_error()?;
        Some(StreamsError::Kafka(format!(
            "fatal error ({code:?}): {text}"
        )))
    }

    /// Whether librdkafka raised a fatal error on `client` because a newer producer with the
    /// same transactional id took over (or the broker aborted our transaction after its
    /// timeout and bumped the epoch). Under exactly-once that is a task migration, not the
    /// end: Kafka Streams closes the tasks dirty, makes a new producer and rejoins.
    /// Asks the client itself, not the flag its error callback sets, so a call that just
    /// failed because of the fencing is recognised before the callback ran.
    pub(crate) fn is_fenced<C: ClientContext>(&self, client: &Client<C>) -> bool {
        client
            .fatal_error()
            .is_some_and(|(code, _)| is_fencing(code))
    }

    /// Whether a client reported transient errors (a broker outage, say) within `within`.
    pub(crate) fn recent_outage(&self, within: Duration) -> bool {
        self.transient
            .last_error()
            .is_some_and(|at| at.elapsed() < within)
    }

    /// Whether any client reported an error that ends the thread.
    pub(crate) fn is_failed(&self) -> bool {
        self.fatal.load(Ordering::SeqCst)
            || self
                .ending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }
}

/// The context of a short-lived client (the start-up metadata reads, the reset tool): its
/// errors go to a [`ClientHealth`], so a caller waiting on a request can tell a failed login,
/// which librdkafka retries forever, from a slow broker.
#[derive(Default)]
pub(crate) struct WatchedClient {
    health: ClientHealth,
}

impl WatchedClient {
    /// The error that makes waiting pointless (a failed authentication), once the client's
    /// events were served.
    pub(crate) fn ending_error(&self) -> Option<StreamsError> {
        self.health
            .ending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(StreamsError::Kafka)
    }
}

impl ClientContext for WatchedClient {
    fn error(&self, error: KafkaError, reason: &str) {
        self.health.observe("client", &error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for WatchedClient {}

/// A producer error that means another producer (or the broker, on our behalf) took over our
/// transactional id.
pub(crate) fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// Logs a run of client errors (a broker outage, say) once when it starts, then a summary
/// every [`OutageLog::REPORT_EVERY`], instead of a line per error: librdkafka reports every
/// failed connection attempt, several a second while a broker is away.
#[derive(Default)]
pub(crate) struct OutageLog {
    run: Mutex<Option<ErrorRun>>,
}

struct ErrorRun {
    started: Instant,
    last_error: Instant,
    last_report: Instant,
    errors: u64,
}

impl OutageLog {
    const REPORT_EVERY: Duration = Duration::from_secs(30);

    /// When the last error was reported.
    pub(crate) fn last_error(&self) -> Option<Instant> {
        self.run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|r| r.last_error)
    }
    /// Errors further apart than this belong to separate runs.
    const QUIET: Duration = Duration::from_secs(60);

    pub(crate) fn observe(&self, client: &str, error: &KafkaError, reason: &str) {
        let now = Instant::now();
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        match run.as_mut() {
            Some(r) if now.duration_since(r.last_error) < Self::QUIET => {
                r.errors += 1;
                r.last_error = now;
                if now.duration_since(r.last_report) >= Self::REPORT_EVERY {
                    r.last_report = now;
                    tracing::warn!(client, %error, reason, errors = r.errors,
                        lasted = ?now.duration_since(r.started),
                        "client errors go on (is the broker reachable?)");
                }
            }
            previous => {
                if let Some(r) = previous {
                    tracing::info!(client, errors = r.errors,
                        lasted = ?r.last_error.duration_since(r.started),
                        "an earlier run of client errors ended");
                }
                tracing::warn!(client, %error, reason,
                    "client error; further ones are summarised every 30 s while they go on");
                *run = Some(ErrorRun {
                    started: now,
                    last_error: now,
                    last_report: now,
                    errors: 1,
                });
            }
        }
    }
}
