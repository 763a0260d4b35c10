//! Who holds a copy of a message: computed once per request, from the
//! conversation and the sender, with one read of the group for groups.
//!
//! A 1:1 message has two copies: the sender's (*out*, the conversation seen
//! as the peer) and the peer's (*in*, the conversation seen as the sender).
//! A normal group message has one copy per member, the sender's first
//! (fan-out on write). A super group's message is one entry in the group's
//! log that members pull (fan-out on read). The same rule serves sends,
//! recalls, typing notices and system notices.

use super::{Engine, SYSTEM_SENDER};
use crate::error::{Error, Result};
use crate::types::*;

/// One owner's copy of a message: whose inbox, and how it looks from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OwnerCopy {
    /// Whose inbox.
    pub owner: UserId,
    /// The conversation from the owner's view (for 1:1, the other user).
    pub conversation: Conversation,
    /// Whether the owner sent it (out) or received it (in).
    pub direction: Direction,
}

/// Who writes: a user (a member of the group, for group messages), or the
/// system (which belongs to no group and keeps no copy).
#[derive(Clone, Copy)]
pub(super) enum Author<'a> {
    /// A user; their own copy comes first.
    User(&'a UserId),
    /// The server itself: notices.
    System,
}

/// Where a message in one conversation goes.
pub(super) struct Audience {
    /// The conversation as the author sees it (a group under its real kind).
    pub conversation: Conversation,
    /// Who holds it.
    pub holders: Holders,
    /// A user author's role in the group (`None` for 1:1 and the system).
    pub author_role: Option<Role>,
}

/// The holders of a message.
pub(super) enum Holders {
    /// Fan-out on write: one inbox copy per owner, the author's first.
    Inboxes(Vec<OwnerCopy>),
    /// Fan-out on read: one entry in the group's log, pushed to its members.
    Channel {
        /// The super group.
        group: GroupId,
        /// Its members, each of whom is told of the new entry.
        members: Vec<UserId>,
    },
}

impl Holders {
    /// Every user who holds or is told of the message.
    pub(super) fn users(&self) -> impl Iterator<Item = &UserId> {
        let (copies, members): (&[OwnerCopy], &[UserId]) = match self {
            Holders::Inboxes(copies) => (copies, &[]),
            Holders::Channel { members, .. } => (&[], members),
        };
        copies.iter().map(|c| &c.owner).chain(members)
    }
}

/// The copies of a 1:1 message from `sender` to `peer` (one when they are
/// the same user: a note to oneself).
pub(super) fn direct_copies(sender: &UserId, peer: &UserId) -> Vec<OwnerCopy> {
    let mut copies = vec![OwnerCopy {
        owner: sender.clone(),
        conversation: Conversation::direct(peer),
        direction: Direction::Out,
    }];
    if peer != sender {
        copies.push(OwnerCopy {
            owner: peer.clone(),
            conversation: Conversation::direct(sender),
            direction: Direction::In,
        });
    }
    copies
}

/// The copies of a normal group's message: the author's own (even if they
/// have left since), then every other member's.
fn group_copies(
    author: Author<'_>,
    conversation: &Conversation,
    members: Vec<Member>,
) -> Vec<OwnerCopy> {
    let mut copies = Vec::with_capacity(members.len() + 1);
    let author = match author {
        Author::User(user) => {
            copies.push(OwnerCopy {
                owner: user.clone(),
                conversation: conversation.clone(),
                direction: Direction::Out,
            });
            Some(user)
        }
        Author::System => None,
    };
    copies.extend(
        members
            .into_iter()
            .filter(|m| Some(&m.user) != author)
            .map(|m| OwnerCopy {
                owner: m.user,
                conversation: conversation.clone(),
                direction: Direction::In,
            }),
    );
    copies
}

impl Engine {
    /// Who gets a new message from `author` in `to`. For groups, one read
    /// of the group (the group and its members): `NotFound` if there is no
    /// such group, `PermissionDenied` if a user author is not a member.
    /// The group's stored kind decides fan-out on write or on read, whichever
    /// group kind the caller named.
    pub(super) async fn audience(
        &self,
        app: &AppId,
        author: Author<'_>,
        to: &Conversation,
    ) -> Result<Audience> {
        match to.kind {
            ConversationKind::Direct => {
                let Author::User(sender) = author else {
                    // A notice to one user is addressed to them directly.
                    return Err(Error::internal("a system notice has no 1:1 peer"));
                };
                Ok(Audience {
                    conversation: to.clone(),
                    holders: Holders::Inboxes(direct_copies(sender, &UserId::new(to.id()))),
                    author_role: None,
                })
            }
            ConversationKind::Group | ConversationKind::SuperGroup => {
                let id = GroupId::new(to.id());
                let (group, members) = self
                    .inner
                    .groups
                    .roster(app, &id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("group {id} does not exist")))?;
                let author_role = match author {
                    Author::User(user) => {
                        let member = members.iter().find(|m| m.user == *user).ok_or_else(|| {
                            Error::denied(format!("{user} is not a member of group {id}"))
                        })?;
                        Engine::check_may_write(&group, member, now_millis())?;
                        Some(member.role)
                    }
                    Author::System => None,
                };
                Ok(match group.kind {
                    GroupKind::Normal => Audience {
                        conversation: Conversation::group(&id),
                        holders: Holders::Inboxes(group_copies(
                            author,
                            &Conversation::group(&id),
                            members,
                        )),
                        author_role,
                    },
                    GroupKind::Super => Audience {
                        conversation: Conversation::super_group(&id),
                        holders: Holders::Channel {
                            group: id,
                            members: members.into_iter().map(|m| m.user).collect(),
                        },
                        author_role,
                    },
                })
            }
            ConversationKind::System => Err(Error::denied(
                "clients cannot send to the system conversation",
            )),
        }
    }

    /// Who holds copies of a message `sender` already fanned out into
    /// inboxes in `conversation` (their own copy's view): the peer, or the
    /// group's members now. Fan-out stays on write even if the group has
    /// since become a super group, and a sender who left still reaches it.
    pub(super) async fn inbox_holders(
        &self,
        app: &AppId,
        sender: &UserId,
        conversation: &Conversation,
    ) -> Result<Vec<OwnerCopy>> {
        self.inbox_holders_since(app, sender, conversation, i64::MAX)
            .await
    }

    /// [`Engine::inbox_holders`] of a message sent at `sent_at`: members
    /// who joined after it hold no copy, so they get nothing about it (an
    /// edit's new text included).
    pub(super) async fn inbox_holders_since(
        &self,
        app: &AppId,
        sender: &UserId,
        conversation: &Conversation,
        sent_at: i64,
    ) -> Result<Vec<OwnerCopy>> {
        match conversation.kind {
            ConversationKind::Direct => Ok(direct_copies(sender, &UserId::new(conversation.id()))),
            _ => {
                let id = GroupId::new(conversation.id());
                let mut members = self.inner.groups.members(app, &id).await?;
                members.retain(|m| m.joined_at <= sent_at);
                Ok(group_copies(Author::User(sender), conversation, members))
            }
        }
    }
}

/// The user system notices come from.
pub(super) fn system_user() -> UserId {
    UserId::new(SYSTEM_SENDER)
}
