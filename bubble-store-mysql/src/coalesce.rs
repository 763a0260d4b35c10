//! Point reads that arrive together share one statement.
//!
//! Every 1:1 send reads the recipient's conversation row (the block check)
//! and every group send reads the group's roster: one round trip each, and
//! on MariaDB each statement costs far more in parsing, planning and the
//! network than the row it finds (`perf` had the block check's `SELECT` at
//! a third of `mariadbd`'s CPU in a closed 1:1 loop). A [`Coalescer`] sends
//! whatever keys are waiting as one `IN (…)` read, and keys asked for twice
//! (the sends of one busy group) are read once. Under light load a read
//! holds one key and goes out at once; under load, while [`IN_FLIGHT`]
//! reads are out, the next keys gather for one read. A read starts only
//! after every request in it was made, so it sees every write that was
//! committed before any of them.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use bubble_core::{Error, Result};

/// Reads of one kind out at once: one waits for a reply while the next
/// is sent, and the keys that come meanwhile gather for the read after.
const IN_FLIGHT: usize = 2;

struct Request<K, V> {
    key: K,
    reply: oneshot::Sender<Result<Option<V>>>,
}

/// Gathers point reads of one kind into reads of many keys. Dropping it
/// (with the last store clone) ends its task once the queue is empty.
pub(crate) struct Coalescer<K, V> {
    queue: mpsc::Sender<Request<K, V>>,
    what: &'static str,
}

impl<K, V> Coalescer<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts the task on the current runtime. `read` gets up to `max`
    /// distinct keys and answers with what it found; a key it does not
    /// answer was not there. `what` names the reads in errors.
    pub(crate) fn start<F, Fut>(what: &'static str, max: usize, read: F) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>>> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(max.max(1) * 4);
        tokio::spawn(gather(rx, max.max(1), Arc::new(read)));
        Coalescer { queue, what }
    }

    /// The value stored under `key`, if any: read with whatever other keys
    /// are waiting.
    pub(crate) async fn get(&self, key: K) -> Result<Option<V>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Request { key, reply }).await.map_err(|_| {
            Error::unavailable(format!("mysql: the {} reads have stopped", self.what))
        })?;
        answer.await.map_err(|_| {
            Error::internal(format!(
                "mysql: a read of {} stopped before answering",
                self.what
            ))
        })?
    }
}

async fn gather<K, V, F, Fut>(mut rx: mpsc::Receiver<Request<K, V>>, max: usize, read: Arc<F>)
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
    F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HashMap<K, V>>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot is what lets the next keys gather.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut waiting: HashMap<K, Vec<oneshot::Sender<Result<Option<V>>>>> = HashMap::new();
        waiting.entry(first.key).or_default().push(first.reply);
        while waiting.len() < max {
            match rx.try_recv() {
                Ok(more) => waiting.entry(more.key).or_default().push(more.reply),
                Err(_) => break,
            }
        }
        // Callers that gave up need no read.
        waiting.retain(|_, replies| {
            replies.retain(|r| !r.is_closed());
            !replies.is_empty()
        });
        if waiting.is_empty() {
            continue;
        }
        let read = read.clone();
        tokio::spawn(async move {
            let keys: Vec<K> = waiting.keys().cloned().collect();
            match read(keys).await {
                Ok(mut found) => {
                    for (key, replies) in waiting {
                        let value = found.remove(&key);
                        for reply in replies {
                            let _ = reply.send(Ok(value.clone()));
                        }
                    }
                }
                Err(e) => {
                    for reply in waiting.into_values().flatten() {
                        let _ = reply.send(Err(Error::new(e.kind(), e.message())));
                    }
                }
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// The keys of each read, in the order the reads went out.
    type ReadLog = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A coalescer over a table of numbers that records each read's keys
    /// and holds each read for `hold`.
    fn numbers(hold: Duration) -> (Coalescer<u32, String>, ReadLog) {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let log = reads.clone();
        let c = Coalescer::start("numbers", 8, move |mut keys: Vec<u32>| {
            keys.sort();
            log.lock().unwrap().push(keys.clone());
            async move {
                tokio::time::sleep(hold).await;
                if keys.contains(&13) {
                    return Err(Error::unavailable("13 breaks the read"));
                }
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 2 == 0)
                    .map(|k| (k, format!("n{k}")))
                    .collect())
            }
        });
        (c, reads)
    }

    #[tokio::test]
    async fn a_lone_read_answers_what_is_there_and_none_for_what_is_not() {
        let (c, reads) = numbers(Duration::ZERO);
        assert_eq!(c.get(2).await.unwrap(), Some("n2".into()));
        assert_eq!(c.get(3).await.unwrap(), None);
        assert_eq!(*reads.lock().unwrap(), vec![vec![2], vec![3]]);
    }

    #[tokio::test]
    async fn reads_that_wait_together_share_a_read_and_a_repeated_key_is_read_once() {
        let (c, reads) = numbers(Duration::from_millis(50));
        let c = Arc::new(c);
        // Two reads take both slots; the rest wait and gather.
        let mut asks = Vec::new();
        for key in [100, 101, 2, 4, 4, 5, 6, 4] {
            let c = c.clone();
            asks.push(tokio::spawn(async move { c.get(key).await }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut answers = Vec::new();
        for ask in asks {
            answers.push(ask.await.unwrap().unwrap());
        }
        let want: Vec<Option<String>> = [100, 101, 2, 4, 4, 5, 6, 4]
            .iter()
            .map(|k| (k % 2 == 0).then(|| format!("n{k}")))
            .collect();
        assert_eq!(answers, want);
        let reads = reads.lock().unwrap().clone();
        assert_eq!(reads[..2], [vec![100], vec![101]], "{reads:?}");
        assert_eq!(
            reads[2],
            vec![2, 4, 5, 6],
            "the waiting keys, once each: {reads:?}"
        );
        assert_eq!(reads.len(), 3, "{reads:?}");
    }

    #[tokio::test]
    async fn a_failed_read_fails_every_caller_in_it_with_its_kind_and_the_next_read_works() {
        let (c, _) = numbers(Duration::from_millis(20));
        let c = Arc::new(c);
        let mut asks = Vec::new();
        for key in [100, 101, 13, 2] {
            let c = c.clone();
            asks.push(tokio::spawn(async move { c.get(key).await }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut results = Vec::new();
        for ask in asks {
            results.push(ask.await.unwrap());
        }
        for failed in &results[2..] {
            let e = failed.as_ref().expect_err("13 broke their read");
            assert_eq!(e.kind(), bubble_core::ErrorKind::Unavailable);
            assert!(e.message().contains("13 breaks"), "{e}");
        }
        assert_eq!(c.get(2).await.unwrap(), Some("n2".into()));
    }
}
