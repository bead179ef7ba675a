//! Waiting for a condition on a real broker or a running application, with one failure
//! message shape: what was awaited, for how long, and what was seen last.
//!
//! A check returns `Ok(value)` when the condition holds and `Err(what it sees now)` when it
//! does not yet; it is asked again every [`POLL`] until [`eventually`] (blocking) or
//! [`eventually_async`] (inside a tokio runtime) gives up and panics.
//!
//! ```
//! use std::time::Duration;
//! use streamtime_integration_tests::wait::eventually;
//!
//! let mut polls = 0;
//! let seen = eventually(Duration::from_secs(5), "the third poll", || {
//!     polls += 1;
//!     if polls == 3 { Ok(polls) } else { Err(format!("{polls} polls")) }
//! });
//! assert_eq!(seen, 3);
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

/// How long most waits in the suite may take: long enough for a broker on a loaded 2-core
/// machine to rebalance a group and commit, short enough that a hang fails the run.
pub const WAIT: Duration = Duration::from_secs(120);

/// How often a check is asked again.
pub const POLL: Duration = Duration::from_millis(100);

/// Asks `check` until it returns `Ok`, and returns its value. Panics after `timeout`,
/// naming `what` and the last thing `check` saw.
pub fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => timed_out(timeout, what, &seen),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// [`eventually`] for checks that await (a consumer's read, an admin call), sleeping
/// between polls without blocking the runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use streamtime_integration_tests::wait::eventually_async;
///
/// let ready = std::sync::atomic::AtomicBool::new(true);
/// let ready = &ready;
/// eventually_async(Duration::from_secs(1), "the flag", move || async move {
///     ready.load(std::sync::atomic::Ordering::SeqCst).then_some(()).ok_or("unset".to_string())
/// })
/// .await;
/// # }
/// ```
pub async fn eventually_async<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => timed_out(timeout, what, &seen),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

fn timed_out(timeout: Duration, what: &str, seen: &str) -> ! {
    panic!("waited {timeout:?} for {what}; last seen: {seen}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_never_holds_fails_naming_what_it_waited_for_and_what_it_saw() {
        let failure = std::panic::catch_unwind(|| {
            eventually(Duration::from_millis(250), "the answer", || {
                Err::<(), _>("41".to_string())
            })
        })
        .unwrap_err();
        let message = failure.downcast_ref::<String>().unwrap();
        assert!(message.contains("for the answer"), "{message}");
        assert!(message.contains("last seen: 41"), "{message}");
    }
}
