//! Send (16), Recall (25) and Delete (26): all three answered with a
//! `SendAck`.

use bubble_core::wire::{content_from_pb, conversation_from_pb, receipt_to_pb};
use bubble_core::{Conversation, Engine, MessageRefs, MsgId, Result, SendRequest, Session};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode, user_ids};

/// A message id that may be absent (empty bytes).
fn optional_id(raw: &[u8]) -> Result<Option<MsgId>> {
    if raw.is_empty() {
        Ok(None)
    } else {
        MsgId::from_slice(raw).map(Some)
    }
}

/// `SendRequest` -> `SendAck`.
#[derive(Debug)]
pub struct Send {
    request: SendRequest,
    refs: MessageRefs,
}

impl Send {
    /// Decodes a `SendRequest` (conversation and content checked).
    pub fn parse(frame: &Frame) -> Result<Send> {
        let req: pb::SendRequest = decode(frame)?;
        Ok(Send {
            request: SendRequest {
                to: conversation_from_pb(req.to.as_ref())?,
                client_msg_id: req.client_msg_id,
                client_seq: req.client_seq,
                create_time: req.create_time,
                content: content_from_pb(req.content.as_ref())?,
            },
            refs: MessageRefs {
                reply_to: optional_id(&req.reply_to)?,
                forward_of: optional_id(&req.forward_of)?,
                forward_from: req
                    .forward_from
                    .as_ref()
                    .map(|c| conversation_from_pb(Some(c)))
                    .transpose()?,
                mentions: user_ids(&req.mentions)?,
                mention_all: req.mention_all,
            },
        })
    }

    /// Sends; the ack once the message is durable.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let receipt = engine.send_with(session, self.request, &self.refs).await?;
        Ok(Reply::message(Command::SendAck, &receipt_to_pb(&receipt)))
    }
}

/// `RecallRequest` -> `SendAck` (the recall entry's).
#[derive(Debug)]
pub struct Recall {
    conversation: Conversation,
    id: MsgId,
}

impl Recall {
    /// Decodes a `RecallRequest`.
    pub fn parse(frame: &Frame) -> Result<Recall> {
        let req: pb::RecallRequest = decode(frame)?;
        Ok(Recall {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            id: MsgId::from_slice(&req.server_msg_id)?,
        })
    }

    /// Recalls the message for every owner.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let receipt = engine.recall(session, &self.conversation, &self.id).await?;
        Ok(Reply::message(Command::SendAck, &receipt_to_pb(&receipt)))
    }
}

/// `DeleteRequest` -> `SendAck` (`version` = the delete entry's).
#[derive(Debug)]
pub struct Delete {
    id: MsgId,
}

impl Delete {
    /// Decodes a `DeleteRequest`.
    pub fn parse(frame: &Frame) -> Result<Delete> {
        let req: pb::DeleteRequest = decode(frame)?;
        Ok(Delete {
            id: MsgId::from_slice(&req.server_msg_id)?,
        })
    }

    /// Deletes the message from the caller's view.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let receipt = engine.delete_for_me(session, &self.id).await?;
        Ok(Reply::message(Command::SendAck, &receipt_to_pb(&receipt)))
    }
}
