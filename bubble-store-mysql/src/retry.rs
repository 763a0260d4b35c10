//! Running a call again: after InnoDB chose it as a deadlock victim (or
//! Galera's certification rejected it), and on the next node after the
//! current one failed, when that is safe.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use sqlx::mysql::MySqlPool;

use bubble_core::{ErrorKind, Result};

use crate::error::commit_outcome_unknown;
use crate::nodes::Nodes;

/// Whether a call that failed because its node did may run again on the
/// next node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Always: it reads, or writing it twice stores it once (a dedup key).
    Always,
    /// Unless it failed at COMMIT with the outcome unknown: failing before
    /// COMMIT rolled it back (on Galera nothing even left the node), so
    /// running it again never writes twice.
    BeforeCommit,
    /// Never: a single statement whose connection was lost may have been
    /// applied. The caller gets `Unavailable` and decides; its next call
    /// goes to the next node.
    Never,
}

/// Runs `attempt` on the current node's pool. While it fails with a
/// deadlock or certification conflict (`Conflict`: the whole transaction
/// was rolled back) it runs again, at most `deadlock_retries` more times,
/// after a short randomised pause so the two sides do not collide again.
/// When it fails because the node did (`Unavailable`), the store moves to
/// the next node, and the attempt runs once more there if `replay` allows.
pub(crate) async fn run<T, F, Fut>(
    nodes: &Nodes,
    deadlock_retries: u32,
    replay: Replay,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(MySqlPool) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut deadlocks = 0;
    let mut moved = false;
    loop {
        let (node, pool) = nodes.current();
        match attempt(pool.clone()).await {
            Err(e) if e.kind() == ErrorKind::Conflict && deadlocks < deadlock_retries => {
                deadlocks += 1;
                tracing::debug!(deadlocks, "mysql: retrying after a deadlock");
                tokio::time::sleep(backoff(deadlocks)).await;
            }
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                nodes.failed(node);
                let safe = match replay {
                    Replay::Always => true,
                    Replay::BeforeCommit => !commit_outcome_unknown(&e),
                    Replay::Never => false,
                };
                if moved || !safe || nodes.len() < 2 {
                    return Err(e);
                }
                moved = true;
                tracing::debug!("mysql: running the call again on the next node");
            }
            other => return other,
        }
    }
}

fn backoff(tries: u32) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(tries);
    let base_us = 1_000u64 << tries.min(6);
    Duration::from_micros(base_us + h.finish() % base_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{commit_err, map_err};
    use bubble_core::Error;
    use std::io;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Three nodes whose pools never connect (nothing here uses them).
    fn three_nodes() -> Nodes {
        let urls = ["mysql://a/db", "mysql://b/db", "mysql://c/db"];
        let pools = urls
            .iter()
            .map(|u| MySqlPool::connect_lazy(u).unwrap())
            .collect();
        Nodes::new(pools, &urls, 0)
    }

    fn lost() -> sqlx::Error {
        sqlx::Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "gone"))
    }

    /// Runs a call that fails with `error` on its first attempt and succeeds
    /// after; says how many attempts ran and where the store ended up.
    async fn fail_once(replay: Replay, error: fn() -> Error) -> (u32, bool, usize) {
        let nodes = three_nodes();
        let attempts = AtomicU32::new(0);
        let result = run(&nodes, 5, replay, |_pool| {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move { if n == 0 { Err(error()) } else { Ok(()) } }
        })
        .await;
        (
            attempts.load(Ordering::SeqCst),
            result.is_ok(),
            nodes.current().0,
        )
    }

    #[tokio::test]
    async fn a_call_whose_node_failed_before_commit_runs_again_on_the_next_node() {
        let before = || map_err(lost());
        assert_eq!(fail_once(Replay::Always, before).await, (2, true, 1));
        assert_eq!(fail_once(Replay::BeforeCommit, before).await, (2, true, 1));
    }

    #[tokio::test]
    async fn a_commit_with_unknown_outcome_runs_again_only_when_idempotent() {
        let at_commit = || commit_err(lost());
        assert_eq!(fail_once(Replay::Always, at_commit).await, (2, true, 1));
        assert_eq!(
            fail_once(Replay::BeforeCommit, at_commit).await,
            (1, false, 1),
            "the store moved on, but the caller decides about the write"
        );
    }

    #[tokio::test]
    async fn a_write_that_is_never_replayed_still_moves_the_store() {
        assert_eq!(
            fail_once(Replay::Never, || map_err(lost())).await,
            (1, false, 1)
        );
    }

    #[tokio::test]
    async fn a_deadlock_is_retried_on_the_same_node() {
        let deadlock = || Error::new(ErrorKind::Conflict, "deadlock");
        assert_eq!(fail_once(Replay::Never, deadlock).await, (2, true, 0));
    }

    #[tokio::test]
    async fn failures_of_one_node_move_the_store_once() {
        let nodes = three_nodes();
        nodes.failed(0);
        nodes.failed(0);
        assert_eq!(nodes.current().0, 1, "the second report is stale");
        nodes.failed(1);
        nodes.failed(2);
        assert_eq!(nodes.current().0, 0, "round the list");
    }

    #[test]
    fn backoff_grows_and_stays_short() {
        for tries in 1..10 {
            let d = backoff(tries);
            assert!(
                d >= Duration::from_millis(1) && d < Duration::from_millis(130),
                "{d:?}"
            );
        }
    }
}
