//! Notices from the system (stored, synced like messages) and business
//! pushes from a product's own code (not stored).

use bytes::Bytes;

use super::audience::{Author, OwnerCopy, system_user};
use super::deliver::{Envelope, Fanout};
use super::route::Outgoing;
use super::{BROADCAST_CHANNEL, Engine, SystemTarget};
use crate::error::Result;
use crate::push::PushEvent;
use crate::types::*;

impl Engine {
    /// A notice from the system: to one user's inbox (conversation SYSTEM
    /// "system"), to every member of a group (conversation: the group; a
    /// super group's log), or to every user of the app (stored in the app's
    /// broadcast log and pushed to everyone online on `nodes`, this node
    /// included).
    pub async fn system_push(
        &self,
        app: &AppId,
        target: SystemTarget,
        content: Content,
        nodes: &[NodeId],
    ) -> Result<SendReceipt> {
        let settings = self.settings(app).await?;
        crate::content::validate(&settings, &content)?;
        let to = match &target {
            SystemTarget::User(user) => {
                validate_id("user id", user.as_str())?;
                Conversation::direct(user)
            }
            SystemTarget::Group(group) => Conversation::group(group),
            SystemTarget::App => Conversation::system(BROADCAST_CHANNEL),
        };
        let system = system_user();
        let now = now_millis();
        let notice = Envelope {
            content,
            ..Envelope::server_made(
                EntryKind::SystemNotice,
                self.inner.ids.next(app, &system, &to, now),
                &system,
                &DeviceId::new("server"),
                now,
            )
        };
        let fanout = match target {
            SystemTarget::User(user) => Fanout::Inboxes {
                entries: vec![notice.entry(OwnerCopy {
                    owner: user.clone(),
                    conversation: Conversation::system("system"),
                    direction: Direction::In,
                })],
                // The receipt names the user's new version.
                receipt_owner: Some(user),
                index: false,
            },
            SystemTarget::Group(_) => {
                let audience = self.audience(app, Author::System, &to).await?;
                match Fanout::of(&notice, audience) {
                    // Everyone left: there is no inbox to store it in.
                    Fanout::Inboxes { entries, .. } if entries.is_empty() => {
                        return Ok(SendReceipt {
                            server_msg_id: notice.server_msg_id,
                            version: 0,
                            seq: 0,
                            server_time: now,
                            duplicate: false,
                            prev_version: 0,
                        });
                    }
                    fanout => fanout,
                }
            }
            SystemTarget::App => Fanout::Broadcast {
                entry: notice.channel_entry(GroupId::new(BROADCAST_CHANNEL)),
                nodes: nodes.to_vec(),
            },
        };
        self.deliver(app, None, fanout).await
    }

    /// Pushes a product-defined event to every device of a user (not stored).
    pub async fn business_push(&self, app: &AppId, user: &UserId, command: u16, body: Bytes) {
        self.push(
            app,
            vec![Outgoing {
                user: user.clone(),
                except_device: None,
                event: PushEvent::Business { command, body },
            }],
        )
        .await;
    }
}
