//! History search (only ever one's own messages) and the indexer that
//! feeds the search index from the stores' durable outbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Engine, HistoryQuery, Session};
use crate::error::{Error, Result};
use crate::ports::{IndexTask, SearchDoc, SearchIndex, SearchQuery, SearchResults};
use crate::types::*;

/// One outbox batch folded per message: what the index must end up with,
/// whatever order and split (one task per owner or per delivery) the store
/// gave the tasks in.
#[derive(Default)]
struct Batch {
    /// Per message, in the order first seen.
    messages: Vec<MessageChange>,
    /// Where each message sits in `messages`.
    at: HashMap<(AppId, MsgId), usize>,
}

/// What one batch does to one message.
struct MessageChange {
    app: AppId,
    id: MsgId,
    /// A recall came: the message goes for everyone first.
    recalled: bool,
    /// The document to index (its owners merged from every task), if the
    /// message has searchable text and some owner still holds it.
    doc: Option<SearchDoc>,
    /// Owners who deleted it for themselves in this batch.
    deleted: Vec<UserId>,
}

impl Batch {
    /// Folds `tasks` (in outbox order) into one change per message.
    fn of(tasks: &[IndexTask]) -> Batch {
        let mut batch = Batch::default();
        for t in tasks {
            let e = &t.entry;
            let key = (t.app.clone(), e.server_msg_id);
            let at = *batch.at.entry(key).or_insert_with(|| {
                batch.messages.push(MessageChange {
                    app: t.app.clone(),
                    id: e.server_msg_id,
                    recalled: false,
                    doc: None,
                    deleted: Vec::new(),
                });
                batch.messages.len() - 1
            });
            let m = &mut batch.messages[at];
            match e.kind {
                EntryKind::Message | EntryKind::SystemNotice => {
                    let Some(new) = SearchDoc::of_entry(&t.app, e, t.owners.clone()) else {
                        continue;
                    };
                    m.deleted.retain(|o| !t.owners.contains(o));
                    match &mut m.doc {
                        Some(doc) => {
                            for owner in &t.owners {
                                if !doc.owners.contains(owner) {
                                    doc.owners.push(owner.clone());
                                }
                            }
                        }
                        None => m.doc = Some(new),
                    }
                }
                EntryKind::Recall => {
                    m.recalled = true;
                    m.doc = None;
                    m.deleted.clear();
                }
                EntryKind::Edit => {
                    // The old words go for everyone, the new ones come for
                    // every holder the edit reached.
                    m.recalled = true;
                    m.deleted.clear();
                    m.doc = SearchDoc::of_entry(&t.app, e, t.owners.clone());
                }
                EntryKind::Delete => {
                    if let Some(doc) = &mut m.doc {
                        doc.owners.retain(|o| !t.owners.contains(o));
                        if doc.owners.is_empty() {
                            m.doc = None;
                        }
                    }
                    for owner in &t.owners {
                        if !m.deleted.contains(owner) {
                            m.deleted.push(owner.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        batch
    }

    /// Applies the batch: recalls first, then every document in one call,
    /// then the deletes-for-me. Changes to different messages commute, and
    /// within one message this is the order the fold left them in.
    async fn apply(self, index: &dyn SearchIndex) -> Result<()> {
        for m in self.messages.iter().filter(|m| m.recalled) {
            index.remove(&m.app, &m.id).await?;
        }
        let docs: Vec<SearchDoc> = self.messages.iter().filter_map(|m| m.doc.clone()).collect();
        index.index(&docs).await?;
        for m in self.messages.iter().filter(|m| !m.deleted.is_empty()) {
            index.remove_owners(&m.app, &m.id, &m.deleted).await?;
        }
        Ok(())
    }
}

/// Which apps a search rebuild covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildScope {
    /// Every app with search on; ends a pending format upgrade.
    All,
    /// One app.
    App(AppId),
}

/// How far a search rebuild got, reported after every page.
#[derive(Debug, Clone)]
pub struct RebuildProgress {
    /// The app being rebuilt.
    pub app: AppId,
    /// Messages indexed for this app so far.
    pub app_messages: u64,
    /// Messages indexed for every app so far.
    pub messages: u64,
    /// Since the rebuild started.
    pub elapsed: Duration,
}

impl RebuildProgress {
    /// Messages per second over the whole rebuild so far.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
}

impl Engine {
    /// Searches the caller's own history. The owner is always the session's
    /// user: nobody can search someone else's messages.
    pub async fn search(&self, session: &Session, query: HistoryQuery) -> Result<SearchResults> {
        self.search_as(&session.app, &session.user, query).await
    }

    /// Searches one user's history (admin API).
    pub async fn search_as(
        &self,
        app: &AppId,
        owner: &UserId,
        query: HistoryQuery,
    ) -> Result<SearchResults> {
        let Some(index) = &self.inner.search else {
            return Err(Error::unavailable(
                "history search is turned off on this server",
            ));
        };
        if query.words.trim().is_empty() {
            return Err(Error::invalid("search words are empty"));
        }
        // Asked here rather than left to the index's own refusal: an
        // `Unavailable` from the index would count against its circuit
        // breaker, and searches during a rebuild would open it under the
        // rebuild's own writes.
        if index.needs_rebuild().await? {
            return Err(Error::unavailable(
                "history search is being rebuilt from the store (the search index was \
                 upgraded); try again later",
            ));
        }
        index
            .search(&SearchQuery {
                app: app.clone(),
                owner: owner.clone(),
                words: query.words,
                conversation: query.conversation,
                from_time: query.from_time,
                to_time: query.to_time,
                offset: query.offset,
                limit: query.limit.clamp(1, 100),
            })
            .await
    }

    /// Drains the search outbox once: indexes new messages, unindexes
    /// recalled and deleted ones, one flush per `index_batch` entries, until
    /// a batch comes back less than full. Returns how many outbox entries it
    /// handled.
    pub async fn index_pending(&self) -> Result<usize> {
        let Some(index) = &self.inner.search else {
            return Ok(0);
        };
        let mut handled = 0;
        loop {
            let tasks = self
                .inner
                .inbox
                .pending_index(self.inner.config.index_batch)
                .await?;
            if tasks.is_empty() {
                break;
            }
            Batch::of(&tasks).apply(index.as_ref()).await?;
            index.flush().await?;
            let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
            self.inner.inbox.complete_index(&ids).await?;
            handled += tasks.len();
            if tasks.len() < self.inner.config.index_batch {
                // Everything that was waiting is done. What arrived during
                // this flush waits for the next pass: looping on it would
                // flush back to back under steady load, each flush a tiny
                // segment that the search index then merges again and again.
                break;
            }
        }
        Ok(handled)
    }

    /// Rebuilds the search index from the inbox store: for each app in
    /// `scope` with search on, removes its documents, then indexes every
    /// message the store lists ([`crate::ports::InboxStore::scan_messages`])
    /// with its remaining owners, one page of `index_batch` messages and one
    /// flush at a time, calling `progress` after each page. A rebuild of
    /// every app then tells the index it is complete
    /// ([`SearchIndex::rebuilt`]). Returns how many messages it indexed.
    ///
    /// Meant to run while no node serves the apps (`bubble-server
    /// reindex`) or right after a format upgrade at start: a delete-for-me
    /// that lands while its page is being read may come back until the
    /// next rebuild.
    pub async fn rebuild_search(
        &self,
        scope: RebuildScope,
        mut progress: impl FnMut(&RebuildProgress) + Send,
    ) -> Result<u64> {
        let Some(index) = &self.inner.search else {
            return Err(Error::unavailable(
                "history search is turned off on this server: nothing to rebuild",
            ));
        };
        let apps = match &scope {
            RebuildScope::All => self.inner.apps.list_apps().await?,
            RebuildScope::App(id) => vec![
                self.inner
                    .apps
                    .get_app(id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("app {id} does not exist")))?,
            ],
        };
        let started = Instant::now();
        let page = self.inner.config.index_batch.max(1);
        let mut messages = 0;
        for app in apps {
            if !app.settings.search {
                index.clear_app(&app.id).await?;
                continue;
            }
            // The first page is read before the app's documents go: a store
            // that cannot be read leaves the index as it was.
            let mut found = self.inner.inbox.scan_messages(&app.id, None, page).await?;
            index.clear_app(&app.id).await?;
            let mut app_messages = 0;
            while let Some(last) = found.last() {
                let after = Some(last.entry.server_msg_id);
                let docs: Vec<SearchDoc> = found
                    .into_iter()
                    .filter_map(|m| SearchDoc::of_entry(&app.id, &m.entry, m.owners))
                    .collect();
                index.index(&docs).await?;
                index.flush().await?;
                app_messages += docs.len() as u64;
                messages += docs.len() as u64;
                progress(&RebuildProgress {
                    app: app.id.clone(),
                    app_messages,
                    messages,
                    elapsed: started.elapsed(),
                });
                found = self.inner.inbox.scan_messages(&app.id, after, page).await?;
            }
            index.flush().await?;
        }
        if scope == RebuildScope::All {
            index.rebuilt().await?;
        }
        Ok(messages)
    }

    /// Whether the search index must be rebuilt before it answers (see
    /// [`SearchIndex::needs_rebuild`]); `false` when search is off.
    pub async fn search_needs_rebuild(&self) -> Result<bool> {
        match &self.inner.search {
            Some(index) => index.needs_rebuild().await,
            None => Ok(false),
        }
    }

    /// Runs the indexer until `shutdown` resolves: drains the outbox on
    /// every wake-up (and every second, to pick up other nodes' work and
    /// what a crash left behind).
    pub async fn run_indexer(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let started = tokio::time::Instant::now();
            if let Err(e) = self.index_pending().await {
                tracing::warn!(error = %e, "indexing failed; will retry");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.inner.index_wakeup.notified() => {
                    // Under load the next wake-up is already there: let the
                    // outbox fill for the rest of the interval, so the next
                    // pass indexes a batch and commits once.
                    let next = started + self.inner.config.index_interval;
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep_until(next) => {}
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        if let Err(e) = self.index_pending().await {
            tracing::warn!(error = %e, "final indexing pass failed; the outbox keeps the rest");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemorySearch;

    const APP: &str = "acme";

    /// One owner's entry of a group message (or of a recall/delete of it).
    fn entry(kind: EntryKind, id: u8, owner: &str) -> InboxEntry {
        InboxEntry {
            owner: UserId::new(owner),
            version: 1,
            kind,
            conversation: Conversation::group(&GroupId::new("team")),
            direction: Direction::In,
            server_msg_id: MsgId([id; 16]),
            sender: UserId::new("ann"),
            sender_device: DeviceId::new("phone"),
            client_msg_id: String::new(),
            client_seq: 1,
            create_time: 1,
            server_time: 1_000,
            content: Content::text("stand-up notes"),
            read_up_to: 0,
            meta: EntryMeta::none(),
        }
    }

    /// A store that gives one task per owner.
    fn task(n: u64, kind: EntryKind, id: u8, owner: &str) -> IndexTask {
        IndexTask {
            id: n,
            app: AppId::new(APP),
            entry: entry(kind, id, owner),
            owners: vec![UserId::new(owner)],
        }
    }

    async fn finds(index: &MemorySearch, owner: &str) -> Vec<MsgId> {
        let r = index
            .search(&SearchQuery {
                app: AppId::new(APP),
                owner: UserId::new(owner),
                words: "notes".into(),
                conversation: None,
                from_time: None,
                to_time: None,
                offset: 0,
                limit: 10,
            })
            .await
            .unwrap();
        r.hits.iter().map(|h| h.doc.server_msg_id).collect()
    }

    #[tokio::test]
    async fn per_owner_tasks_of_one_message_become_one_document() {
        let tasks: Vec<IndexTask> = ["ann", "bo", "cy"]
            .iter()
            .enumerate()
            .map(|(n, o)| task(n as u64, EntryKind::Message, 1, o))
            .collect();
        let batch = Batch::of(&tasks);
        assert_eq!(batch.messages.len(), 1);
        let index = MemorySearch::new();
        batch.apply(&index).await.unwrap();
        assert_eq!(index.documents(), 1);
        for o in ["ann", "bo", "cy"] {
            assert_eq!(finds(&index, o).await, [MsgId([1; 16])], "{o}");
        }
    }

    #[tokio::test]
    async fn a_message_split_across_batches_keeps_every_owner() {
        let index = MemorySearch::new();
        Batch::of(&[task(1, EntryKind::Message, 1, "ann")])
            .apply(&index)
            .await
            .unwrap();
        Batch::of(&[task(2, EntryKind::Message, 1, "bo")])
            .apply(&index)
            .await
            .unwrap();
        assert_eq!(finds(&index, "ann").await, [MsgId([1; 16])]);
        assert_eq!(finds(&index, "bo").await, [MsgId([1; 16])]);
    }

    #[tokio::test]
    async fn a_delete_in_the_same_batch_leaves_the_deleter_out() {
        let index = MemorySearch::new();
        Batch::of(&[
            task(1, EntryKind::Message, 1, "ann"),
            task(2, EntryKind::Message, 1, "bo"),
            task(3, EntryKind::Delete, 1, "bo"),
            task(4, EntryKind::Message, 1, "cy"),
        ])
        .apply(&index)
        .await
        .unwrap();
        assert!(finds(&index, "bo").await.is_empty());
        assert_eq!(finds(&index, "cy").await, [MsgId([1; 16])]);
        Batch::of(&[task(5, EntryKind::Delete, 1, "ann")])
            .apply(&index)
            .await
            .unwrap();
        assert!(finds(&index, "ann").await.is_empty(), "a later batch too");
        assert_eq!(finds(&index, "cy").await, [MsgId([1; 16])]);
    }

    #[tokio::test]
    async fn a_recall_removes_the_message_for_owners_it_did_not_reach() {
        let index = MemorySearch::new();
        Batch::of(&[
            task(1, EntryKind::Message, 1, "ann"),
            task(2, EntryKind::Message, 1, "left-the-group"),
            task(3, EntryKind::Message, 2, "ann"),
        ])
        .apply(&index)
        .await
        .unwrap();
        Batch::of(&[task(4, EntryKind::Recall, 1, "ann")])
            .apply(&index)
            .await
            .unwrap();
        assert!(finds(&index, "left-the-group").await.is_empty());
        assert_eq!(finds(&index, "ann").await, [MsgId([2; 16])]);
        Batch::of(&[
            task(5, EntryKind::Message, 3, "ann"),
            task(6, EntryKind::Recall, 3, "ann"),
        ])
        .apply(&index)
        .await
        .unwrap();
        assert_eq!(finds(&index, "ann").await, [MsgId([2; 16])], "same batch");
    }
}
