//! The admin API's success bodies. Handlers answer with these types and the
//! OpenAPI document derives their schemas from them, so the two agree.

use serde::Serialize;
use utoipa::ToSchema;

use bubble_core::engine::UserPresence;
use bubble_core::ports::SearchHit;
use bubble_core::{AppSettings, Group, GroupKind, Member, SendReceipt};

/// A created (or replaced) app.
#[derive(Serialize, ToSchema)]
pub struct AppCreated {
    /// The app id.
    pub id: String,
    /// The token secret (shown only here).
    pub secret: String,
}

/// An app, without its secret.
#[derive(Serialize, ToSchema)]
pub struct AppView {
    /// The app id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Limits and policies (docs/admin-api.md, "Apps").
    #[schema(value_type = Object)]
    pub settings: AppSettings,
}

/// An issued user token.
#[derive(Serialize, ToSchema)]
pub struct TokenIssued {
    /// The token to hand to the client.
    pub token: String,
    /// When it expires, in Unix milliseconds.
    pub expires_at: i64,
}

/// A group.
#[derive(Serialize, ToSchema)]
pub struct GroupView {
    /// The group id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// "normal" or "super".
    pub kind: String,
    /// The owner's user id.
    pub owner: String,
    /// When it was created, in Unix milliseconds.
    pub created_at: i64,
}

impl From<&Group> for GroupView {
    fn from(g: &Group) -> Self {
        GroupView {
            id: g.id.to_string(),
            name: g.name.clone(),
            kind: match g.kind {
                GroupKind::Normal => "normal",
                GroupKind::Super => "super",
            }
            .to_owned(),
            owner: g.owner.to_string(),
            created_at: g.created_at,
        }
    }
}

/// Members added, and the group after (it may have become a super group).
#[derive(Serialize, ToSchema)]
pub struct MembersAdded {
    /// How many were not members before.
    pub added: u64,
    /// The group now.
    pub group: GroupView,
}

/// Members removed.
#[derive(Serialize, ToSchema)]
pub struct MembersRemoved {
    /// How many were members.
    pub removed: u64,
}

/// A group's members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    /// Every member.
    pub members: Vec<MemberView>,
}

/// One member of a group.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// The user id.
    pub user: String,
    /// "owner", "admin" or "member".
    pub role: String,
    /// When they joined, in Unix milliseconds.
    pub joined_at: i64,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        MemberView {
            user: m.user.to_string(),
            role: format!("{:?}", m.role).to_lowercase(),
            joined_at: m.joined_at,
        }
    }
}

/// Where a system notice was stored.
#[derive(Serialize, ToSchema)]
pub struct PushReceipt {
    /// The notice's message id (hex).
    pub server_msg_id: String,
    /// Its inbox version (user and group targets).
    pub version: u64,
    /// Its sequence in the broadcast log (app target).
    pub seq: u64,
    /// The server's time, in Unix milliseconds.
    pub server_time: i64,
}

impl From<&SendReceipt> for PushReceipt {
    fn from(r: &SendReceipt) -> Self {
        PushReceipt {
            server_msg_id: r.server_msg_id.to_hex(),
            version: r.version,
            seq: r.seq,
            server_time: r.server_time,
        }
    }
}

/// Who is online.
#[derive(Serialize, ToSchema)]
pub struct PresenceList {
    /// One entry per user asked about.
    pub users: Vec<UserOnline>,
}

/// One user's presence.
#[derive(Serialize, ToSchema)]
pub struct UserOnline {
    /// The user id.
    pub user: String,
    /// Whether any device is connected.
    pub online: bool,
    /// The connected devices.
    pub devices: Vec<DeviceOnline>,
}

/// One connected device.
#[derive(Serialize, ToSchema)]
pub struct DeviceOnline {
    /// The device id.
    pub device: String,
    /// The platform it reported ("ios", "web", ...).
    pub platform: String,
    /// The node it is connected to.
    pub node: String,
    /// Since when, in Unix milliseconds.
    pub since: i64,
}

impl From<&UserPresence> for UserOnline {
    fn from(u: &UserPresence) -> Self {
        UserOnline {
            user: u.user.to_string(),
            online: !u.devices.is_empty(),
            devices: u
                .devices
                .iter()
                .map(|r| DeviceOnline {
                    device: r.device.to_string(),
                    platform: r.platform.clone(),
                    node: r.node.to_string(),
                    since: r.since,
                })
                .collect(),
        }
    }
}

/// A page of search hits.
#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    /// Hits in all pages.
    pub total: u64,
    /// This page, best first.
    pub hits: Vec<Hit>,
}

/// One message found.
#[derive(Serialize, ToSchema)]
pub struct Hit {
    /// The message id (hex).
    pub server_msg_id: String,
    /// Where it was sent.
    pub conversation: ConversationRef,
    /// Its sender's user id.
    pub sender: String,
    /// When it was stored, in Unix milliseconds.
    pub server_time: i64,
    /// Its text.
    pub text: String,
    /// The relevance score.
    pub score: f32,
}

/// A conversation: its kind and the peer's or group's id.
#[derive(Serialize, ToSchema)]
pub struct ConversationRef {
    /// "direct", "group", "supergroup", ...
    pub kind: String,
    /// The peer's user id or the group id.
    pub id: String,
}

impl From<&SearchHit> for Hit {
    fn from(h: &SearchHit) -> Self {
        Hit {
            server_msg_id: h.doc.server_msg_id.to_hex(),
            conversation: ConversationRef {
                kind: format!("{:?}", h.doc.conversation.kind).to_lowercase(),
                id: h.doc.conversation.id().to_owned(),
            },
            sender: h.doc.sender.to_string(),
            server_time: h.doc.server_time,
            text: h.doc.text.clone(),
            score: h.score,
        }
    }
}
