//! Deadlock retries: InnoDB may pick any transaction as a deadlock victim
//! and roll all of it back, so running it again never writes twice.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bubble_core::{ErrorKind, Result};

/// Runs `attempt` again while it fails with a deadlock (`Conflict`), at most
/// `retries` more times, with a short randomised pause so the two sides of a
/// deadlock do not collide again.
pub(crate) async fn retry_deadlocks<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.kind() == ErrorKind::Conflict && tries < retries => {
                tries += 1;
                tracing::debug!(tries, "mysql: retrying after a deadlock");
                tokio::time::sleep(backoff(tries)).await;
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
