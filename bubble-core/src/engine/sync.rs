//! Sync: a device pulls its inbox after the version it holds, in pages,
//! and a super group's log after the seq it holds. History: one
//! conversation's entries backwards from the newest, for a chat screen.

use super::{BROADCAST_CHANNEL, Engine, HistoryPage, Reactions, Session, SyncPage};
use crate::error::Result;
use crate::types::*;

impl Engine {
    /// Entries after `after_version`, in pages.
    pub async fn sync(
        &self,
        session: &Session,
        after_version: u64,
        limit: usize,
    ) -> Result<SyncPage> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        let (app, user) = (&session.app, &session.user);
        let max_version = self.inner.inbox.last_version(app, user).await?;
        if after_version >= max_version {
            return Ok(SyncPage {
                entries: Vec::new(),
                has_more: false,
                max_version,
            });
        }
        // The cache answers only when its window is contiguous up to the
        // store's newest version; otherwise the store does.
        let cached = match self
            .inner
            .cache
            .recent(app, user, after_version, limit)
            .await
        {
            Ok(page) => {
                self.cache_answered();
                page
            }
            Err(e) => {
                self.cache_failed(&e);
                None
            }
        };
        if let Some(page) = cached {
            let complete = page.has_more
                || page
                    .entries
                    .last()
                    .is_some_and(|e| e.version == max_version);
            if complete {
                return Ok(SyncPage {
                    entries: page.entries,
                    has_more: page.has_more,
                    max_version,
                });
            }
        }
        let page = self
            .inner
            .inbox
            .pull(app, user, after_version, limit)
            .await?;
        Ok(SyncPage {
            entries: page.entries,
            has_more: page.has_more,
            max_version,
        })
    }

    /// A super group's entries after `after_seq` (members only).
    pub async fn pull_channel(
        &self,
        session: &Session,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<(ChannelPage, u64)> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        if group.as_str() != BROADCAST_CHANNEL {
            self.group_for_member(&session.app, group, &session.user)
                .await?;
        }
        let page = self
            .inner
            .channels
            .range(&session.app, group, after_seq, limit)
            .await?;
        let last = self.inner.channels.last_seq(&session.app, group).await?;
        Ok((page, last))
    }

    /// One conversation's entries older than `before` (a version of the
    /// caller's inbox; for a super group a seq), newest first, at most
    /// `limit`; `before` 0 starts at the newest. A 1:1, group or system
    /// conversation is read from the caller's own inbox (what it holds is
    /// theirs, member or not any more); a super group from its log, for
    /// members only.
    pub async fn history(
        &self,
        session: &Session,
        conversation: &Conversation,
        before: u64,
        limit: usize,
    ) -> Result<HistoryPage> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        let (app, user) = (&session.app, &session.user);
        validate_id("conversation id", conversation.id())?;
        match conversation.kind {
            ConversationKind::SuperGroup => {
                let group = GroupId::new(conversation.id());
                if group.as_str() != BROADCAST_CHANNEL {
                    self.group_for_member(app, &group, user).await?;
                }
                let page = self
                    .inner
                    .channels
                    .range_before(app, &group, before, limit)
                    .await?;
                let last_seq = self.inner.channels.last_seq(app, &group).await?;
                let messages = page.entries.iter().filter(|e| e.kind == EntryKind::Message);
                let reactions = self
                    .reactions_of(app, user, messages.map(|e| e.server_msg_id))
                    .await?;
                Ok(HistoryPage::Channel {
                    page,
                    last_seq,
                    reactions,
                })
            }
            ConversationKind::Direct | ConversationKind::Group | ConversationKind::System => {
                let max_version = self.inner.inbox.last_version(app, user).await?;
                let page = self
                    .inner
                    .inbox
                    .history(app, user, conversation, before, limit)
                    .await?;
                let messages = page.entries.iter().filter(|e| e.kind == EntryKind::Message);
                let reactions = self
                    .reactions_of(app, user, messages.map(|e| e.server_msg_id))
                    .await?;
                Ok(HistoryPage::Inbox {
                    page,
                    max_version,
                    reactions,
                })
            }
        }
    }

    /// The reactions on `ids` as `viewer` sees them: one read per page. A
    /// store that keeps no reactions has none.
    async fn reactions_of(
        &self,
        app: &AppId,
        viewer: &UserId,
        ids: impl Iterator<Item = MsgId>,
    ) -> Result<Reactions> {
        let ids: Vec<MsgId> = ids.collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        super::default_if_unsupported(self.inner.inbox.reactions(app, &ids, viewer).await)
    }
}
