//! The requests a client sends after the handshake: each decoded from its
//! frame (`parse`), run against the engine (`apply`) and answered with a
//! [`Reply`], one module per command group.
//!
//! - [`messages`]: send (replies, forwards, mentions), recall, delete.
//! - [`revise`]: edit, react.
//! - [`settings`]: per-conversation settings, the block list, group read state.
//! - [`sync`]: sync pages of the inbox.
//! - [`history`]: one conversation's history, newest first.
//! - [`conversations`]: the conversation list.
//! - [`read`]: mark read, unread counts.
//! - [`groups`]: create, join, leave, members.
//! - [`group_admin`]: my groups, info, roles, transfer, mute, dismiss, add and remove members.
//! - [`channel`]: super group pulls.
//! - [`presence`]: who is online.
//! - [`search`]: history search.
//! - [`typing`]: typing notices (no answer on success).
//! - [`notifications`]: push-notification tokens and the app's background state.
//! - [`media`]: upload tickets for media messages.
//! - [`business`]: products' own commands.
//! - [`ping`]: heartbeats, answered inline by the handler.
//!
//! A body that does not decode is `INVALID_ARGUMENT` and the connection
//! stays open: the frame and its record were fine, only the request is
//! wrong.

pub mod business;
pub mod channel;
pub mod conversations;
pub mod group_admin;
pub mod groups;
pub mod history;
pub mod media;
pub mod messages;
pub mod notifications;
pub mod ping;
pub mod presence;
pub mod read;
pub mod revise;
pub mod search;
pub mod settings;
pub mod sync;
pub mod typing;

use bytes::Bytes;

use bubble_core::wire::error_to_pb;
use bubble_core::{Engine, Error, Result, Session, UserId, validate_id};
use bubble_proto::{Command, Frame, pb};

/// An answer's command and body, before it is stamped with the request's seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    command: Command,
    body: Bytes,
}

impl Reply {
    /// `message` as the body of `command`.
    pub fn message(command: Command, message: &impl prost::Message) -> Reply {
        Reply::raw(command, message.encode_to_vec())
    }

    /// A body as it is (business commands).
    pub fn raw(command: Command, body: impl Into<Bytes>) -> Reply {
        Reply {
            command,
            body: body.into(),
        }
    }

    /// The answer frame to request `seq`.
    pub fn into_frame(self, seq: u32) -> Frame {
        Frame::new(self.command, seq, self.body).into_response()
    }
}

/// An error answer to request `seq`.
pub fn error_frame(seq: u32, error: &Error) -> Frame {
    Frame::from_message(Command::Error, seq, &error_to_pb(error)).into_response()
}

/// An error answer with a protocol-level code (malformed frames, unknown
/// commands, limits, closing): failures of the connection, not of a request
/// the engine ran.
pub fn protocol_error(
    seq: u32,
    code: pb::ErrorCode,
    message: impl Into<String>,
    retryable: bool,
) -> Frame {
    let body = pb::Error {
        code: code as i32,
        message: message.into(),
        retryable,
    };
    Frame::from_message(Command::Error, seq, &body).into_response()
}

/// A frame's body as protobuf message `M`, or `INVALID_ARGUMENT` saying why not.
fn decode<M: prost::Message + Default>(frame: &Frame) -> Result<M> {
    frame
        .decode_body::<M>()
        .map_err(|e| Error::invalid(e.to_string()))
}

/// User ids from the wire, each checked.
fn user_ids(list: &[String]) -> Result<Vec<UserId>> {
    list.iter()
        .map(|u| validate_id("user id", u).map(|_| UserId::new(u)))
        .collect()
}

/// Room an answer keeps beside its list: the page's own fields (a group
/// id, counters, flags) and the record's seal.
const PAGE_HEADROOM: usize = 1024;

/// How many bytes of items one answer may carry, so that every page fits
/// in a frame however large its items are: a page holds at most `limit`
/// items and at most this many bytes of them (and always at least one), and
/// says `has_more` when either cut it short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBytes(pub usize);

impl PageBytes {
    /// The budget for frames of at most `max_frame_bytes`.
    pub fn for_frames(max_frame_bytes: usize) -> PageBytes {
        PageBytes(max_frame_bytes.saturating_sub(PAGE_HEADROOM))
    }

    /// Keeps the longest run of `items` that fits (the first one always);
    /// whether any were cut.
    pub fn fit<T: prost::Message>(self, items: &mut Vec<T>) -> bool {
        let mut used = 0;
        for (i, item) in items.iter().enumerate() {
            let len = item.encoded_len();
            // As a repeated field: a one-byte key, the length, the item.
            used += 1 + prost::encoding::encoded_len_varint(len as u64) + len;
            if used > self.0 && i > 0 {
                items.truncate(i);
                return true;
            }
        }
        false
    }
}

/// A page size from the wire: 0 asks for `default`. The engine caps what is
/// left.
fn page_limit(limit: u32, default: usize) -> usize {
    if limit == 0 { default } else { limit as usize }
}

/// A request a client may send after the handshake (pings aside: the
/// handler answers those inline).
#[derive(Debug)]
pub enum Request {
    /// Send (16).
    Send(messages::Send),
    /// Recall (25).
    Recall(messages::Recall),
    /// Delete (26).
    Delete(messages::Delete),
    /// Edit (112).
    Edit(revise::Edit),
    /// React (113).
    React(revise::React),
    /// Settings (114).
    Settings(settings::Settings),
    /// Blocked (116).
    Blocked(settings::Blocked),
    /// ReadStateQuery (118).
    ReadState(settings::ReadState),
    /// Sync (19).
    Sync(sync::Sync),
    /// History (28).
    History(history::History),
    /// Conversations (30).
    Conversations(conversations::Conversations),
    /// MarkRead (21).
    MarkRead(read::MarkRead),
    /// Unread (23).
    Unread(read::Unread),
    /// GroupCreate (32).
    GroupCreate(groups::Create),
    /// GroupJoin (34).
    GroupJoin(groups::Join),
    /// GroupLeave (35).
    GroupLeave(groups::Leave),
    /// GroupMembersQuery (36).
    GroupMembers(groups::Members),
    /// GroupsQuery (120).
    Groups(group_admin::Groups),
    /// GroupUpdate (122).
    GroupUpdate(group_admin::Update),
    /// GroupSetRole, GroupTransfer, GroupMute, GroupDismiss,
    /// GroupAddMembers, GroupRemoveMembers (123-128).
    GroupAdmin(group_admin::Admin),
    /// ChannelPull (48).
    ChannelPull(channel::Pull),
    /// PresenceQuery (64).
    Presence(presence::Query),
    /// Search (80).
    Search(search::Search),
    /// Typing (27).
    Typing(typing::Typing),
    /// PushRegister (129).
    PushRegister(notifications::Register),
    /// PushUnregister (130).
    PushUnregister(notifications::Unregister),
    /// AppState (131).
    AppState(notifications::AppState),
    /// MediaUpload (132).
    MediaUpload(media::Upload),
    /// A business command (>= 0x8000).
    Business(business::Business),
}

impl Request {
    /// Decodes `frame` as the request its command names. A known command a
    /// client may not send (an answer, a push, a handshake) is
    /// `INVALID_ARGUMENT`; the handler answers unknown commands itself.
    pub fn parse(frame: &Frame) -> Result<Request> {
        Ok(match frame.command {
            Command::Send => Request::Send(messages::Send::parse(frame)?),
            Command::Recall => Request::Recall(messages::Recall::parse(frame)?),
            Command::Delete => Request::Delete(messages::Delete::parse(frame)?),
            Command::Edit => Request::Edit(revise::Edit::parse(frame)?),
            Command::React => Request::React(revise::React::parse(frame)?),
            Command::Settings => Request::Settings(settings::Settings::parse(frame)?),
            Command::Blocked => Request::Blocked(settings::Blocked::parse(frame)?),
            Command::ReadStateQuery => Request::ReadState(settings::ReadState::parse(frame)?),
            Command::Sync => Request::Sync(sync::Sync::parse(frame)?),
            Command::History => Request::History(history::History::parse(frame)?),
            Command::Conversations => {
                Request::Conversations(conversations::Conversations::parse(frame)?)
            }
            Command::MarkRead => Request::MarkRead(read::MarkRead::parse(frame)?),
            Command::Unread => Request::Unread(read::Unread::parse(frame)?),
            Command::GroupCreate => Request::GroupCreate(groups::Create::parse(frame)?),
            Command::GroupJoin => Request::GroupJoin(groups::Join::parse(frame)?),
            Command::GroupLeave => Request::GroupLeave(groups::Leave::parse(frame)?),
            Command::GroupMembersQuery => Request::GroupMembers(groups::Members::parse(frame)?),
            Command::GroupsQuery => Request::Groups(group_admin::Groups::parse(frame)?),
            Command::GroupUpdate => Request::GroupUpdate(group_admin::Update::parse(frame)?),
            Command::GroupSetRole
            | Command::GroupTransfer
            | Command::GroupMute
            | Command::GroupDismiss
            | Command::GroupAddMembers
            | Command::GroupRemoveMembers => Request::GroupAdmin(group_admin::Admin::parse(frame)?),
            Command::ChannelPull => Request::ChannelPull(channel::Pull::parse(frame)?),
            Command::PresenceQuery => Request::Presence(presence::Query::parse(frame)?),
            Command::Search => Request::Search(search::Search::parse(frame)?),
            Command::Typing => Request::Typing(typing::Typing::parse(frame)?),
            Command::PushRegister => Request::PushRegister(notifications::Register::parse(frame)?),
            Command::PushUnregister => {
                Request::PushUnregister(notifications::Unregister::parse(frame)?)
            }
            Command::AppState => Request::AppState(notifications::AppState::parse(frame)?),
            Command::MediaUpload => Request::MediaUpload(media::Upload::parse(frame)?),
            Command::Business(_) => Request::Business(business::Business::parse(frame)?),
            other => {
                return Err(Error::invalid(format!(
                    "{other} is not a request a client may send after the handshake"
                )));
            }
        })
    }

    /// Runs the request; `None` when it has no answer (a typing notice).
    /// List answers hold at most `page` bytes of items.
    pub async fn apply(
        self,
        engine: &Engine,
        session: &Session,
        page: PageBytes,
    ) -> Result<Option<Reply>> {
        Ok(Some(match self {
            Request::Send(cmd) => cmd.apply(engine, session).await?,
            Request::Recall(cmd) => cmd.apply(engine, session).await?,
            Request::Delete(cmd) => cmd.apply(engine, session).await?,
            Request::Edit(cmd) => cmd.apply(engine, session).await?,
            Request::React(cmd) => cmd.apply(engine, session).await?,
            Request::Settings(cmd) => cmd.apply(engine, session).await?,
            Request::Blocked(cmd) => cmd.apply(engine, session).await?,
            Request::ReadState(cmd) => cmd.apply(engine, session).await?,
            Request::Sync(cmd) => cmd.apply(engine, session, page).await?,
            Request::History(cmd) => cmd.apply(engine, session, page).await?,
            Request::Conversations(cmd) => cmd.apply(engine, session, page).await?,
            Request::MarkRead(cmd) => cmd.apply(engine, session).await?,
            Request::Unread(cmd) => cmd.apply(engine, session).await?,
            Request::GroupCreate(cmd) => cmd.apply(engine, session).await?,
            Request::GroupJoin(cmd) => cmd.apply(engine, session).await?,
            Request::GroupLeave(cmd) => cmd.apply(engine, session).await?,
            Request::GroupMembers(cmd) => cmd.apply(engine, session, page).await?,
            Request::Groups(cmd) => cmd.apply(engine, session, page).await?,
            Request::GroupUpdate(cmd) => cmd.apply(engine, session).await?,
            Request::GroupAdmin(cmd) => cmd.apply(engine, session).await?,
            Request::ChannelPull(cmd) => cmd.apply(engine, session, page).await?,
            Request::Presence(cmd) => cmd.apply(engine, session).await?,
            Request::Search(cmd) => cmd.apply(engine, session, page).await?,
            Request::Typing(cmd) => {
                cmd.apply(engine, session).await?;
                return Ok(None);
            }
            Request::PushRegister(cmd) => cmd.apply(engine, session).await?,
            Request::PushUnregister(cmd) => cmd.apply(engine, session).await?,
            Request::AppState(cmd) => cmd.apply(engine, session).await?,
            // Without the gate's media store: see `apply_with`.
            Request::MediaUpload(cmd) => cmd.apply(engine, session, None).await?,
            Request::Business(cmd) => cmd.apply(engine, session).await?,
        }))
    }

    /// [`Request::apply`], with the media store MediaUpload hands out
    /// tickets for (`None`: uploads are off).
    pub async fn apply_with(
        self,
        engine: &Engine,
        session: &Session,
        page: PageBytes,
        media: Option<&bubble_media::MediaStore>,
    ) -> Result<Option<Reply>> {
        match self {
            Request::MediaUpload(cmd) => Ok(Some(cmd.apply(engine, session, media).await?)),
            other => other.apply(engine, session, page).await,
        }
    }

    /// Whether this is a send (counted and timed as messages in).
    pub fn is_send(&self) -> bool {
        matches!(self, Request::Send(_))
    }
}
