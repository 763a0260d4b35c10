//! Presence (who is online, on which devices) and typing notices, which
//! are pushed and never stored: a missed one is harmless.

use super::audience::Author;
use super::route::Outgoing;
use super::{Engine, Session, UserPresence};
use crate::error::{Error, Result};
use crate::push::PushEvent;
use crate::types::*;

impl Engine {
    /// Whether users are online, and where.
    pub async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>> {
        let routes = self.inner.presence.routes_of(app, users).await?;
        Ok(users
            .iter()
            .map(|u| UserPresence {
                user: u.clone(),
                devices: routes.iter().filter(|r| r.user == *u).cloned().collect(),
            })
            .collect())
    }

    /// Tells the other side of a conversation that the caller is typing.
    pub async fn typing(&self, session: &Session, conversation: &Conversation) -> Result<()> {
        let (app, me) = (&session.app, &session.user);
        let typing = |user: UserId, conversation: Conversation| Outgoing {
            user,
            except_device: None,
            event: PushEvent::Typing {
                conversation,
                from: me.clone(),
            },
        };
        let outgoing = match conversation.kind {
            ConversationKind::Direct => {
                vec![typing(
                    UserId::new(conversation.id()),
                    Conversation::direct(me),
                )]
            }
            ConversationKind::Group | ConversationKind::SuperGroup => self
                .audience(app, Author::User(me), conversation)
                .await?
                .holders
                .users()
                .filter(|u| *u != me)
                .map(|u| typing(u.clone(), conversation.clone()))
                .collect(),
            ConversationKind::System => {
                return Err(Error::invalid("nobody types in the system conversation"));
            }
        };
        self.push(app, outgoing).await;
        Ok(())
    }
}
