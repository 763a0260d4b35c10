//! A user's own settings of each conversation (pin, mute, archive, draft,
//! block), kept by the inbox store from settings entries in the user's own
//! inbox, so every device of theirs learns a change by the version sync.

use bubble_proto::pb;

use super::audience::OwnerCopy;
use super::deliver::{Envelope, Fanout};
use super::{Engine, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// Which settings to change; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Pin to the top of the list.
    pub pinned: Option<bool>,
    /// No notifications.
    pub muted: Option<bool>,
    /// Out of the main list.
    pub archived: Option<bool>,
    /// Unsent text ("" clears it).
    pub draft: Option<String>,
    /// 1:1 only: refuse the peer's messages.
    pub blocked: Option<bool>,
}

impl SettingsChange {
    /// `current` with this change applied.
    fn apply(&self, current: &ConversationSettings) -> ConversationSettings {
        ConversationSettings {
            pinned: self.pinned.unwrap_or(current.pinned),
            muted: self.muted.unwrap_or(current.muted),
            archived: self.archived.unwrap_or(current.archived),
            blocked: self.blocked.unwrap_or(current.blocked),
            draft: self.draft.clone().unwrap_or_else(|| current.draft.clone()),
        }
    }
}

/// What a settings change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsChanged {
    /// Every setting after the change.
    pub settings: ConversationSettings,
    /// The settings entry in the caller's inbox (`None`: nothing changed,
    /// nothing written).
    pub receipt: Option<SendReceipt>,
}

impl Engine {
    /// Changes the caller's settings of `conversation` (as they see it).
    /// Unless nothing changed, a settings entry with all of them goes into
    /// the caller's inbox: their other devices get it by push or sync, and
    /// the conversation list shows them.
    pub async fn change_settings(
        &self,
        session: &Session,
        conversation: &Conversation,
        change: &SettingsChange,
    ) -> Result<SettingsChanged> {
        let app = &session.app;
        validate_id("conversation id", conversation.id())?;
        if change.blocked.is_some() && conversation.kind != ConversationKind::Direct {
            return Err(Error::invalid(
                "blocking is for 1:1 conversations: name the user as a DIRECT conversation",
            ));
        }
        if change.blocked == Some(true) && conversation.id() == session.user.as_str() {
            return Err(Error::invalid("you cannot block yourself"));
        }
        let app_settings = self.settings(app).await?;
        if let Some(draft) = &change.draft
            && draft.len() > app_settings.max_text_bytes
        {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "a draft is at most {} bytes, the app's longest text message",
                    app_settings.max_text_bytes
                ),
            ));
        }
        let current = self
            .inner
            .inbox
            .settings(app, &session.user, conversation)
            .await?;
        let settings = change.apply(&current);
        if settings == current {
            return Ok(SettingsChanged {
                settings,
                receipt: None,
            });
        }
        let meta = pb::EntryMeta {
            settings: Some(settings.to_pb()),
            ..Default::default()
        };
        let now = now_millis();
        let id = self.inner.ids.next(app, &session.user, conversation, now);
        let envelope = Envelope {
            meta: EntryMeta::of(&meta),
            ..Envelope::server_made(EntryKind::Settings, id, &session.user, &session.device, now)
        };
        let own = OwnerCopy {
            owner: session.user.clone(),
            conversation: conversation.clone(),
            direction: Direction::Out,
        };
        let receipt = self
            .deliver(app, Some(session), Fanout::to_inboxes(&envelope, vec![own]))
            .await?;
        Ok(SettingsChanged {
            settings,
            receipt: Some(receipt),
        })
    }

    /// The caller's settings of one conversation.
    pub async fn conversation_settings(
        &self,
        session: &Session,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        self.inner
            .inbox
            .settings(&session.app, &session.user, conversation)
            .await
    }

    /// The users the caller blocked, in user id order.
    pub async fn blocked(&self, session: &Session) -> Result<Vec<UserId>> {
        self.inner.inbox.blocked(&session.app, &session.user).await
    }

    /// `owner`'s settings of `conversation`; the defaults from a store
    /// that keeps none (a product's own store without the method), so
    /// sends and the list keep working there (nobody can block on it).
    pub(super) async fn settings_or_default(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        super::default_if_unsupported(self.inner.inbox.settings(app, owner, conversation).await)
    }

    /// Refuses a 1:1 message to a user who blocked the sender. The sender
    /// is not told why (the error says only that it was refused), so being
    /// blocked looks like any other refusal. A store that keeps no
    /// settings has no blocks.
    pub(super) async fn check_not_blocked(&self, session: &Session, peer: &UserId) -> Result<()> {
        if *peer == session.user {
            return Ok(());
        }
        let theirs = Conversation::direct(&session.user);
        let settings = self
            .settings_or_default(&session.app, peer, &theirs)
            .await?;
        if settings.blocked {
            return Err(Error::denied(format!("the message to {peer} was refused")));
        }
        Ok(())
    }
}
