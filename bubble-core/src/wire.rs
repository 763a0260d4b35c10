//! Conversions between domain types and the protobuf bodies of `bubble-proto`.
//!
//! The server uses them at the gate; caches use [`encode_entry`] /
//! [`decode_entry`] to keep entries as compact bytes.

use bytes::Bytes;
use prost::Message;

use bubble_proto::pb;

use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// A conversation for the wire.
pub fn conversation_to_pb(c: &Conversation) -> pb::Conversation {
    pb::Conversation {
        kind: c.kind as i32,
        id: c.id().to_owned(),
    }
}

/// A conversation from the wire (missing or unknown kinds are refused).
pub fn conversation_from_pb(c: Option<&pb::Conversation>) -> Result<Conversation> {
    let c = c.ok_or_else(|| Error::invalid("conversation is missing"))?;
    let kind = u8::try_from(c.kind)
        .ok()
        .and_then(|k| ConversationKind::from_u8(k).ok())
        .ok_or_else(|| Error::invalid(format!("unknown conversation kind {}", c.kind)))?;
    validate_id("conversation id", &c.id)?;
    Ok(Conversation::from_parts(kind, &c.id))
}

/// Content for the wire.
pub fn content_to_pb(c: &Content) -> pb::Content {
    pb::Content {
        r#type: c.kind as i32,
        body: c.body.clone(),
    }
}

/// Content from the wire.
pub fn content_from_pb(c: Option<&pb::Content>) -> Result<Content> {
    let Some(c) = c else {
        return Ok(Content::none());
    };
    let kind = u8::try_from(c.r#type)
        .ok()
        .and_then(|k| ContentType::from_u8(k).ok())
        .ok_or_else(|| Error::invalid(format!("unknown content type {}", c.r#type)))?;
    Ok(Content {
        kind,
        body: c.body.clone(),
    })
}

fn direction_to_pb(d: Direction) -> i32 {
    match d {
        Direction::Out => pb::Direction::Out as i32,
        Direction::In => pb::Direction::In as i32,
    }
}

fn direction_from_pb(d: i32) -> Result<Direction> {
    match pb::Direction::try_from(d) {
        Ok(pb::Direction::Out) => Ok(Direction::Out),
        Ok(pb::Direction::In) => Ok(Direction::In),
        _ => Err(Error::invalid(format!("unknown direction {d}"))),
    }
}

fn entry_kind_from_pb(k: i32) -> Result<EntryKind> {
    u8::try_from(k)
        .ok()
        .and_then(|k| EntryKind::from_u8(k).ok())
        .ok_or_else(|| Error::invalid(format!("unknown entry kind {k}")))
}

/// Meta for the wire (absent when empty).
pub fn meta_to_pb(m: &EntryMeta) -> Option<pb::EntryMeta> {
    (!m.is_empty()).then(|| m.decode())
}

/// Meta from the wire.
pub fn meta_from_pb(m: Option<&pb::EntryMeta>) -> EntryMeta {
    m.map_or_else(EntryMeta::none, EntryMeta::of)
}

/// Reaction counts for the wire.
pub fn reactions_to_pb(counts: &[ReactionCount]) -> Vec<pb::ReactionCount> {
    counts
        .iter()
        .map(|r| pb::ReactionCount {
            emoji: r.emoji.clone(),
            count: r.count,
            mine: r.mine,
        })
        .collect()
}

/// An inbox entry for the wire (the owner is implied by the session).
pub fn entry_to_pb(e: &InboxEntry) -> pb::Entry {
    pb::Entry {
        version: e.version,
        kind: e.kind as i32,
        conversation: Some(conversation_to_pb(&e.conversation)),
        direction: direction_to_pb(e.direction),
        server_msg_id: Bytes::copy_from_slice(&e.server_msg_id.0),
        sender: e.sender.to_string(),
        sender_device: e.sender_device.to_string(),
        client_msg_id: e.client_msg_id.clone(),
        client_seq: e.client_seq,
        create_time: e.create_time,
        server_time: e.server_time,
        content: Some(content_to_pb(&e.content)),
        read_up_to: e.read_up_to,
        meta: meta_to_pb(&e.meta),
        reactions: Vec::new(),
    }
}

/// An inbox entry from the wire, for `owner`.
pub fn entry_from_pb(owner: &UserId, e: &pb::Entry) -> Result<InboxEntry> {
    Ok(InboxEntry {
        owner: owner.clone(),
        version: e.version,
        kind: entry_kind_from_pb(e.kind)?,
        conversation: conversation_from_pb(e.conversation.as_ref())?,
        direction: direction_from_pb(e.direction)?,
        server_msg_id: MsgId::from_slice(&e.server_msg_id)?,
        sender: UserId::new(&e.sender),
        sender_device: DeviceId::new(&e.sender_device),
        client_msg_id: e.client_msg_id.clone(),
        client_seq: e.client_seq,
        create_time: e.create_time,
        server_time: e.server_time,
        content: content_from_pb(e.content.as_ref())?,
        read_up_to: e.read_up_to,
        meta: meta_from_pb(e.meta.as_ref()),
    })
}

/// A channel entry for the wire.
pub fn channel_entry_to_pb(e: &ChannelEntry) -> pb::ChannelEntry {
    pb::ChannelEntry {
        group_id: e.group.to_string(),
        seq: e.seq,
        kind: e.kind as i32,
        server_msg_id: Bytes::copy_from_slice(&e.server_msg_id.0),
        sender: e.sender.to_string(),
        sender_device: e.sender_device.to_string(),
        client_msg_id: e.client_msg_id.clone(),
        client_seq: e.client_seq,
        create_time: e.create_time,
        server_time: e.server_time,
        content: Some(content_to_pb(&e.content)),
        meta: meta_to_pb(&e.meta),
        reactions: Vec::new(),
    }
}

/// A channel entry from the wire.
pub fn channel_entry_from_pb(e: &pb::ChannelEntry) -> Result<ChannelEntry> {
    Ok(ChannelEntry {
        group: GroupId::new(&e.group_id),
        seq: e.seq,
        kind: entry_kind_from_pb(e.kind)?,
        server_msg_id: MsgId::from_slice(&e.server_msg_id)?,
        sender: UserId::new(&e.sender),
        sender_device: DeviceId::new(&e.sender_device),
        client_msg_id: e.client_msg_id.clone(),
        client_seq: e.client_seq,
        create_time: e.create_time,
        server_time: e.server_time,
        content: content_from_pb(e.content.as_ref())?,
        meta: meta_from_pb(e.meta.as_ref()),
    })
}

/// A receipt for the wire.
pub fn receipt_to_pb(r: &SendReceipt) -> pb::SendAck {
    pb::SendAck {
        server_msg_id: Bytes::copy_from_slice(&r.server_msg_id.0),
        version: r.version,
        seq: r.seq,
        server_time: r.server_time,
        duplicate: r.duplicate,
        prev_version: r.prev_version,
    }
}

/// A receipt from the wire.
pub fn receipt_from_pb(r: &pb::SendAck) -> Result<SendReceipt> {
    Ok(SendReceipt {
        server_msg_id: MsgId::from_slice(&r.server_msg_id)?,
        version: r.version,
        seq: r.seq,
        server_time: r.server_time,
        duplicate: r.duplicate,
        prev_version: r.prev_version,
    })
}

/// An entry as compact bytes (caches), owner included.
pub fn encode_entry(e: &InboxEntry) -> Vec<u8> {
    let mut wrapped = entry_to_pb(e);
    // The owner rides in the sender_device-free slot of a wrapper: keep it
    // simple and prefix it, length-delimited.
    let mut out = Vec::with_capacity(wrapped.encoded_len() + e.owner.as_str().len() + 2);
    prost::encoding::encode_varint(e.owner.as_str().len() as u64, &mut out);
    out.extend_from_slice(e.owner.as_str().as_bytes());
    wrapped.encode(&mut out).expect("a Vec grows as needed");
    wrapped.content = None;
    out
}

/// Reads back [`encode_entry`]'s bytes.
pub fn decode_entry(mut bytes: &[u8]) -> Result<InboxEntry> {
    let corrupt = |what: &str| Error::internal(format!("cached entry is corrupt: {what}"));
    let len = prost::encoding::decode_varint(&mut bytes).map_err(|_| corrupt("owner length"))?;
    let len = usize::try_from(len).map_err(|_| corrupt("owner length"))?;
    if bytes.len() < len {
        return Err(corrupt("owner"));
    }
    let owner = std::str::from_utf8(&bytes[..len]).map_err(|_| corrupt("owner"))?;
    let owner = UserId::new(owner);
    let entry = pb::Entry::decode(&bytes[len..]).map_err(|e| corrupt(&e.to_string()))?;
    // A value that is not an entry is the cache's problem, not the caller's
    // invalid input (which is what `entry_from_pb` says of a client's entry).
    entry_from_pb(&owner, &entry).map_err(|e| corrupt(e.message()))
}

/// How one [`ErrorKind`] travels: its code in the client protocol, its
/// HTTP status in the admin API, and its name in metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorWire {
    /// The kind.
    pub kind: ErrorKind,
    /// The protocol's code for it (`Error.code`).
    pub code: pb::ErrorCode,
    /// The admin API's HTTP status for it.
    pub http_status: u16,
    /// Its name in snake case (`bubble_errors_total{kind="…"}`).
    pub name: &'static str,
}

const fn row(
    kind: ErrorKind,
    code: pb::ErrorCode,
    http_status: u16,
    name: &'static str,
) -> ErrorWire {
    ErrorWire {
        kind,
        code,
        http_status,
        name,
    }
}

/// Every error kind and how it travels: the one place the mapping is
/// written, read in both directions. Two kinds share a code only where the
/// client acts the same (a conflict is retried like an outage); reading a
/// code back gives the first kind that has it.
pub const ERROR_TABLE: [ErrorWire; 12] = {
    use ErrorKind as K;
    use pb::ErrorCode as C;
    [
        row(K::InvalidInput, C::InvalidArgument, 400, "invalid_input"),
        row(K::TooLarge, C::TooLarge, 400, "too_large"),
        row(K::NotFound, C::NotFound, 404, "not_found"),
        row(K::AlreadyExists, C::AlreadyExists, 409, "already_exists"),
        row(
            K::Unauthenticated,
            C::Unauthenticated,
            401,
            "unauthenticated",
        ),
        row(
            K::PermissionDenied,
            C::PermissionDenied,
            403,
            "permission_denied",
        ),
        row(K::RateLimited, C::RateLimited, 429, "rate_limited"),
        row(K::Unavailable, C::Unavailable, 503, "unavailable"),
        row(K::Timeout, C::Timeout, 503, "timeout"),
        row(K::Expired, C::RecallExpired, 400, "expired"),
        row(K::Conflict, C::Unavailable, 409, "conflict"),
        row(K::Internal, C::Internal, 500, "internal"),
    ]
};

/// The table's row for `kind` (a kind added later travels as `Internal`).
pub fn error_wire(kind: ErrorKind) -> &'static ErrorWire {
    ERROR_TABLE
        .iter()
        .find(|w| w.kind == kind)
        .unwrap_or(&ERROR_TABLE[ERROR_TABLE.len() - 1])
}

/// The protocol code an error of `kind` is answered with.
pub fn error_code(kind: ErrorKind) -> pb::ErrorCode {
    error_wire(kind).code
}

/// The kind a protocol code stands for: the first row with that code.
/// Protocol-level codes (`MALFORMED_FRAME`, `UNKNOWN_COMMAND`,
/// `HANDSHAKE_FAILED`, `GOING_AWAY`) and codes this version does not know
/// have no kind of their own: `Internal`.
pub fn error_kind(code: i32) -> ErrorKind {
    ERROR_TABLE
        .iter()
        .find(|w| w.code as i32 == code)
        .map_or(ErrorKind::Internal, |w| w.kind)
}

/// An error for the wire.
pub fn error_to_pb(e: &Error) -> pb::Error {
    pb::Error {
        code: error_code(e.kind()) as i32,
        message: e.message().to_owned(),
        retryable: e.is_retryable(),
    }
}
