//! What a message says beyond its content, checked and filled in by the
//! server: the message it replies to (with a preview the server takes),
//! where a forward came from, and whom it mentions.

use bubble_proto::pb;

use super::audience::{Audience, Holders};
use super::{Engine, Session};
use crate::error::{Error, Result};
use crate::types::*;

/// The longest preview of a replied-to message, in characters.
pub const REPLY_PREVIEW_CHARS: usize = 100;

/// The most users one message mentions by name.
pub const MAX_MENTIONS: usize = 50;

/// What a message refers to beyond its content. The client names ids; the
/// engine checks each and fills in what it may not make up (the replied
/// message's sender and preview, a forward's origin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRefs {
    /// The message this one answers, in the same conversation.
    pub reply_to: Option<MsgId>,
    /// The original this one forwards, which the sender holds.
    pub forward_of: Option<MsgId>,
    /// Where the original is, when it is in a super group (else the
    /// sender's inbox).
    pub forward_from: Option<Conversation>,
    /// Group members mentioned (@user).
    pub mentions: Vec<UserId>,
    /// Everyone mentioned (@all): the group's owner and admins only.
    pub mention_all: bool,
}

impl MessageRefs {
    /// Whether it refers to nothing (most messages).
    pub fn is_empty(&self) -> bool {
        *self == MessageRefs::default()
    }
}

/// The start of a message for a reply's preview.
fn preview(content: &Content) -> String {
    content
        .as_text()
        .map(|t| t.chars().take(REPLY_PREVIEW_CHARS).collect())
        .unwrap_or_default()
}

/// A message as the sender can see it: the fields a reference takes.
struct Seen {
    id: MsgId,
    sender: UserId,
    server_time: i64,
    content: Content,
    meta: EntryMeta,
}

impl Engine {
    /// The meta of a new message with `refs`, sent by `session` to
    /// `audience`. With a forward and no content of its own, the message
    /// takes the original's content (`content` is replaced).
    pub(super) async fn compose(
        &self,
        session: &Session,
        audience: &Audience,
        refs: &MessageRefs,
        content: &mut Content,
    ) -> Result<EntryMeta> {
        if refs.is_empty() {
            return Ok(EntryMeta::none());
        }
        let mut meta = pb::EntryMeta::default();
        if let Some(id) = &refs.reply_to {
            let original = self
                .seen(session, Some(&audience.conversation), id)
                .await?
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "the message {id} a reply answers is not in this conversation"
                    ))
                })?;
            meta.reply_to = Some(pb::ReplyRef {
                server_msg_id: original.id.0.to_vec().into(),
                sender: original.sender.to_string(),
                content_type: original.content.kind as i32,
                preview: preview(&original.content),
            });
        }
        if let Some(id) = &refs.forward_of {
            let from = refs.forward_from.as_ref();
            let original = self.seen(session, from, id).await?.ok_or_else(|| {
                Error::not_found(format!("the message {id} to forward is not one you hold"))
            })?;
            // A forward of a forward names the first origin.
            let origin = original.meta.decode().forwarded_from;
            meta.forwarded_from = Some(origin.unwrap_or_else(|| pb::ForwardRef {
                server_msg_id: original.id.0.to_vec().into(),
                sender: original.sender.to_string(),
                server_time: original.server_time,
            }));
            if content.kind == ContentType::None {
                *content = original.content;
            }
        }
        if !refs.mentions.is_empty() || refs.mention_all {
            self.check_mentions(session, audience, refs)?;
            meta.mentions = refs.mentions.iter().map(|u| u.to_string()).collect();
            meta.mention_all = refs.mention_all;
        }
        Ok(EntryMeta::of(&meta))
    }

    /// Mentions name members of the group, @all needs its owner or an admin.
    fn check_mentions(
        &self,
        session: &Session,
        audience: &Audience,
        refs: &MessageRefs,
    ) -> Result<()> {
        if refs.mentions.len() > MAX_MENTIONS {
            return Err(Error::invalid(format!(
                "a message mentions at most {MAX_MENTIONS} users by name; use @all for more"
            )));
        }
        let members: Vec<&UserId> = match &audience.holders {
            Holders::Inboxes(copies) if audience.conversation.kind == ConversationKind::Group => {
                copies.iter().map(|c| &c.owner).collect()
            }
            Holders::Channel { members, .. } => members.iter().collect(),
            Holders::Inboxes(_) => {
                return Err(Error::invalid(
                    "mentions are for groups; a 1:1 message has one reader already",
                ));
            }
        };
        if let Some(stranger) = refs.mentions.iter().find(|u| !members.contains(u)) {
            return Err(Error::invalid(format!(
                "{stranger} is not a member of group {}, so cannot be mentioned",
                audience.conversation.id()
            )));
        }
        if refs.mention_all && audience.author_role < Some(Role::Admin) {
            return Err(Error::denied(format!(
                "only the owner and admins of group {} may mention everyone (@all); {} is not one",
                audience.conversation.id(),
                session.user
            )));
        }
        Ok(())
    }

    /// Message `id` as `session`'s user sees it in `conversation` (`None`:
    /// in any conversation of their inbox): from their inbox, or from a
    /// super group's log when they are a member.
    async fn seen(
        &self,
        session: &Session,
        conversation: Option<&Conversation>,
        id: &MsgId,
    ) -> Result<Option<Seen>> {
        let app = &session.app;
        if let Some(conversation) = conversation
            && conversation.kind == ConversationKind::SuperGroup
        {
            let group = GroupId::new(conversation.id());
            self.group_for_member(app, &group, &session.user).await?;
            let found = self.inner.channels.get(app, &group, id).await?;
            return Ok(found.map(|e| Seen {
                id: e.server_msg_id,
                sender: e.sender,
                server_time: e.server_time,
                content: e.content,
                meta: e.meta,
            }));
        }
        let found = self.inner.inbox.get(app, &session.user, id).await?;
        Ok(found
            .filter(|e| conversation.is_none_or(|c| e.conversation == *c))
            .map(|e| Seen {
                id: e.server_msg_id,
                sender: e.sender,
                server_time: e.server_time,
                content: e.content,
                meta: e.meta,
            }))
    }
}
