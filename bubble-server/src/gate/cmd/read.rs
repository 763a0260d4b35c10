//! MarkRead (21) -> MarkReadAck (22), Unread (23) -> UnreadCounts (24).

use bubble_core::wire::{conversation_from_pb, conversation_to_pb};
use bubble_core::{Conversation, Engine, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode};

/// `MarkReadRequest` -> `MarkReadAck`.
#[derive(Debug)]
pub struct MarkRead {
    conversation: Conversation,
    up_to: u64,
}

impl MarkRead {
    /// Decodes a `MarkReadRequest`.
    pub fn parse(frame: &Frame) -> Result<MarkRead> {
        let req: pb::MarkReadRequest = decode(frame)?;
        Ok(MarkRead {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            up_to: req.up_to,
        })
    }

    /// Marks the conversation read up to the version (or seq).
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let marked = engine
            .mark_read(session, &self.conversation, self.up_to)
            .await?;
        Ok(Reply::message(
            Command::MarkReadAck,
            &pb::MarkReadAck { marked },
        ))
    }
}

/// `UnreadRequest` -> `UnreadCounts`.
#[derive(Debug)]
pub struct Unread;

impl Unread {
    /// An `UnreadRequest` has no fields: the body is not looked at.
    pub fn parse(_frame: &Frame) -> Result<Unread> {
        Ok(Unread)
    }

    /// Unread counts per conversation.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let counts = engine.unread(session).await?;
        let body = pb::UnreadCounts {
            counts: counts
                .iter()
                .map(|c| pb::UnreadCount {
                    conversation: Some(conversation_to_pb(&c.conversation)),
                    count: c.count,
                    mentioned: c.mentioned,
                })
                .collect(),
        };
        Ok(Reply::message(Command::UnreadCounts, &body))
    }
}
