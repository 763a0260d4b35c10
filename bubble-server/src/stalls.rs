//! The stall watch: a task that asks the runtime to wake it every 10 ms
//! and records how late each wake-up is. A late wake-up means no worker
//! thread could run it: something held a thread without yielding (a
//! blocking call, a long synchronous loop, a big lock). The lateness goes
//! to `bubble_runtime_stall_seconds`; one of 100 ms or more is logged with
//! its length and the runtime's queue (tasks ready to run that no worker
//! has taken yet) and task count, so a latency tail can be matched to its
//! stall and a saturated runtime told from a held worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the watch asks to be woken.
const PERIOD: Duration = Duration::from_millis(10);

/// Stalls at least this long are logged.
const LOGGED: Duration = Duration::from_millis(100);

/// Watches the runtime it runs on until `shutdown`.
pub async fn watch(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PERIOD);
    // After a stall, measure from the late tick on rather than firing the
    // missed ticks back to back (each would count the same stall again).
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            due = ticks.tick() => {
                // `due` is when this tick was scheduled to fire.
                let late = Instant::now().saturating_duration_since(due);
                metrics.runtime_stalls.observe(late);
                if late >= LOGGED {
                    // A deep queue says the runtime was saturated (the tick
                    // waited its turn behind ready tasks); a shallow one, that
                    // something held a worker.
                    let runtime = tokio::runtime::Handle::current().metrics();
                    tracing::warn!(
                        stall_ms = late.as_millis() as u64,
                        queued = runtime.global_queue_depth(),
                        tasks = runtime.num_alive_tasks(),
                        "the async runtime stalled: no worker thread could run a timer for this long"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count of the `le` bucket of the stall histogram in `text`.
    fn bucket(text: &str, le: &str) -> u64 {
        let prefix = format!("bubble_runtime_stall_seconds_bucket{{le=\"{le}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no bucket {le} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_thread_held_without_yielding_is_recorded_as_a_stall() {
        let metrics = Arc::new(Metrics::new());
        let shutdown = CancellationToken::new();
        let watching = tokio::spawn(watch(metrics.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The only worker thread is held: the watch's next tick cannot run
        // until this returns, at least 300 ms after it was due.
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        watching.await.unwrap();
        let text = metrics.render();
        let over_quarter_second = bucket(&text, "+Inf") - bucket(&text, "0.25");
        assert!(
            over_quarter_second >= 1,
            "the 300 ms stall is in a bucket above 0.25 s:\n{text}"
        );
        assert!(
            bucket(&text, "0.005") >= 3,
            "the ticks before it were on time"
        );
    }
}
