//! Domain types: apps, users, conversations, messages, inbox entries.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a string id. Ids are opaque to bubble; see [`validate_id`].
            pub fn new(id: impl AsRef<str>) -> $name {
                $name(Arc::from(id.as_ref()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name::new(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name(Arc::from(s))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$name, D::Error> {
                <String as serde::Deserialize>::deserialize(d).map($name::from)
            }
        }
    };
}

string_id!(
    /// A business (tenant) on a shared deployment. Nothing crosses apps.
    AppId
);
string_id!(
    /// A user, unique within an app.
    UserId
);
string_id!(
    /// One of a user's devices (phone, laptop...), chosen by the client.
    DeviceId
);
string_id!(
    /// A group or super group, unique within an app.
    GroupId
);
string_id!(
    /// A server node of a cluster.
    NodeId
);

/// Longest id bubble accepts, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Checks that an id is usable as a key in every backend: 1 to 128 bytes,
/// no control characters, and none of the characters backends use as
/// separators (`:`, `/`, `|`, `#`).
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::invalid(format!(
            "{what} must be 1 to {MAX_ID_LEN} bytes, got {}",
            id.len()
        )));
    }
    if let Some(c) = id
        .chars()
        .find(|c| c.is_control() || matches!(c, ':' | '/' | '|' | '#'))
    {
        return Err(Error::invalid(format!(
            "{what} {id:?} contains {c:?}; ids may not contain control characters or : / | #"
        )));
    }
    Ok(())
}

/// Globally unique message id (16 bytes): the milliseconds it was made (6
/// bytes, big-endian: ids sort by time) then `hash(app, sender, receiver,
/// unique id)` (10 bytes); see [`crate::ids`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MsgId(pub [u8; 16]);

impl MsgId {
    /// Parses the 16 raw bytes of a wire id.
    pub fn from_slice(bytes: &[u8]) -> Result<MsgId> {
        let raw: [u8; 16] = bytes.try_into().map_err(|_| {
            Error::invalid(format!(
                "server_msg_id must be 16 bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(MsgId(raw))
    }

    /// Parses the 32-character lowercase hex form.
    pub fn from_hex(s: &str) -> Result<MsgId> {
        let v = hex::decode(s).map_err(|e| Error::invalid(format!("bad message id {s:?}: {e}")))?;
        MsgId::from_slice(&v)
    }

    /// The 32-character lowercase hex form (how stores and logs show it).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({})", self.to_hex())
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What kind of conversation. Numbers match the wire and are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ConversationKind {
    /// One to one.
    Direct = 1,
    /// Normal group: fan-out on write.
    Group = 2,
    /// Super group: fan-out on read.
    SuperGroup = 3,
    /// System notices.
    System = 4,
}

impl ConversationKind {
    /// Its name where a conversation is written as `kind:id` (push
    /// notifications, send hooks): `direct`, `group`, `super_group`, `system`.
    pub fn name(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
            ConversationKind::SuperGroup => "super_group",
            ConversationKind::System => "system",
        }
    }

    /// From the stored/wire number.
    pub fn from_u8(v: u8) -> Result<ConversationKind> {
        Ok(match v {
            1 => ConversationKind::Direct,
            2 => ConversationKind::Group,
            3 => ConversationKind::SuperGroup,
            4 => ConversationKind::System,
            other => {
                return Err(Error::invalid(format!("unknown conversation kind {other}")));
            }
        })
    }
}

/// A conversation seen from one owner: for [`ConversationKind::Direct`] the
/// id is the *other* user; for groups it is the group id (the seed's `pID`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conversation {
    /// Which kind.
    pub kind: ConversationKind,
    /// The peer user id or the group id.
    pub id: Arc<str>,
}

impl Conversation {
    /// `kind:id` ("direct:alice", "group:g1"), as push notifications and
    /// send hooks name a conversation.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.name(), self.id)
    }

    /// A 1:1 conversation with `peer`.
    pub fn direct(peer: &UserId) -> Conversation {
        Conversation {
            kind: ConversationKind::Direct,
            id: peer.0.clone(),
        }
    }

    /// A normal group.
    pub fn group(group: &GroupId) -> Conversation {
        Conversation {
            kind: ConversationKind::Group,
            id: group.0.clone(),
        }
    }

    /// A super group.
    pub fn super_group(group: &GroupId) -> Conversation {
        Conversation {
            kind: ConversationKind::SuperGroup,
            id: group.0.clone(),
        }
    }

    /// System notices from `source` (e.g. "system").
    pub fn system(source: &str) -> Conversation {
        Conversation {
            kind: ConversationKind::System,
            id: Arc::from(source),
        }
    }

    /// Builds one from stored parts.
    pub fn from_parts(kind: ConversationKind, id: &str) -> Conversation {
        Conversation {
            kind,
            id: Arc::from(id),
        }
    }

    /// The id as text.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Who an inbox entry is for, seen from its owner (the seed's `direct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The owner sent it (seed: 1).
    Out,
    /// The owner received it (seed: -1).
    In,
}

impl Direction {
    /// The seed's number: 1 out, -1 in.
    pub fn as_i8(self) -> i8 {
        match self {
            Direction::Out => 1,
            Direction::In => -1,
        }
    }

    /// From the seed's number.
    pub fn from_i8(v: i8) -> Result<Direction> {
        match v {
            1 => Ok(Direction::Out),
            -1 => Ok(Direction::In),
            other => Err(Error::invalid(format!(
                "direction must be 1 or -1, got {other}"
            ))),
        }
    }
}

/// What an entry records. Numbers match the wire and are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A chat message.
    Message = 1,
    /// The sender took back `server_msg_id`.
    Recall = 2,
    /// The owner deleted `server_msg_id` for themselves.
    Delete = 3,
    /// The peer read the owner's messages up to `server_msg_id`.
    ReadReceipt = 4,
    /// The owner read the conversation up to `read_up_to` (syncs badges across devices).
    ReadCursor = 5,
    /// A notice from the system.
    SystemNotice = 6,
    /// The sender edited `server_msg_id`: the entry carries the message's
    /// new content and meta.
    Edit = 7,
    /// Someone added or removed a reaction on `server_msg_id`
    /// ([`EntryMeta::reaction`]).
    Reaction = 8,
    /// The owner changed their settings of the conversation
    /// ([`EntryMeta::settings`]); only in the owner's own inbox.
    Settings = 9,
}

impl EntryKind {
    /// From the stored/wire number.
    pub fn from_u8(v: u8) -> Result<EntryKind> {
        Ok(match v {
            1 => EntryKind::Message,
            2 => EntryKind::Recall,
            3 => EntryKind::Delete,
            4 => EntryKind::ReadReceipt,
            5 => EntryKind::ReadCursor,
            6 => EntryKind::SystemNotice,
            7 => EntryKind::Edit,
            8 => EntryKind::Reaction,
            9 => EntryKind::Settings,
            other => return Err(Error::invalid(format!("unknown entry kind {other}"))),
        })
    }

    /// Whether this entry counts toward unread (only messages and notices received).
    pub fn counts_as_unread(self) -> bool {
        matches!(self, EntryKind::Message | EntryKind::SystemNotice)
    }
}

/// What the bytes of a [`Content`] are. Numbers match the wire and are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ContentType {
    /// No content (recalls, deletes, receipts).
    None = 0,
    /// UTF-8 text.
    Text = 1,
    /// A reference to a file on a CDN (`pb::MediaRef`).
    Media = 2,
    /// A short inline voice clip (`pb::Voice`).
    Voice = 3,
    /// A product-defined JSON or XML payload (`pb::Custom`).
    Custom = 4,
}

impl ContentType {
    /// From the stored/wire number.
    pub fn from_u8(v: u8) -> Result<ContentType> {
        Ok(match v {
            0 => ContentType::None,
            1 => ContentType::Text,
            2 => ContentType::Media,
            3 => ContentType::Voice,
            4 => ContentType::Custom,
            other => return Err(Error::invalid(format!("unknown content type {other}"))),
        })
    }
}

/// A message's content: its type and its encoded body, exactly as on the
/// wire and in the stores, so nothing is re-encoded on the way through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// What `body` is.
    pub kind: ContentType,
    /// Text bytes, or the encoded `MediaRef` / `Voice` / `Custom`.
    pub body: Bytes,
}

impl Content {
    /// No content.
    pub fn none() -> Content {
        Content {
            kind: ContentType::None,
            body: Bytes::new(),
        }
    }

    /// A text message.
    pub fn text(text: impl Into<String>) -> Content {
        Content {
            kind: ContentType::Text,
            body: Bytes::from(text.into()),
        }
    }

    /// A media reference.
    pub fn media(media: &bubble_proto::pb::MediaRef) -> Content {
        Content {
            kind: ContentType::Media,
            body: Bytes::from(prost::Message::encode_to_vec(media)),
        }
    }

    /// A short voice clip.
    pub fn voice(voice: &bubble_proto::pb::Voice) -> Content {
        Content {
            kind: ContentType::Voice,
            body: Bytes::from(prost::Message::encode_to_vec(voice)),
        }
    }

    /// A custom payload.
    pub fn custom(custom: &bubble_proto::pb::Custom) -> Content {
        Content {
            kind: ContentType::Custom,
            body: Bytes::from(prost::Message::encode_to_vec(custom)),
        }
    }

    /// The text, for text content.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            ContentType::Text => std::str::from_utf8(&self.body).ok(),
            _ => None,
        }
    }

    /// Words worth indexing for search: the text, a file's name, a custom
    /// payload's body when it is text.
    pub fn searchable_text(&self) -> Option<String> {
        use prost::Message;
        match self.kind {
            ContentType::Text => self.as_text().map(str::to_owned),
            ContentType::Media => bubble_proto::pb::MediaRef::decode(self.body.clone())
                .ok()
                .filter(|m| !m.name.is_empty())
                .map(|m| m.name),
            ContentType::Custom => bubble_proto::pb::Custom::decode(self.body.clone())
                .ok()
                .and_then(|c| String::from_utf8(c.body.to_vec()).ok()),
            ContentType::None | ContentType::Voice => None,
        }
    }
}

/// What an entry says beyond its content: the encoded [`pb::EntryMeta`]
/// (reply, forward, mentions, edit time, reaction, settings). Empty for
/// most entries, so stores keep the bytes as they are and decode them
/// only when a rule needs one field (a mention, a settings change).
///
/// [`pb::EntryMeta`]: bubble_proto::pb::EntryMeta
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta(Bytes);

impl EntryMeta {
    /// No meta.
    pub fn none() -> EntryMeta {
        EntryMeta(Bytes::new())
    }

    /// `meta`, encoded (empty when it says nothing).
    pub fn of(meta: &bubble_proto::pb::EntryMeta) -> EntryMeta {
        if *meta == bubble_proto::pb::EntryMeta::default() {
            return EntryMeta::none();
        }
        EntryMeta(Bytes::from(prost::Message::encode_to_vec(meta)))
    }

    /// Stored or received bytes, checked to decode.
    pub fn from_bytes(bytes: Bytes) -> Result<EntryMeta> {
        if !bytes.is_empty() {
            <bubble_proto::pb::EntryMeta as prost::Message>::decode(bytes.clone())
                .map_err(|e| Error::invalid(format!("entry meta does not decode: {e}")))?;
        }
        Ok(EntryMeta(bytes))
    }

    /// The encoded bytes (empty: no meta).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Whether it says nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The decoded fields (all default when empty).
    pub fn decode(&self) -> bubble_proto::pb::EntryMeta {
        <bubble_proto::pb::EntryMeta as prost::Message>::decode(self.0.clone()).unwrap_or_default()
    }

    /// Whether a message with this meta mentions `user` (by name or @all).
    pub fn mentions(&self, user: &UserId) -> bool {
        if self.is_empty() {
            return false;
        }
        let m = self.decode();
        m.mention_all || m.mentions.iter().any(|u| u == user.as_str())
    }

    /// A settings entry's settings.
    pub fn settings(&self) -> Option<ConversationSettings> {
        if self.is_empty() {
            return None;
        }
        self.decode()
            .settings
            .map(|s| ConversationSettings::from_pb(&s))
    }
}

/// A user's own settings of one conversation, synced to their devices
/// by [`EntryKind::Settings`] entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConversationSettings {
    /// Shown at the top of the list.
    pub pinned: bool,
    /// No notifications.
    pub muted: bool,
    /// Out of the main list until something new arrives.
    pub archived: bool,
    /// 1:1: the peer's messages are refused.
    pub blocked: bool,
    /// Unsent text.
    pub draft: String,
}

impl ConversationSettings {
    /// The flags as stores keep them in one integer column.
    pub fn flags(&self) -> u8 {
        u8::from(self.pinned)
            | u8::from(self.muted) << 1
            | u8::from(self.archived) << 2
            | u8::from(self.blocked) << 3
    }

    /// Settings from a stored flags column and draft.
    pub fn from_flags(flags: u8, draft: String) -> ConversationSettings {
        ConversationSettings {
            pinned: flags & 1 != 0,
            muted: flags & 2 != 0,
            archived: flags & 4 != 0,
            blocked: flags & 8 != 0,
            draft,
        }
    }

    /// The wire form.
    pub fn to_pb(&self) -> bubble_proto::pb::ConversationSettings {
        bubble_proto::pb::ConversationSettings {
            pinned: self.pinned,
            muted: self.muted,
            archived: self.archived,
            draft: self.draft.clone(),
            blocked: self.blocked,
        }
    }

    /// From the wire form.
    pub fn from_pb(s: &bubble_proto::pb::ConversationSettings) -> ConversationSettings {
        ConversationSettings {
            pinned: s.pinned,
            muted: s.muted,
            archived: s.archived,
            blocked: s.blocked,
            draft: s.draft.clone(),
        }
    }
}

/// One reaction on a message, counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many users put it there.
    pub count: u64,
    /// Whether the asking user is one of them.
    pub mine: bool,
}

/// An entry in one owner's inbox: one row of the seed's message table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The owner (the seed's `qID`).
    pub owner: UserId,
    /// The owner's version of this entry: strictly increasing per owner.
    pub version: u64,
    /// What this entry records.
    pub kind: EntryKind,
    /// The conversation seen from the owner (the seed's `pID`).
    pub conversation: Conversation,
    /// Sent or received by the owner (the seed's `direct`).
    pub direction: Direction,
    /// The message id; for recall/delete/receipt, the message referred to.
    pub server_msg_id: MsgId,
    /// Who sent the message (or did the recall, or read).
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// The sender's dedup id (empty for entries the server makes).
    pub client_msg_id: String,
    /// The sender's per-conversation counter.
    pub client_seq: u64,
    /// The sender's clock (ms since epoch).
    pub create_time: i64,
    /// The server's clock (ms since epoch).
    pub server_time: i64,
    /// The content (empty for recall/delete/receipt/cursor entries).
    pub content: Content,
    /// For [`EntryKind::ReadCursor`]: the version read up to.
    pub read_up_to: u64,
    /// Reply, forward, mentions, edit time, reaction, settings.
    pub meta: EntryMeta,
}

impl InboxEntry {
    /// Whether the entry starts out unread for its owner: a message or
    /// notice received (the seed's `direct = -1`).
    pub fn starts_unread(&self) -> bool {
        self.direction == Direction::In && self.kind.counts_as_unread()
    }

    /// Whether `other` carries the same message: every field but the
    /// owner's own (owner, version, conversation, direction, read mark) is
    /// equal. Entries of one delivery that do share one stored message row
    /// in the stores that write each message once.
    pub fn same_message(&self, other: &InboxEntry) -> bool {
        self.server_msg_id == other.server_msg_id
            && self.kind == other.kind
            && self.sender == other.sender
            && self.sender_device == other.sender_device
            && self.client_msg_id == other.client_msg_id
            && self.client_seq == other.client_seq
            && self.create_time == other.create_time
            && self.server_time == other.server_time
            && self.content == other.content
            && self.meta == other.meta
    }

    /// The conversation as `owner` sees it, where `owner` holds an entry
    /// of the same delivery: for 1:1, the other party (the two parties are
    /// this entry's owner and its peer); for every other kind, the same.
    pub fn conversation_for(&self, owner: &UserId) -> Conversation {
        if self.conversation.kind == ConversationKind::Direct && *owner != self.owner {
            Conversation::direct(&self.owner)
        } else {
            self.conversation.clone()
        }
    }
}

/// One entry of a super group's channel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEntry {
    /// The group.
    pub group: GroupId,
    /// The group's seq of this entry: strictly increasing per group.
    pub seq: u64,
    /// Message, recall or notice.
    pub kind: EntryKind,
    /// The message id (for recall, the recalled one).
    pub server_msg_id: MsgId,
    /// The sender.
    pub sender: UserId,
    /// The sender's device.
    pub sender_device: DeviceId,
    /// The sender's dedup id.
    pub client_msg_id: String,
    /// The sender's counter.
    pub client_seq: u64,
    /// Sender's clock.
    pub create_time: i64,
    /// Server's clock.
    pub server_time: i64,
    /// The content.
    pub content: Content,
    /// Reply, forward, mentions, edit time, reaction.
    pub meta: EntryMeta,
}

/// What a sender gets back for an accepted message. A retry with the same
/// client message id gets the very same receipt (with `duplicate` set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    /// The message id.
    pub server_msg_id: MsgId,
    /// The sender's own version of the message (0 for super groups).
    pub version: u64,
    /// The group seq (super groups only, else 0).
    pub seq: u64,
    /// Server time of acceptance.
    pub server_time: i64,
    /// True when this answers a retry.
    pub duplicate: bool,
    /// The sender's version just before `version`: a sending device that
    /// holds exactly this may move its cursor to `version` without a sync.
    /// 0 on a duplicate (not known any more) and for super groups.
    pub prev_version: u64,
}

/// A page of a user's inbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxPage {
    /// Entries in version order (newest first for a history page).
    pub entries: Vec<InboxEntry>,
    /// More entries follow the last one (older ones, for a history page).
    pub has_more: bool,
}

/// A page of a channel log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelPage {
    /// Entries in seq order (newest first for a history page).
    pub entries: Vec<ChannelEntry>,
    /// More entries follow the last one (older ones, for a history page).
    pub has_more: bool,
}

/// How many unread entries one conversation has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnreadCount {
    /// The conversation (owner's view).
    pub conversation: Conversation,
    /// Unread messages received in it.
    pub count: u64,
    /// One of them mentions the owner.
    pub mentioned: bool,
}

/// The exclusive upper bound a backwards page starts below: `before` as
/// given, or no bound (`u64::MAX`) for 0, which the history and list
/// requests use for "from the newest".
pub fn page_before(before: u64) -> u64 {
    if before == 0 { u64::MAX } else { before }
}

/// The sort key of a conversation list: newest activity first. The
/// server time of the newest message in the high bits, its position (a
/// version, or a super group's seq) in the low 20 bits so keys are unique
/// per list, so inbox conversations and super groups sort together by time.
pub fn activity_key(server_time: i64, position: u64) -> u64 {
    ((server_time.max(0) as u64) << 20) | (position & 0xF_FFFF)
}

/// One conversation of an owner's list: what a chat app's home screen
/// shows for it. Kept by the inbox store as entries arrive (see
/// [`crate::ports::InboxStore::conversations`] for the rules), so a list
/// page is one indexed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The conversation, as the owner sees it.
    pub conversation: Conversation,
    /// The sort key ([`activity_key`] of the newest message or notice): a
    /// list is newest first, and the next page starts before the last key.
    pub activity: u64,
    /// What the list shows as the last entry: the newest message or notice,
    /// or, once that one is recalled (or deleted by the owner), the recall
    /// (or delete) entry naming it.
    pub last: InboxEntry,
    /// Received messages and notices not yet read (as [`UnreadCount`]).
    pub unread: u64,
    /// The owner's read mark: the highest `read_up_to` of their read
    /// cursors in it (a version of their inbox; 0: never marked).
    pub read_up_to: u64,
    /// 1:1: the highest of the owner's versions the peer has read, from
    /// the peer's read receipts (0: none yet). A message of the owner with
    /// a version at or below it shows as read.
    pub peer_read_up_to: u64,
    /// The owner's settings of it.
    pub settings: ConversationSettings,
    /// An unread message (version above `read_up_to`) mentions the owner.
    pub mentioned: bool,
}

/// A page of an owner's conversation list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationPage {
    /// Newest activity first.
    pub conversations: Vec<ConversationSummary>,
    /// Older conversations remain: ask again before the last one's activity.
    pub has_more: bool,
}

/// Whether a group fans out on write or on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GroupKind {
    /// Fan-out on write: every member's inbox gets a copy.
    Normal = 1,
    /// Fan-out on read: one channel log, members pull by seq.
    Super = 2,
}

impl GroupKind {
    /// From the stored number.
    pub fn from_u8(v: u8) -> Result<GroupKind> {
        match v {
            1 => Ok(GroupKind::Normal),
            2 => Ok(GroupKind::Super),
            other => Err(Error::invalid(format!("unknown group kind {other}"))),
        }
    }
}

/// A member's role in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// Ordinary member.
    Member = 1,
    /// May change the group's info, add, remove and mute members.
    Admin = 2,
    /// Created the group (or was given it); names admins, hands it on,
    /// dismisses it.
    Owner = 3,
}

impl Role {
    /// From the stored number.
    pub fn from_u8(v: u8) -> Result<Role> {
        match v {
            1 => Ok(Role::Member),
            2 => Ok(Role::Admin),
            3 => Ok(Role::Owner),
            other => Err(Error::invalid(format!("unknown member role {other}"))),
        }
    }
}

/// A group (normal or super).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's id.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// Fan-out on write or on read.
    pub kind: GroupKind,
    /// Who owns it now (its creator, until ownership is transferred).
    pub owner: UserId,
    /// Creation time (ms).
    pub created_at: i64,
    /// Where its picture is ("" for none).
    pub avatar_url: String,
    /// What its owner or admins pinned for every member to read.
    pub announcement: String,
    /// Only the owner and admins may write.
    pub muted: bool,
}

impl Group {
    /// A new group with no avatar, no announcement, not muted.
    pub fn new(id: GroupId, name: impl Into<String>, kind: GroupKind, owner: UserId) -> Group {
        Group {
            id,
            name: name.into(),
            kind,
            owner,
            created_at: now_millis(),
            avatar_url: String::new(),
            announcement: String::new(),
            muted: false,
        }
    }
}

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// When they joined (ms).
    pub joined_at: i64,
    /// They may not write until this time (ms; 0: not muted).
    pub muted_until: i64,
}

impl Member {
    /// A member who joins now, not muted.
    pub fn new(user: UserId, role: Role) -> Member {
        Member {
            user,
            role,
            joined_at: now_millis(),
            muted_until: 0,
        }
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
