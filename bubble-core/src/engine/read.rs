//! Read state: marking a conversation read (a read cursor for the reader's
//! other devices, a read receipt for the 1:1 peer), unread counts, and the
//! conversation list that shows both.

use super::audience::OwnerCopy;
use super::deliver::{Envelope, Fanout};
use super::{ConversationItem, ConversationList, Engine, ReadState, Session};
use crate::error::Result;
use crate::types::*;

impl Engine {
    /// Marks a conversation read up to a version (a seq for super groups).
    /// Other devices of the reader get a read cursor; the 1:1 peer gets a
    /// read receipt when the app enables them. Returns how many were marked.
    pub async fn mark_read(
        &self,
        session: &Session,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<u64> {
        if conversation.kind == ConversationKind::SuperGroup {
            return self.mark_channel_read(session, conversation, up_to).await;
        }
        let app = &session.app;
        let settings = self.settings(app).await?;
        let marked = self
            .inner
            .inbox
            .mark_read(app, &session.user, conversation, up_to)
            .await?;
        let Some(last_read) = marked.last_read else {
            return Ok(marked.marked);
        };
        let reader = &session.user;
        let envelope = Envelope::server_made(
            EntryKind::ReadCursor,
            last_read.server_msg_id,
            reader,
            &session.device,
            now_millis(),
        );
        // The reader's other devices clear their badges from this cursor.
        let mut entries = vec![
            Envelope {
                read_up_to: up_to,
                ..envelope.clone()
            }
            .entry(OwnerCopy {
                owner: reader.clone(),
                conversation: conversation.clone(),
                direction: Direction::Out,
            }),
        ];
        if settings.read_receipts
            && conversation.kind == ConversationKind::Direct
            && marked.marked > 0
            && last_read.sender != *reader
        {
            // The receipt carries the sender's version of the newest message
            // read, so the sender's conversation list (and a UI) can show
            // "read" on every message at or below it.
            let read_version = self
                .inner
                .inbox
                .get(app, &last_read.sender, &last_read.server_msg_id)
                .await?
                .map_or(0, |e| e.version);
            entries.push(
                Envelope {
                    kind: EntryKind::ReadReceipt,
                    read_up_to: read_version,
                    ..envelope
                }
                .entry(OwnerCopy {
                    owner: last_read.sender.clone(),
                    conversation: Conversation::direct(reader),
                    direction: Direction::In,
                }),
            );
        }
        let fanout = Fanout::Inboxes {
            entries,
            receipt_owner: None,
            index: false,
        };
        self.deliver(app, Some(session), fanout).await?;
        Ok(marked.marked)
    }

    /// A super group's read seq moves forward; what it passed is counted.
    async fn mark_channel_read(
        &self,
        session: &Session,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<u64> {
        let (app, user) = (&session.app, &session.user);
        let group = GroupId::new(conversation.id());
        self.group_for_member(app, &group, user).await?;
        let channels = &self.inner.channels;
        let before = channels.read_seq(app, &group, user).await?;
        channels.set_read_seq(app, &group, user, up_to).await?;
        if up_to <= before {
            return Ok(0);
        }
        Ok(channels.count_messages_after(app, &group, before).await?
            - channels.count_messages_after(app, &group, up_to).await?)
    }

    /// The caller's conversations, newest activity first: those with
    /// activity < `before` (0: from the newest), at most `limit`. The
    /// inbox's rows come from the store in one indexed read; the caller's
    /// super groups (their log is not in the inbox) are merged in by the
    /// same key, each with its newest entry, unread count and read seq.
    pub async fn conversations(
        &self,
        session: &Session,
        before: u64,
        limit: usize,
    ) -> Result<ConversationList> {
        let limit = limit.clamp(1, self.inner.config.max_page);
        let (app, user) = (&session.app, &session.user);
        let page = self
            .inner
            .inbox
            .conversations(app, user, before, limit)
            .await?;
        let mut items: Vec<ConversationItem> = page
            .conversations
            .into_iter()
            .map(ConversationItem::Inbox)
            .collect();
        let mut more = page.has_more;
        for group in self.super_groups_of(app, user).await? {
            let channels = &self.inner.channels;
            let newest = channels.range_before(app, &group, 0, 1).await?;
            let Some(last) = newest.entries.into_iter().next() else {
                continue;
            };
            let activity = activity_key(last.server_time, last.seq);
            if before != 0 && activity >= before {
                continue;
            }
            let read_seq = channels.read_seq(app, &group, user).await?;
            let unread = channels.count_messages_after(app, &group, read_seq).await?;
            let settings = self
                .settings_or_default(app, user, &Conversation::super_group(&group))
                .await?;
            items.push(ConversationItem::SuperGroup {
                group,
                activity,
                last,
                unread,
                read_seq,
                settings,
            });
        }
        items.sort_by_key(|i| std::cmp::Reverse(i.activity()));
        if items.len() > limit {
            items.truncate(limit);
            more = true;
        }
        let max_version = self.inner.inbox.last_version(app, user).await?;
        Ok(ConversationList {
            items,
            has_more: more,
            max_version,
        })
    }

    /// Who of a normal group's members (other than the sender) hold
    /// message `id` and who of them has read it, from each one's read
    /// mark: "read by N of M". The caller must be a member; any member may
    /// ask (a product that shows it to the sender only checks that).
    pub async fn read_state(
        &self,
        session: &Session,
        group: &GroupId,
        id: &MsgId,
    ) -> Result<ReadState> {
        let app = &session.app;
        let group_info = self.group_for_member(app, group, &session.user).await?;
        if group_info.kind != GroupKind::Normal {
            return Err(crate::error::Error::invalid(format!(
                "group {group} is a super group: its members' reads are kept by seq \
                 (their read marks), not per message"
            )));
        }
        let members: Vec<UserId> = self
            .inner
            .groups
            .members(app, group)
            .await?
            .into_iter()
            .map(|m| m.user)
            .collect();
        let found = self
            .inner
            .inbox
            .readers(app, &Conversation::group(group), id, &members)
            .await?;
        Ok(ReadState {
            members: found.received,
            readers: found.readers,
        })
    }

    /// The super groups `user` is a member of.
    async fn super_groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        let mut out = Vec::new();
        for gid in self.inner.groups.groups_of(app, user).await? {
            if let Some(group) = self.inner.groups.group(app, &gid).await?
                && group.kind == GroupKind::Super
            {
                out.push(gid);
            }
        }
        Ok(out)
    }

    /// Unread counts per conversation, super groups included.
    pub async fn unread(&self, session: &Session) -> Result<Vec<UnreadCount>> {
        let (app, user) = (&session.app, &session.user);
        let mut counts = self.inner.inbox.unread(app, user).await?;
        for gid in self.super_groups_of(app, user).await? {
            let read = self.inner.channels.read_seq(app, &gid, user).await?;
            let count = self
                .inner
                .channels
                .count_messages_after(app, &gid, read)
                .await?;
            if count > 0 {
                counts.push(UnreadCount {
                    conversation: Conversation::super_group(&gid),
                    count,
                    mentioned: false,
                });
            }
        }
        Ok(counts)
    }
}
