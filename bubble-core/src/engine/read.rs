//! Read state: marking a conversation read (a read cursor for the reader's
//! other devices, a read receipt for the 1:1 peer), and unread counts.

use super::audience::OwnerCopy;
use super::deliver::{Envelope, Fanout};
use super::{Engine, Session};
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
            entries.push(
                Envelope {
                    kind: EntryKind::ReadReceipt,
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

    /// Unread counts per conversation, super groups included.
    pub async fn unread(&self, session: &Session) -> Result<Vec<UnreadCount>> {
        let (app, user) = (&session.app, &session.user);
        let mut counts = self.inner.inbox.unread(app, user).await?;
        for gid in self.inner.groups.groups_of(app, user).await? {
            let Some(group) = self.inner.groups.group(app, &gid).await? else {
                continue;
            };
            if group.kind != GroupKind::Super {
                continue;
            }
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
                });
            }
        }
        Ok(counts)
    }
}
