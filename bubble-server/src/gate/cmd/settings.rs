//! Settings (114) -> SettingsAck (115), Blocked (116) -> BlockedList (117),
//! and ReadStateQuery (118) -> ReadState (119).

use bubble_core::wire::conversation_from_pb;
use bubble_core::{
    Conversation, Engine, GroupId, MsgId, Result, Session, SettingsChange, validate_id,
};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode};

/// `SettingsRequest` -> `SettingsAck`.
#[derive(Debug)]
pub struct Settings {
    conversation: Conversation,
    change: SettingsChange,
}

impl Settings {
    /// Decodes a `SettingsRequest`.
    pub fn parse(frame: &Frame) -> Result<Settings> {
        let req: pb::SettingsRequest = decode(frame)?;
        Ok(Settings {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            change: SettingsChange {
                pinned: req.pinned,
                muted: req.muted,
                archived: req.archived,
                draft: req.draft,
                blocked: req.blocked,
            },
        })
    }

    /// Changes the settings; every one after the change, and the entry.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let changed = engine
            .change_settings(session, &self.conversation, &self.change)
            .await?;
        let body = pb::SettingsAck {
            settings: Some(changed.settings.to_pb()),
            version: changed.receipt.map_or(0, |r| r.version),
            prev_version: changed.receipt.map_or(0, |r| r.prev_version),
        };
        Ok(Reply::message(Command::SettingsAck, &body))
    }
}

/// `BlockedRequest` -> `BlockedList`.
#[derive(Debug)]
pub struct Blocked;

impl Blocked {
    /// Decodes a `BlockedRequest`.
    pub fn parse(frame: &Frame) -> Result<Blocked> {
        let _: pb::BlockedRequest = decode(frame)?;
        Ok(Blocked)
    }

    /// The users the caller blocked.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let users = engine.blocked(session).await?;
        let body = pb::BlockedList {
            user_ids: users.iter().map(|u| u.to_string()).collect(),
        };
        Ok(Reply::message(Command::BlockedList, &body))
    }
}

/// `ReadStateRequest` -> `ReadState`.
#[derive(Debug)]
pub struct ReadState {
    group: GroupId,
    id: MsgId,
}

impl ReadState {
    /// Decodes a `ReadStateRequest`.
    pub fn parse(frame: &Frame) -> Result<ReadState> {
        let req: pb::ReadStateRequest = decode(frame)?;
        validate_id("group id", &req.group_id)?;
        Ok(ReadState {
            group: GroupId::new(&req.group_id),
            id: MsgId::from_slice(&req.server_msg_id)?,
        })
    }

    /// Who of the group has read the message.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let state = engine.read_state(session, &self.group, &self.id).await?;
        let body = pb::ReadState {
            read_count: state.readers.len() as u64,
            member_count: state.members,
            readers: state.readers.iter().map(|u| u.to_string()).collect(),
        };
        Ok(Reply::message(Command::ReadState, &body))
    }
}
