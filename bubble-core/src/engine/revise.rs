//! Revising what was sent: a recall (by the sender, within the app's
//! window, for every holder) and a delete (from the caller's own view).

use super::audience::{Author, Holders, OwnerCopy};
use super::deliver::{Envelope, Fanout};
use super::{Engine, Session};
use crate::apps::AppSettings;
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// Refuses a recall by anyone but the sender, or after the app's window.
fn check_recall(
    settings: &AppSettings,
    caller: &UserId,
    sender: &UserId,
    sent_at: i64,
    now: i64,
) -> Result<()> {
    if sender != caller {
        return Err(Error::denied("only the sender may recall a message"));
    }
    if now - sent_at > settings.recall_window_ms {
        return Err(Error::new(
            ErrorKind::Expired,
            format!(
                "the recall window of {} s has passed",
                settings.recall_window_ms / 1000
            ),
        ));
    }
    Ok(())
}

impl Engine {
    /// Takes back a message the caller sent, within the app's recall window.
    /// Every owner gets a recall entry; the message stops counting as unread
    /// and leaves the search index.
    pub async fn recall(
        &self,
        session: &Session,
        conversation: &Conversation,
        id: &MsgId,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        let now = now_millis();
        let recall =
            Envelope::server_made(EntryKind::Recall, *id, &session.user, &session.device, now);
        if conversation.kind == ConversationKind::SuperGroup {
            let audience = self
                .audience(app, Author::User(&session.user), conversation)
                .await?;
            let original = match &audience.holders {
                Holders::Channel { group, .. } => self.inner.channels.get(app, group, id).await?,
                Holders::Inboxes(_) => None,
            }
            .ok_or_else(|| {
                Error::not_found(format!(
                    "message {id} is not in group {}",
                    conversation.id()
                ))
            })?;
            check_recall(
                &settings,
                &session.user,
                &original.sender,
                original.server_time,
                now,
            )?;
            return self
                .deliver(app, Some(session), Fanout::of(&recall, audience))
                .await;
        }
        let original = self
            .inner
            .inbox
            .get(app, &session.user, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("message {id} is not in your inbox")))?;
        if original.direction != Direction::Out || original.kind != EntryKind::Message {
            return Err(Error::denied("only the sender may recall a message"));
        }
        check_recall(
            &settings,
            &session.user,
            &original.sender,
            original.server_time,
            now,
        )?;
        let copies = self
            .inbox_holders(app, &session.user, &original.conversation)
            .await?;
        for copy in copies.iter().filter(|c| c.direction == Direction::In) {
            self.inner
                .inbox
                .mark_message_read(app, &copy.owner, id)
                .await?;
        }
        let fanout = Fanout::to_inboxes(&recall, copies).indexed(settings.search);
        self.deliver(app, Some(session), fanout).await
    }

    /// Deletes a message from the caller's own inbox view (every device of
    /// the caller gets the delete entry; nobody else is affected).
    pub async fn delete_for_me(&self, session: &Session, id: &MsgId) -> Result<u64> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        let original = self
            .inner
            .inbox
            .get(app, &session.user, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("message {id} is not in your inbox")))?;
        self.inner
            .inbox
            .mark_message_read(app, &session.user, id)
            .await?;
        let delete = Envelope::server_made(
            EntryKind::Delete,
            *id,
            &session.user,
            &session.device,
            now_millis(),
        );
        let own_copy = OwnerCopy {
            owner: session.user.clone(),
            conversation: original.conversation,
            direction: original.direction,
        };
        let fanout = Fanout::to_inboxes(&delete, vec![own_copy]).indexed(settings.search);
        Ok(self.deliver(app, Some(session), fanout).await?.version)
    }
}
