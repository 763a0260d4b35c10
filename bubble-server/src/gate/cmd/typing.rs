//! Typing (27): relayed, never stored, not answered unless it fails.

use bubble_core::wire::conversation_from_pb;
use bubble_core::{Conversation, Engine, Result, Session};
use bubble_proto::{Frame, pb};

use super::decode;

/// `Typing` -> nothing (an `Error` when it fails).
#[derive(Debug)]
pub struct Typing {
    conversation: Conversation,
}

impl Typing {
    /// Decodes a `Typing`.
    pub fn parse(frame: &Frame) -> Result<Typing> {
        let req: pb::Typing = decode(frame)?;
        Ok(Typing {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
        })
    }

    /// Relays the notice to the peer or the group.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<()> {
        engine.typing(session, &self.conversation).await
    }
}
