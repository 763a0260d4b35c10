//! History search (only ever one's own messages) and the indexer that
//! feeds the search index from the stores' durable outbox.

use std::time::Duration;

use super::{Engine, HistoryQuery, Session};
use crate::error::{Error, Result};
use crate::ports::{SearchDoc, SearchQuery, SearchResults};
use crate::types::*;

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
            let mut docs = Vec::new();
            for t in &tasks {
                let e = &t.entry;
                match e.kind {
                    EntryKind::Message | EntryKind::SystemNotice => {
                        if let Some(text) = e.content.searchable_text() {
                            docs.extend(t.owners.iter().map(|owner| SearchDoc {
                                app: t.app.clone(),
                                owner: owner.clone(),
                                server_msg_id: e.server_msg_id,
                                conversation: e.conversation_for(owner),
                                sender: e.sender.clone(),
                                server_time: e.server_time,
                                text: text.clone(),
                            }));
                        }
                    }
                    EntryKind::Recall | EntryKind::Delete => {
                        // Outbox order matters: a message and its recall in one
                        // batch must end removed, so index what came before first.
                        if !docs.is_empty() {
                            index.index(&std::mem::take(&mut docs)).await?;
                        }
                        for owner in &t.owners {
                            index.remove(&t.app, owner, &e.server_msg_id).await?;
                        }
                    }
                    _ => {}
                }
            }
            index.index(&docs).await?;
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
