//! Sending: validate, answer a retry from the dedup window, then deliver to
//! whoever holds a copy in the conversation.

use super::audience::Author;
use super::deliver::{Envelope, Fanout};
use super::{Engine, MessageRefs, SendRequest, Session};
use crate::error::{Error, Result};
use crate::hooks::SentMessage;
use crate::types::*;

impl Engine {
    /// Sends a message: durable in every owner's inbox (or the channel log)
    /// before this returns. A retry with the same client message id returns
    /// the original receipt and writes nothing.
    pub async fn send(&self, session: &Session, req: SendRequest) -> Result<SendReceipt> {
        self.send_with(session, req, &MessageRefs::default()).await
    }

    /// [`Engine::send`] of a reply, a forward or a message with mentions:
    /// `refs` names what it refers to, and the engine checks each (the
    /// replied message is in the conversation, the forwarded one is the
    /// sender's, mentioned users are members, @all comes from the owner or
    /// an admin) and stores what it found in the message's meta.
    pub async fn send_with(
        &self,
        session: &Session,
        mut req: SendRequest,
        refs: &MessageRefs,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        if req.client_msg_id.is_empty() || req.client_msg_id.len() > MAX_ID_LEN {
            return Err(Error::invalid(format!(
                "client_msg_id must be 1 to {MAX_ID_LEN} bytes (a UUID is fine); it makes retries safe"
            )));
        }
        validate_id("conversation id", req.to.id())?;
        if refs.forward_of.is_none() {
            crate::content::validate(&settings, &req.content)?;
        }

        if let Some(receipt) = self.cached_receipt(session, &req.client_msg_id).await {
            return Ok(receipt);
        }
        let audience = self
            .audience(app, Author::User(&session.user), &req.to)
            .await?;
        if req.to.kind == ConversationKind::Direct {
            self.check_not_blocked(session, &UserId::new(req.to.id()))
                .await?;
        }
        let meta = self
            .compose(session, &audience, refs, &mut req.content)
            .await?;
        if refs.forward_of.is_some() {
            crate::content::validate(&settings, &req.content)?;
        }
        if self.reviews(app) {
            let reviewed = self
                .review(session, &req.to, &req.client_msg_id, req.content.clone())
                .await?;
            if reviewed != req.content {
                crate::content::validate(&settings, &reviewed)?;
                req.content = reviewed;
            }
        }
        let now = now_millis();
        let envelope = Envelope {
            kind: EntryKind::Message,
            server_msg_id: self
                .inner
                .ids
                .next(app, &session.user, &audience.conversation, now),
            sender: session.user.clone(),
            sender_device: session.device.clone(),
            client_msg_id: req.client_msg_id,
            client_seq: req.client_seq,
            create_time: req.create_time,
            server_time: now,
            content: req.content,
            read_up_to: 0,
            meta,
        };
        self.queue_after_send(&SentMessage {
            app: app.clone(),
            server_msg_id: envelope.server_msg_id,
            sender: envelope.sender.clone(),
            sender_device: envelope.sender_device.clone(),
            conversation: req.to,
            client_msg_id: envelope.client_msg_id.clone(),
            server_time: envelope.server_time,
            content: envelope.content.clone(),
        })
        .await?;
        let fanout = Fanout::of(&envelope, audience).indexed(settings.search);
        let receipt = self.deliver(app, Some(session), fanout).await?;
        self.after_send_stored(app);
        Ok(receipt)
    }

    /// The receipt of an earlier attempt, if the dedup window has it.
    async fn cached_receipt(&self, session: &Session, client_msg_id: &str) -> Option<SendReceipt> {
        match self
            .inner
            .cache
            .dedup_get(&session.app, &session.user, client_msg_id)
            .await
        {
            Ok(hit) => {
                self.cache_answered();
                hit
            }
            Err(e) => {
                // The store still deduplicates; the cache only saves a round trip.
                self.cache_failed(&e);
                None
            }
        }
    }
}
