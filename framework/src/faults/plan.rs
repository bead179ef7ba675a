//! [`FaultPlan`]: which point fails how at which pass, with the pass counters it shares among
//! its clones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::FaultPoint;

impl FaultPoint {
    const ALL: [(FaultPoint, &'static str); 10] = [
        (FaultPoint::Send, "send"),
        (
            FaultPoint::SendInFailedTransaction,
            "send.in_failed_transaction",
        ),
        (FaultPoint::Flush, "flush"),
        (FaultPoint::CommitOffsets, "commit.offsets"),
        (FaultPoint::CommitTransaction, "commit.transaction"),
        (FaultPoint::AbortTransaction, "abort.transaction"),
        (FaultPoint::StoreFlush, "store.flush"),
        (FaultPoint::Process, "process"),
        (FaultPoint::Restore, "restore"),
        (FaultPoint::GlobalApply, "global.apply"),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }
}

/// What happens at the chosen pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The step fails as it would on a real error (a refused send, a flush or commit that
    /// times out, a store write error, a processing error).
    Fail,
    /// The step panics, as user code or a bug would.
    Panic,
    /// The process aborts on the spot, like a SIGKILL at exactly that point.
    Abort,
}

impl FaultAction {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "fail" => Some(FaultAction::Fail),
            "panic" => Some(FaultAction::Panic),
            "abort" => Some(FaultAction::Abort),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Armed {
    point: FaultPoint,
    /// 1-based: the first pass is 1.
    pass: u64,
    action: FaultAction,
    passes: AtomicU64,
}

/// Faults to inject: each fires once, at its pass through its point. Clones share the pass
/// counters, so a plan given to an application counts over all its threads.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    armed: Arc<Vec<Armed>>,
}

impl PartialEq for FaultPlan {
    fn eq(&self, other: &Self) -> bool {
        self.armed.len() == other.armed.len()
            && self
                .armed
                .iter()
                .zip(other.armed.iter())
                .all(|(a, b)| (a.point, a.pass, a.action) == (b.point, b.pass, b.action))
    }
}

impl FaultPlan {
    /// A plan with no faults.
    ///
    /// ```
    /// assert_eq!(streamtime::faults::FaultPlan::new(), Default::default());
    /// ```
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Adds a fault: `action` at the `pass`-th time (1 for the first) the runtime passes
    /// `point`.
    ///
    /// ```
    /// use streamtime::faults::{FaultAction, FaultPlan, FaultPoint};
    /// let plan = FaultPlan::new().at(FaultPoint::Process, 500, FaultAction::Panic);
    /// assert_eq!(plan, FaultPlan::parse("process=panic@500").unwrap());
    /// ```
    pub fn at(self, point: FaultPoint, pass: u64, action: FaultAction) -> Self {
        let mut armed: Vec<Armed> = self
            .armed
            .iter()
            .map(|a| Armed {
                point: a.point,
                pass: a.pass,
                action: a.action,
                passes: AtomicU64::new(0),
            })
            .collect();
        armed.push(Armed {
            point,
            pass: pass.max(1),
            action,
            passes: AtomicU64::new(0),
        });
        FaultPlan {
            armed: Arc::new(armed),
        }
    }

    /// Reads a plan from `point=action@pass` items separated by commas. Points: `send`,
    /// `flush`, `commit.offsets`, `commit.transaction`, `abort.transaction`, `store.flush`,
    /// `process`, `restore`; actions:
    /// `fail`, `panic`, `abort`.
    ///
    /// ```
    /// use streamtime::faults::FaultPlan;
    /// assert!(FaultPlan::parse("send=fail@10,flush=fail@2").is_ok());
    /// let err = FaultPlan::parse("commit=abort@1").unwrap_err();
    /// assert!(err.contains("unknown fault point 'commit'"), "{err}");
    /// ```
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut plan = FaultPlan::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = || format!("fault '{item}' is not point=action@pass");
            let (point, rest) = item.split_once('=').ok_or_else(bad)?;
            let (action, pass) = rest.split_once('@').ok_or_else(bad)?;
            let point = FaultPoint::parse(point.trim()).ok_or_else(|| {
                let known: Vec<&str> = FaultPoint::ALL.iter().map(|(_, n)| *n).collect();
                format!(
                    "unknown fault point '{}' (known: {})",
                    point.trim(),
                    known.join(", ")
                )
            })?;
            let action = FaultAction::parse(action.trim()).ok_or_else(|| {
                format!(
                    "unknown fault action '{}' (fail, panic or abort)",
                    action.trim()
                )
            })?;
            let pass = pass
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("fault '{item}': the pass is not a number"))?;
            plan = plan.at(point, pass, action);
        }
        Ok(plan)
    }

    /// The plan in the `STREAMTIME_FAULTS` environment variable (see
    /// [`parse`](Self::parse)); `None` when it is not set.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var("STREAMTIME_FAULTS") {
            Ok(spec) => Self::parse(&spec)
                .map(Some)
                .map_err(|e| format!("STREAMTIME_FAULTS: {e}")),
            Err(_) => Ok(None),
        }
    }

    /// Counts a pass through `point` and acts when a fault is due: panics, aborts, or
    /// returns `true` for the caller to fail.
    pub(crate) fn pass(&self, point: FaultPoint) -> bool {
        let mut fail = false;
        for armed in self.armed.iter().filter(|a| a.point == point) {
            let n = armed.passes.fetch_add(1, Ordering::Relaxed) + 1;
            if n != armed.pass {
                continue;
            }
            tracing::warn!(?point, pass = n, action = ?armed.action, "injecting a fault");
            match armed.action {
                FaultAction::Fail => fail = true,
                FaultAction::Panic => panic!("injected panic at {point:?}, pass {n}"),
                FaultAction::Abort => std::process::abort(),
            }
        }
        fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_once_at_its_pass() {
        let plan = FaultPlan::new().at(FaultPoint::Flush, 3, FaultAction::Fail);
        let fired: Vec<bool> = (0..5).map(|_| plan.pass(FaultPoint::Flush)).collect();
        assert_eq!(fired, [false, false, true, false, false]);
        assert!(!plan.pass(FaultPoint::Send));
    }

    #[test]
    fn clones_share_the_pass_count() {
        let plan = FaultPlan::new().at(FaultPoint::Send, 2, FaultAction::Fail);
        let other = plan.clone();
        assert!(!plan.pass(FaultPoint::Send));
        assert!(other.pass(FaultPoint::Send));
    }

    #[test]
    fn a_panic_fault_panics_with_the_point_and_pass() {
        let plan = FaultPlan::new().at(FaultPoint::Process, 1, FaultAction::Panic);
        let panic = std::panic::catch_unwind(|| plan.pass(FaultPoint::Process)).unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, "injected panic at Process, pass 1");
    }

    #[test]
    fn malformed_plans_are_refused_with_what_is_wrong() {
        for (spec, expected) in [
            ("send", "is not point=action@pass"),
            ("send=explode@1", "unknown fault action 'explode'"),
            ("send=fail@x", "the pass is not a number"),
        ] {
            let err = FaultPlan::parse(spec).unwrap_err();
            assert!(err.contains(expected), "{spec}: {err}");
        }
        assert_eq!(FaultPlan::parse(" ").unwrap(), FaultPlan::new());
    }
}
