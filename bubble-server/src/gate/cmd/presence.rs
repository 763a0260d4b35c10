//! PresenceQuery (64) -> PresenceResult (65).

use bubble_core::{Engine, Error, Result, Session, UserId};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode, user_ids};

/// Most users one query may ask about.
pub const MAX_PRESENCE_USERS: usize = 500;

/// `PresenceQuery` -> `PresenceResult`.
#[derive(Debug)]
pub struct Query {
    users: Vec<UserId>,
}

impl Query {
    /// Decodes a `PresenceQuery` of at most [`MAX_PRESENCE_USERS`] users.
    pub fn parse(frame: &Frame) -> Result<Query> {
        let req: pb::PresenceQuery = decode(frame)?;
        if req.user_ids.len() > MAX_PRESENCE_USERS {
            return Err(Error::invalid(format!(
                "ask about at most {MAX_PRESENCE_USERS} users at once"
            )));
        }
        Ok(Query {
            users: user_ids(&req.user_ids)?,
        })
    }

    /// Each user's online devices.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let users = engine.presence(&session.app, &self.users).await?;
        let body = pb::PresenceResult {
            users: users
                .iter()
                .map(|u| pb::UserPresence {
                    user_id: u.user.to_string(),
                    online: !u.devices.is_empty(),
                    devices: u
                        .devices
                        .iter()
                        .map(|r| pb::DevicePresence {
                            device_id: r.device.to_string(),
                            platform: r.platform.clone(),
                            since: r.since,
                        })
                        .collect(),
                })
                .collect(),
        };
        Ok(Reply::message(Command::PresenceResult, &body))
    }
}
