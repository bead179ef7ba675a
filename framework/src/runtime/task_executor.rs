//! [`process`]: one processing round over a thread's tasks, round-robin, a bounded number of
//! records per task at a time so that no task starves the others.

use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use super::commit_gate::CommitGate;
use super::tasks::Tasks;
use crate::error::StreamsError;

/// Records a task processes before the next task gets its turn.
const PER_TASK_TURN: usize = 100;

/// Processes up to about `budget` records over all tasks, round-robin. Returns how many; a
/// processor's commit request is passed on to `gate`.
pub(crate) fn process<C: ConsumerContext>(
    tasks: &mut Tasks,
    consumer: &BaseConsumer<C>,
    now_ms: i64,
    budget: usize,
    gate: &CommitGate,
) -> Result<usize, StreamsError> {
    let mut done = 0;
    let ids = tasks.ids();
    let (tasks, lag) = tasks.for_round(consumer);
    loop {
        let mut progressed = false;
        for id in &ids {
            let task = tasks.get_mut(id).expect("task exists");
            let mut n = 0;
            let result = loop {
                if n >= PER_TASK_TURN {
                    break Ok(());
                }
                match task.process(now_ms, &lag) {
                    Ok(true) => n += 1,
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            if task.take_commit_request() {
                gate.request();
            }
            result?;
            done += n;
            progressed |= n > 0;
        }
        if !progressed || done >= budget {
            return Ok(done);
        }
    }
}

/// Fires the due wall-clock punctuators of every task.
pub(crate) fn punctuate_wall_clock(tasks: &mut Tasks, now_ms: i64) -> Result<(), StreamsError> {
    for task in tasks.iter_mut() {
        task.punctuate_wall_clock(now_ms)?;
    }
    Ok(())
}
