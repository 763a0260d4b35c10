//! The conformance suite is only worth something if it fails broken
//! adapters: these wrap a correct adapter with a classic bug each.

use std::sync::Arc;

use async_trait::async_trait;

use bubble_core::memory::MemoryInbox;
use bubble_core::ports::*;
use bubble_core::testkit;
use bubble_core::*;

/// Forgets dedup: every append is written, whatever its client id.
struct NoDedup(MemoryInbox);

/// Skips the second entry of every page that has more than two.
struct SkipsAnEntry(MemoryInbox);

macro_rules! delegate_inbox {
    ($t:ty, |$s:ident, $app:ident, $d:ident| $append:expr, |$p:ident| $pull:expr) => {
        #[async_trait]
        impl InboxStore for $t {
            async fn append(&self, $app: &AppId, $d: &Delivery) -> Result<AppendOutcome> {
                let $s = &self.0;
                $append
            }
            async fn pull(
                &self,
                app: &AppId,
                owner: &UserId,
                after: u64,
                limit: usize,
            ) -> Result<InboxPage> {
                let $p = self.0.pull(app, owner, after, limit).await?;
                Ok($pull)
            }
            async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
                self.0.last_version(app, owner).await
            }
            async fn get(
                &self,
                app: &AppId,
                owner: &UserId,
                id: &MsgId,
            ) -> Result<Option<InboxEntry>> {
                self.0.get(app, owner, id).await
            }
            async fn mark_read(
                &self,
                app: &AppId,
                owner: &UserId,
                c: &Conversation,
                up_to: u64,
            ) -> Result<MarkedRead> {
                self.0.mark_read(app, owner, c, up_to).await
            }
            async fn mark_message_read(
                &self,
                app: &AppId,
                owner: &UserId,
                id: &MsgId,
            ) -> Result<bool> {
                self.0.mark_message_read(app, owner, id).await
            }
            async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
                self.0.unread(app, owner).await
            }
            async fn find_sent(
                &self,
                app: &AppId,
                sender: &UserId,
                id: &str,
            ) -> Result<Option<SendReceipt>> {
                self.0.find_sent(app, sender, id).await
            }
            async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
                self.0.pending_index(limit).await
            }
            async fn complete_index(&self, ids: &[u64]) -> Result<()> {
                self.0.complete_index(ids).await
            }
            async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
                self.0.prune_sent(sent_before, limit).await
            }
        }
    };
}

delegate_inbox!(
    NoDedup,
    |s, app, d| {
        let mut d = d.clone();
        d.client_msg_id.clear();
        s.append(app, &d).await
    },
    |p| p
);

delegate_inbox!(SkipsAnEntry, |s, app, d| s.append(app, d).await, |p| {
    let mut p = p;
    if p.entries.len() > 2 {
        p.entries.remove(1);
    }
    p
});

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "a_client_msg_id_is_accepted_once")]
async fn the_suite_fails_a_store_without_dedup() {
    testkit::inbox(Arc::new(NoDedup(MemoryInbox::new()))).await;
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "pull_pages_are_gap_free_and_duplicate_free")]
async fn the_suite_fails_a_store_whose_pages_have_holes() {
    testkit::inbox(Arc::new(SkipsAnEntry(MemoryInbox::new()))).await;
}
