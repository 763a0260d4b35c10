//! Circuit breakers: one per backend, so that a backend that is down is
//! answered `Unavailable` at once instead of after every caller's own
//! timeouts and retries.
//!
//! ```text
//!            `failures` calls in a row unavailable
//!   Closed ───────────────────────────────────────▶ Open ◀──────┐
//!     ▲                                              │          │ the probe fails
//!     │ the probe succeeds                 cool-down │          │
//!     └──────────────────────────────────── HalfOpen ◀┘─────────┘
//!                                     (one call goes through)
//! ```
//!
//! Only [`ErrorKind::Unavailable`] and [`ErrorKind::Timeout`] count as
//! failures: any other answer (not found, a duplicate, bad input) proves the
//! backend is there. A call its caller gives up on (the future is dropped,
//! e.g. at the request deadline) after running at least
//! [`BreakerConfig::abandoned_after`] counts as a failure too: a backend that
//! accepts connections but never answers (a blackhole) opens the breaker as
//! surely as one that refuses them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Unavailability failures in a row that open the breaker.
    pub failures: u32,
    /// How long an open breaker fails calls at once before it lets one
    /// probe call through.
    pub cool_down: Duration,
    /// A call dropped unfinished after running this long counts as a
    /// failure (the caller stopped waiting for a backend that did not answer).
    pub abandoned_after: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cool_down: Duration::from_secs(1),
            abandoned_after: Duration::from_millis(500),
        }
    }
}

/// Where a breaker is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once with `Unavailable`.
    Open,
    /// One probe call is running; the others fail at once.
    HalfOpen,
}

impl BreakerState {
    /// The state as a number for a gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// Told of every state change (metrics); called under the breaker's lock,
/// so it must be quick and must not call the breaker.
pub type StateListener = Arc<dyn Fn(BreakerState) + Send + Sync>;

/// One backend's circuit breaker. Share it (`Arc`) between every port of
/// the backend.
pub struct Breaker {
    /// The backend's name, in errors and logs.
    name: String,
    config: BreakerConfig,
    state: Mutex<State>,
    /// `state` is `Closed { failures: 0 }`: written under its lock, read
    /// without it, so a call to a healthy backend (nearly every call) takes
    /// no lock on its way in or out. Every store call goes through here.
    healthy: AtomicBool,
    listener: Option<StateListener>,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, why: String },
    HalfOpen,
}

impl State {
    fn public(&self) -> BreakerState {
        match self {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

/// How one call ended, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The backend answered (whatever it said).
    Answered,
    /// Unavailable, timed out, or abandoned after a long wait.
    Failed,
    /// Dropped early: says nothing about the backend.
    Abandoned,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    /// A closed breaker for the backend called `name`.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Breaker {
        Breaker {
            name: name.into(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            healthy: AtomicBool::new(true),
            listener: None,
        }
    }

    /// Calls `listener` with the new state on every change.
    pub fn with_listener(mut self, listener: StateListener) -> Breaker {
        self.listener = Some(listener);
        self
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the breaker is now.
    pub fn state(&self) -> BreakerState {
        self.state.lock().public()
    }

    /// Runs `call` unless the breaker is open, and learns from how it ends.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        let probe = self.admit()?;
        let mut running = Running {
            breaker: self,
            probe,
            started: Instant::now(),
            finished: false,
        };
        let result = call.await;
        running.finished = true;
        let outcome = match &result {
            Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
                Outcome::Failed
            }
            _ => Outcome::Answered,
        };
        self.record(probe, outcome, result.as_ref().err());
        result
    }

    /// Lets a call through (`Ok(true)`: as the probe) or refuses it.
    fn admit(&self) -> Result<bool> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut state = self.state.lock();
        match &*state {
            State::Closed { .. } => Ok(false),
            State::Open { until, .. } if Instant::now() >= *until => {
                self.set(&mut state, State::HalfOpen);
                Ok(true)
            }
            State::Open { until, why } => Err(Error::unavailable(format!(
                "{} is unavailable ({why}); calls fail at once for {} ms more, then one \
                 probe tries it; retry later",
                self.name,
                until.saturating_duration_since(Instant::now()).as_millis()
            ))),
            State::HalfOpen => Err(Error::unavailable(format!(
                "{} is unavailable; a probe call is checking whether it is back; retry later",
                self.name
            ))),
        }
    }

    fn record(&self, probe: bool, outcome: Outcome, error: Option<&Error>) {
        // An answer from a healthy backend changes nothing. (A failure
        // recorded meanwhile may count first: either order is one the
        // calls could have ended in.)
        if !probe && outcome == Outcome::Answered && self.healthy.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        let open = |why: String| State::Open {
            until: Instant::now() + self.config.cool_down,
            why,
        };
        let why = || match error {
            Some(e) => format!("last error: {}", e.message()),
            None => format!(
                "a call got no answer within {} ms",
                self.config.abandoned_after.as_millis()
            ),
        };
        if probe {
            let next = match outcome {
                Outcome::Answered => State::Closed { failures: 0 },
                Outcome::Failed => open(format!("the probe failed, {}", why())),
                // Nothing learnt: the next call probes at once.
                Outcome::Abandoned => State::Open {
                    until: Instant::now(),
                    why: "the probe was abandoned".into(),
                },
            };
            self.set(&mut state, next);
            return;
        }
        // Calls admitted before the breaker opened say nothing about now.
        let State::Closed { failures } = &mut *state else {
            return;
        };
        match outcome {
            Outcome::Answered => {
                *failures = 0;
                self.healthy.store(true, Ordering::Release);
            }
            Outcome::Abandoned => {}
            Outcome::Failed => {
                *failures += 1;
                self.healthy.store(false, Ordering::Release);
                let failures = *failures;
                if failures >= self.config.failures {
                    let why = format!("{failures} calls in a row failed, {}", why());
                    self.set(&mut state, open(why));
                }
            }
        }
    }

    /// Moves to `next`, telling the log and the listener when the state changes.
    fn set(&self, state: &mut State, next: State) {
        let (from, to) = (state.public(), next.public());
        match (&next, from) {
            (State::Open { why, .. }, BreakerState::Closed) => tracing::warn!(
                backend = %self.name,
                "backend unavailable ({why}): failing calls at once, probing every {} ms",
                self.config.cool_down.as_millis()
            ),
            (State::Closed { .. }, _) if from != BreakerState::Closed => {
                tracing::info!(backend = %self.name, "backend answers again: breaker closed")
            }
            _ => {}
        }
        *state = next;
        self.healthy.store(
            matches!(state, State::Closed { failures: 0 }),
            Ordering::Release,
        );
        if from != to
            && let Some(listener) = &self.listener
        {
            listener(to);
        }
    }
}

/// A call in flight: if its future is dropped before it ends, the drop
/// tells the breaker (a probe must never stay in flight for ever).
struct Running<'a> {
    breaker: &'a Breaker,
    probe: bool,
    started: Instant,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let outcome = if self.started.elapsed() >= self.breaker.config.abandoned_after {
            Outcome::Failed
        } else {
            Outcome::Abandoned
        };
        self.breaker.record(self.probe, outcome, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const COOL_DOWN: Duration = Duration::from_secs(1);

    fn breaker() -> Breaker {
        Breaker::new(
            "db",
            BreakerConfig {
                failures: 3,
                cool_down: COOL_DOWN,
                abandoned_after: Duration::from_millis(500),
            },
        )
    }

    async fn fail(b: &Breaker) -> Error {
        b.call(async { Err::<(), _>(Error::unavailable("connection refused")) })
            .await
            .unwrap_err()
    }

    async fn succeed(b: &Breaker) -> Result<()> {
        b.call(async { Ok(()) }).await
    }

    async fn open(b: &Breaker) {
        for _ in 0..3 {
            fail(b).await;
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_breaker_runs_every_call_and_a_success_resets_the_count() {
        let b = breaker();
        fail(&b).await;
        fail(&b).await;
        succeed(&b).await.unwrap();
        fail(&b).await;
        fail(&b).await;
        assert_eq!(b.state(), BreakerState::Closed, "never 3 in a row");
    }

    #[tokio::test(start_paused = true)]
    async fn unavailability_failures_in_a_row_open_it_and_calls_then_fail_without_running() {
        let b = breaker();
        open(&b).await;
        let ran = AtomicUsize::new(0);
        let err = b
            .call(async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the call never ran");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.message().starts_with("db is unavailable"), "{err}");
        assert!(err.message().contains("connection refused"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_count_as_failures_too() {
        let b = breaker();
        for _ in 0..3 {
            let _ = b
                .call(async { Err::<(), _>(Error::new(ErrorKind::Timeout, "no answer")) })
                .await;
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_are_errors_prove_the_backend_is_there() {
        let b = breaker();
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::InvalidInput,
            ErrorKind::Conflict,
            ErrorKind::Internal,
        ] {
            fail(&b).await;
            fail(&b).await;
            let _ = b
                .call(async { Err::<(), _>(Error::new(kind, "an answer")) })
                .await;
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_through_and_the_others_still_fail_at_once() {
        let b = Arc::new(breaker());
        open(&b).await;
        tokio::time::advance(COOL_DOWN).await;
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let probe = tokio::spawn({
            let b = b.clone();
            async move {
                b.call(async {
                    hold.await.unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::yield_now().await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let other = succeed(&b).await.unwrap_err();
        assert!(other.message().contains("probe"), "{other}");
        release.send(()).unwrap();
        probe.await.unwrap().unwrap();
        assert_eq!(b.state(), BreakerState::Closed, "the probe succeeded");
        succeed(&b).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_it_for_another_cool_down() {
        let b = breaker();
        open(&b).await;
        tokio::time::advance(COOL_DOWN).await;
        fail(&b).await;
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(COOL_DOWN / 2).await;
        assert!(succeed(&b).await.is_err(), "still cooling down");
        tokio::time::advance(COOL_DOWN / 2).await;
        succeed(&b).await.unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_abandoned_after_a_long_wait_is_a_failure_and_a_quick_one_is_nothing() {
        let b = breaker();
        let hang = || b.call(std::future::pending::<Result<()>>());
        for _ in 0..3 {
            let gave_up = tokio::time::timeout(Duration::from_millis(100), hang()).await;
            assert!(gave_up.is_err());
        }
        assert_eq!(b.state(), BreakerState::Closed, "100 ms says nothing");
        for _ in 0..3 {
            let _ = tokio::time::timeout(Duration::from_millis(600), hang()).await;
        }
        assert_eq!(b.state(), BreakerState::Open, "a blackhole opens it");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_lets_the_next_call_probe() {
        let b = breaker();
        open(&b).await;
        tokio::time::advance(COOL_DOWN).await;
        let _ = tokio::time::timeout(
            Duration::from_millis(10),
            b.call(std::future::pending::<Result<()>>()),
        )
        .await;
        assert_eq!(b.state(), BreakerState::Open);
        succeed(&b).await.unwrap();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn every_state_change_is_told_to_the_listener_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let b = breaker().with_listener({
            let seen = seen.clone();
            Arc::new(move |s| seen.lock().push(s))
        });
        open(&b).await;
        let _ = succeed(&b).await;
        tokio::time::advance(COOL_DOWN).await;
        succeed(&b).await.unwrap();
        assert_eq!(
            *seen.lock(),
            [
                BreakerState::Open,
                BreakerState::HalfOpen,
                BreakerState::Closed
            ]
        );
    }
}
