//! The private-key half of full handshakes, run off the async workers.
//!
//! Opening a hello is an RSA decryption: about a millisecond of CPU with a
//! 3072-bit key, in one poll. Tokio looks at its timers and sockets only
//! between polls (and on a busy worker only every few dozen), so when a
//! hundred clients reconnected at once their decryptions, run on the
//! workers, held every other connection for 100–300 ms (the stalls of the
//! growth runs; docs/benchmarks.md). Here each one runs on a thread of the
//! blocking pool instead, where the kernel shares the cores between it and
//! the workers, and no more run at once than there are cores, so a burst
//! cannot take every core either.

use tokio::sync::Semaphore;

/// A bounded number of blocking-pool threads for private-key work.
pub struct KeyWork {
    permits: Semaphore,
}

impl KeyWork {
    /// At most `parallel` jobs at once (at least one).
    pub fn new(parallel: usize) -> KeyWork {
        KeyWork {
            permits: Semaphore::new(parallel.max(1)),
        }
    }

    /// One job at a time per core of this machine.
    pub fn per_core() -> KeyWork {
        KeyWork::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `job` on a blocking-pool thread once a permit is free, and
    /// gives back what it returns. A job that panics panics the caller.
    pub async fn run<T, F>(&self, job: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // Never closed, so acquiring only waits.
        let _permit = self.permits.acquire().await;
        match tokio::task::spawn_blocking(job).await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Fails a test that would otherwise hang.
    const HANG: Duration = Duration::from_secs(10);

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_leaves_the_runtime_free_to_run_its_other_tasks() {
        // The job waits for a task of the same one-thread runtime: had it
        // run on that thread, the task could never run.
        let work = KeyWork::new(1);
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(7).unwrap();
        });
        let got = tokio::time::timeout(HANG, work.run(move || rx.recv().unwrap()))
            .await
            .expect("the job ran on the runtime's own thread and blocked it");
        assert_eq!(got, 7);
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_it_has_permits() {
        let work = Arc::new(KeyWork::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (work, running, most) = (work.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    work.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            tokio::time::timeout(HANG, job).await.unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} jobs ran at once");
    }

    #[tokio::test]
    #[should_panic(expected = "bad key")]
    async fn a_job_that_panics_panics_its_caller() {
        KeyWork::new(1).run(|| panic!("bad key")).await
    }
}
