//! The Processor API: user processors, the context they run in, and punctuation.
//!
//! A [`Processor`] receives one typed record at a time and forwards zero or more records to
//! its children through its [`ProcessorContext`]. Forwarding is a synchronous, depth-first
//! call: when `forward` returns, every downstream node (down to the sinks) has handled the
//! record.
//!
//! ```
//! use streamtime::{Processor, ProcessorContext, ProcessResult, Record};
//!
//! /// Forwards each word of a line as its own record.
//! struct Words;
//!
//! impl Processor<String, String, String, String> for Words {
//!     fn process(&mut self, ctx: &mut ProcessorContext<String, String>,
//!                record: Record<String, String>) -> ProcessResult {
//!         for word in record.value.split_whitespace() {
//!             ctx.forward(record.clone().with_key(word.to_string()).with_value(word.to_string()))?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```

pub(crate) mod children;
pub(crate) mod context;
pub(crate) mod node;

pub use context::ProcessorContext;

use crate::error::ProcessResult;
use crate::record::Record;

/// When a punctuator fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// When the task's stream time (driven by record timestamps) reaches the schedule.
    StreamTime,
    /// When wall-clock time reaches the schedule.
    WallClockTime,
}

/// Identifies a scheduled punctuator, for [`ProcessorContext::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PunctuatorId(pub(crate) u64);

/// A punctuation handed to [`Processor::punctuate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punctuation {
    /// Which schedule fired.
    pub id: PunctuatorId,
    /// Its type.
    pub kind: PunctuationType,
    /// The punctuation time: current stream time or wall-clock time (ms). Records forwarded
    /// from a punctuator should carry it.
    pub timestamp: i64,
}

/// A node of the processing graph that turns input records into output records.
///
/// `KIn`/`VIn` are the input key and value types; `KOut`/`VOut` the types it forwards.
pub trait Processor<KIn, VIn, KOut, VOut>: 'static {
    /// Called once before the first record; may schedule punctuators.
    fn init(&mut self, _ctx: &mut ProcessorContext<KOut, VOut>) -> ProcessResult {
        Ok(())
    }

    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> ProcessResult;

    /// Called when a punctuator scheduled by this processor fires.
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<KOut, VOut>,
        _punctuation: Punctuation,
    ) -> ProcessResult {
        Ok(())
    }

    /// Called at every commit, before the task's stores write out their caches and before
    /// the output and offsets are committed; nodes are called upstream first. A processor
    /// that holds updates back (as the DSL's aggregations do while their store caches them)
    /// forwards them here, so they commit with the input that caused them.
    fn before_commit(&mut self, _ctx: &mut ProcessorContext<KOut, VOut>) -> ProcessResult {
        Ok(())
    }

    /// Called once when the task closes.
    fn close(&mut self) {}
}
