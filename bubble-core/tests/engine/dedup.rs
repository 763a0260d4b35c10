//! Dedup by client message id: a retry gets the original ack and writes nothing.

use super::*;

#[tokio::test]
async fn a_retry_with_the_same_client_msg_id_gets_the_original_ack_and_writes_nothing() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, mut bob_q) = login(&e, "bob", "phone").await;
    let first = e.send(&alice, to_user("bob", "same", "hi")).await.unwrap();
    let retry = e.send(&alice, to_user("bob", "same", "hi")).await.unwrap();
    assert_eq!(retry.server_msg_id, first.server_msg_id);
    assert_eq!(retry.version, first.version);
    assert_eq!(retry.server_time, first.server_time);
    assert!(retry.duplicate && !first.duplicate);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
    assert_eq!(pushed_texts(&drain(&mut bob_q)), vec!["hi"], "pushed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_message_are_written_once() {
    let e = engine().await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let e = e.clone();
        let alice = alice.clone();
        handles.push(tokio::spawn(async move {
            e.send(&alice, to_user("bob", "race", "once"))
                .await
                .unwrap()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for h in handles {
        let r = h.await.unwrap();
        ids.insert(r.server_msg_id);
        fresh += usize::from(!r.duplicate);
    }
    assert_eq!(ids.len(), 1, "every answer names one message");
    assert_eq!(fresh, 1);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
}

#[tokio::test]
async fn dedup_holds_even_when_the_cache_has_forgotten() {
    // A cache that never remembers: the store alone must deduplicate.
    struct Forgetful(MemoryCache);
    #[async_trait::async_trait]
    impl Cache for Forgetful {
        async fn dedup_get(&self, _: &AppId, _: &UserId, _: &str) -> Result<Option<SendReceipt>> {
            Ok(None)
        }
        async fn dedup_put(
            &self,
            _: &AppId,
            _: &UserId,
            _: &str,
            _: &SendReceipt,
            _: Duration,
        ) -> Result<bool> {
            Ok(true)
        }
        async fn push_recent(&self, a: &AppId, p: u64, e: &InboxEntry, c: usize) -> Result<()> {
            self.0.push_recent(a, p, e, c).await
        }
        async fn recent(
            &self,
            a: &AppId,
            o: &UserId,
            v: u64,
            l: usize,
        ) -> Result<Option<bubble_core::InboxPage>> {
            self.0.recent(a, o, v, l).await
        }
    }
    let e = engine_from(
        Engine::builder().cache(Arc::new(Forgetful(MemoryCache::new()))),
        |_| {},
    )
    .await;
    let (alice, _) = login(&e, "alice", "phone").await;
    let (bob, _) = login(&e, "bob", "phone").await;
    let a = e.send(&alice, to_user("bob", "k", "x")).await.unwrap();
    let b = e.send(&alice, to_user("bob", "k", "x")).await.unwrap();
    assert_eq!(a.server_msg_id, b.server_msg_id);
    assert!(b.duplicate);
    assert_eq!(all_entries(&e, &bob).await.len(), 1);
}

#[tokio::test]
async fn a_retry_into_a_super_group_gets_the_original_seq() {
    let e = engine().await;
    let (ann, _) = login(&e, "ann", "phone").await;
    let to = super_group_of(&e, &ann, "t", &[]).await;
    let a = e.send(&ann, text_to(to.clone(), "k", "x")).await.unwrap();
    let b = e.send(&ann, text_to(to, "k", "x")).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 1));
    assert!(b.duplicate);
}
