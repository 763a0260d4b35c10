//! Revising what was sent: a recall and an edit (by the sender, within the
//! app's windows, for every holder), a reaction (by anyone who sees the
//! message, for every holder) and a delete (from the caller's own view).

use bubble_proto::pb;

use super::audience::{Author, Holders, OwnerCopy};
use super::deliver::{Envelope, Fanout};
use super::{Engine, Session};
use crate::apps::AppSettings;
use crate::error::{Error, ErrorKind, Result};
use crate::ports::ReactionLimits;
use crate::types::*;

/// The longest reaction key, in bytes (one emoji with its modifiers fits).
pub const MAX_EMOJI_BYTES: usize = 32;

/// Refuses an edit by anyone but the sender, of anything but a message, or
/// after the app's edit window.
fn check_edit(
    settings: &AppSettings,
    caller: &UserId,
    original: (&UserId, EntryKind, i64),
    now: i64,
) -> Result<()> {
    let (sender, kind, sent_at) = original;
    if sender != caller || kind != EntryKind::Message {
        return Err(Error::denied("only the sender may edit a message"));
    }
    if settings.edit_window_ms == 0 {
        return Err(Error::denied("this app does not allow edits"));
    }
    within_window("edit", settings.edit_window_ms, sent_at, now)
}

/// `Expired` once `window_ms` has passed since `sent_at`, naming the window.
fn within_window(what: &str, window_ms: i64, sent_at: i64, now: i64) -> Result<()> {
    if now - sent_at > window_ms {
        return Err(Error::new(
            ErrorKind::Expired,
            format!("the {what} window of {} s has passed", window_ms / 1000),
        ));
    }
    Ok(())
}

/// The meta of an edited message: its own, with the edit's time.
fn edited(meta: &EntryMeta, now: i64) -> EntryMeta {
    EntryMeta::of(&pb::EntryMeta {
        edited_at: now,
        ..meta.decode()
    })
}

/// Refuses a reaction key that is empty, too long, or not one printable token.
fn check_emoji(emoji: &str) -> Result<()> {
    if emoji.is_empty()
        || emoji.len() > MAX_EMOJI_BYTES
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(format!(
            "a reaction is one emoji (or short key) of 1 to {MAX_EMOJI_BYTES} bytes, without spaces"
        )));
    }
    Ok(())
}

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
    within_window("recall", settings.recall_window_ms, sent_at, now)
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

    /// Replaces the content of a message the caller sent, within the app's
    /// edit window. Every holder gets an edit entry carrying the new
    /// content and meta (with `edited_at`); the stores change the message
    /// in place, so history, the conversation list and search show the new
    /// text.
    pub async fn edit(
        &self,
        session: &Session,
        conversation: &Conversation,
        id: &MsgId,
        content: Content,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        let settings = self.settings(app).await?;
        crate::content::validate(&settings, &content)?;
        let now = now_millis();
        // The edit's create time is the message's server time, so a search
        // index that replaces the message's words keeps its date.
        let edit = |meta: &EntryMeta, sent_at: i64| Envelope {
            content: content.clone(),
            meta: edited(meta, now),
            create_time: sent_at,
            ..Envelope::server_made(EntryKind::Edit, *id, &session.user, &session.device, now)
        };
        if conversation.kind == ConversationKind::SuperGroup {
            let audience = self
                .audience(app, Author::User(&session.user), conversation)
                .await?;
            let original = self.channel_message(app, &audience, id).await?;
            check_edit(
                &settings,
                &session.user,
                (&original.sender, original.kind, original.server_time),
                now,
            )?;
            return self
                .deliver(
                    app,
                    Some(session),
                    Fanout::of(&edit(&original.meta, original.server_time), audience),
                )
                .await;
        }
        let original = self.own_message(session, conversation, id).await?;
        if original.direction != Direction::Out {
            return Err(Error::denied("only the sender may edit a message"));
        }
        check_edit(
            &settings,
            &session.user,
            (&original.sender, original.kind, original.server_time),
            now,
        )?;
        let copies = self
            .inbox_holders_since(
                app,
                &session.user,
                &original.conversation,
                original.server_time,
            )
            .await?;
        let fanout = Fanout::to_inboxes(&edit(&original.meta, original.server_time), copies)
            .indexed(settings.search);
        self.deliver(app, Some(session), fanout).await
    }

    /// Adds (or, with `remove`, takes off) the caller's reaction `emoji` on
    /// a message they can see. Every holder gets a reaction entry; the
    /// counts live in the store, one row per user and emoji. A change that
    /// changes nothing (adding twice) writes nothing and answers a receipt
    /// marked duplicate.
    pub async fn react(
        &self,
        session: &Session,
        conversation: &Conversation,
        id: &MsgId,
        emoji: &str,
        remove: bool,
    ) -> Result<SendReceipt> {
        let app = &session.app;
        check_emoji(emoji)?;
        let settings = self.settings(app).await?;
        let now = now_millis();
        let reaction = Envelope {
            meta: EntryMeta::of(&pb::EntryMeta {
                reaction: Some(pb::ReactionChange {
                    emoji: emoji.to_owned(),
                    added: !remove,
                }),
                ..Default::default()
            }),
            ..Envelope::server_made(
                EntryKind::Reaction,
                *id,
                &session.user,
                &session.device,
                now,
            )
        };
        let limits = ReactionLimits {
            per_message: settings.reactions_per_message,
            per_user: settings.reactions_per_user,
        };
        let fanout = if conversation.kind == ConversationKind::SuperGroup {
            let audience = self
                .audience(app, Author::User(&session.user), conversation)
                .await?;
            self.channel_message(app, &audience, id).await?;
            Fanout::of(&reaction, audience)
        } else {
            let original = self.own_message(session, conversation, id).await?;
            let copies = self
                .inbox_holders_since(
                    app,
                    &session.user,
                    &original.conversation,
                    original.server_time,
                )
                .await?;
            Fanout::to_inboxes(&reaction, copies)
        };
        let changed = self
            .inner
            .inbox
            .react(app, id, &session.user, emoji, !remove, limits)
            .await?;
        if !changed {
            return Ok(SendReceipt {
                server_msg_id: *id,
                version: 0,
                seq: 0,
                server_time: now,
                duplicate: true,
                prev_version: 0,
            });
        }
        self.deliver(app, Some(session), fanout).await
    }

    /// The message `id` of a super group's log (`NotFound` if it is not there).
    async fn channel_message(
        &self,
        app: &AppId,
        audience: &super::audience::Audience,
        id: &MsgId,
    ) -> Result<ChannelEntry> {
        match &audience.holders {
            Holders::Channel { group, .. } => self.inner.channels.get(app, group, id).await?,
            Holders::Inboxes(_) => None,
        }
        .ok_or_else(|| {
            Error::not_found(format!(
                "message {id} is not in group {}",
                audience.conversation.id()
            ))
        })
    }

    /// The caller's own entry of message `id` in `conversation` (their
    /// view), or `NotFound`.
    async fn own_message(
        &self,
        session: &Session,
        conversation: &Conversation,
        id: &MsgId,
    ) -> Result<InboxEntry> {
        self.inner
            .inbox
            .get(&session.app, &session.user, id)
            .await?
            .filter(|e| e.conversation == *conversation && e.kind == EntryKind::Message)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "message {id} is not in your conversation {}",
                    conversation.id()
                ))
            })
    }

    /// Deletes a message from the caller's own inbox view (every device of
    /// the caller gets the delete entry; nobody else is affected). The
    /// receipt names the delete entry's version and the one before it, so
    /// the deleting device moves its cursor as after a send.
    pub async fn delete_for_me(&self, session: &Session, id: &MsgId) -> Result<SendReceipt> {
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
        self.deliver(app, Some(session), fanout).await
    }
}
