//! Edit (112) and React (113): both answered with the new entry's `SendAck`.

use bubble_core::wire::{content_from_pb, conversation_from_pb, receipt_to_pb};
use bubble_core::{Content, Conversation, Engine, MsgId, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode};

/// `EditRequest` -> `SendAck` (the edit entry's).
#[derive(Debug)]
pub struct Edit {
    conversation: Conversation,
    id: MsgId,
    content: Content,
}

impl Edit {
    /// Decodes an `EditRequest`.
    pub fn parse(frame: &Frame) -> Result<Edit> {
        let req: pb::EditRequest = decode(frame)?;
        Ok(Edit {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            id: MsgId::from_slice(&req.server_msg_id)?,
            content: content_from_pb(req.content.as_ref())?,
        })
    }

    /// Edits the message for every holder.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let receipt = engine
            .edit(session, &self.conversation, &self.id, self.content)
            .await?;
        Ok(Reply::message(Command::SendAck, &receipt_to_pb(&receipt)))
    }
}

/// `ReactRequest` -> `SendAck` (the reaction entry's; `duplicate` when it
/// changed nothing).
#[derive(Debug)]
pub struct React {
    conversation: Conversation,
    id: MsgId,
    emoji: String,
    remove: bool,
}

impl React {
    /// Decodes a `ReactRequest`.
    pub fn parse(frame: &Frame) -> Result<React> {
        let req: pb::ReactRequest = decode(frame)?;
        Ok(React {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            id: MsgId::from_slice(&req.server_msg_id)?,
            emoji: req.emoji,
            remove: req.remove,
        })
    }

    /// Adds or removes the reaction.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let receipt = engine
            .react(
                session,
                &self.conversation,
                &self.id,
                &self.emoji,
                self.remove,
            )
            .await?;
        Ok(Reply::message(Command::SendAck, &receipt_to_pb(&receipt)))
    }
}
