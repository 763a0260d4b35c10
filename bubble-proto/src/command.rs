//! The command table: which body a frame carries.

use std::fmt;

/// First code of the range that products route to their own handlers
/// (the seed's router: many businesses on one deployment).
pub const BUSINESS_FIRST: u16 = 0x8000;

macro_rules! commands {
    ($( $(#[$doc:meta])* $name:ident = $code:literal ),* $(,)?) => {
        /// What a frame's body is. Codes below [`BUSINESS_FIRST`] are bubble's;
        /// codes from it up belong to products' business handlers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command {
            $( $(#[$doc])* $name, )*
            /// A product-defined command (code >= [`BUSINESS_FIRST`]).
            Business(u16),
            /// A code below [`BUSINESS_FIRST`] that this version does not know
            /// (a newer peer's command). Frames carry it rather than failing,
            /// so a server answers `UNKNOWN_COMMAND` and keeps the connection,
            /// and a newer client can tell it talks to an older server.
            /// [`Command::from_wire`] makes one only for codes no other
            /// variant has.
            Unknown(u16),
        }

        impl Command {
            /// Every built-in command, in code order.
            pub const BUILTIN: &'static [Command] = &[$(Command::$name),*];

            /// The wire code.
            pub const fn code(self) -> u16 {
                match self {
                    $( Command::$name => $code, )*
                    Command::Business(code) | Command::Unknown(code) => code,
                }
            }

            /// The command for a wire code, or `None` for a reserved code
            /// this version does not know.
            pub const fn from_code(code: u16) -> Option<Command> {
                match code {
                    $( $code => Some(Command::$name), )*
                    c if c >= BUSINESS_FIRST => Some(Command::Business(c)),
                    _ => None,
                }
            }

            /// The command a frame header names: [`Command::from_code`], or
            /// [`Command::Unknown`] for a reserved code this version does not
            /// know.
            pub const fn from_wire(code: u16) -> Command {
                match Command::from_code(code) {
                    Some(command) => command,
                    None => Command::Unknown(code),
                }
            }
        }
    };
}

commands! {
    /// `Error`: the request with this seq failed (or, seq 0, the connection is closing).
    Error = 1,
    /// `Ping`, client -> server heartbeat.
    Ping = 2,
    /// `Pong`, the answer to a ping.
    Pong = 3,
    /// Handshake hello, client -> server (see docs/auth.md).
    HandshakeHello = 4,
    /// Handshake answer, server -> client.
    HandshakeAnswer = 5,
    /// Resumption hello with a ticket, client -> server.
    ResumeHello = 6,
    /// `Kick`: the server ends this session (another login, an admin), then closes.
    Kick = 7,

    /// `SendRequest` -> `SendAck`.
    Send = 16,
    /// `SendAck`.
    SendAck = 17,
    /// `Push`, server -> client: a new inbox entry.
    Push = 18,
    /// `SyncRequest` -> `SyncPage`.
    Sync = 19,
    /// `SyncPage`.
    SyncPage = 20,
    /// `MarkReadRequest` -> `MarkReadAck`.
    MarkRead = 21,
    /// `MarkReadAck`.
    MarkReadAck = 22,
    /// `UnreadRequest` -> `UnreadCounts`.
    Unread = 23,
    /// `UnreadCounts`.
    UnreadCounts = 24,
    /// `RecallRequest` -> `SendAck` (the recall's own ack).
    Recall = 25,
    /// `DeleteRequest` -> `SendAck` (the delete entry's version).
    Delete = 26,
    /// `Typing`, both ways, never stored.
    Typing = 27,
    /// `HistoryRequest` -> `HistoryPage`: one conversation, newest first.
    History = 28,
    /// `HistoryPage`.
    HistoryPage = 29,
    /// `ConversationsRequest` -> `ConversationList`: the home screen.
    Conversations = 30,
    /// `ConversationList`.
    ConversationList = 31,

    /// `GroupCreateRequest` -> `GroupInfo`.
    GroupCreate = 32,
    /// `GroupInfo`.
    GroupInfo = 33,
    /// `GroupJoinRequest` -> `Ok`.
    GroupJoin = 34,
    /// `GroupLeaveRequest` -> `Ok`.
    GroupLeave = 35,
    /// `GroupMembersRequest` -> `GroupMembers`.
    GroupMembersQuery = 36,
    /// `GroupMembers`.
    GroupMembers = 37,
    /// `Ok`: a request that returns nothing else succeeded.
    Ok = 38,

    /// `ChannelPullRequest` -> `ChannelPage` (super group, by seq).
    ChannelPull = 48,
    /// `ChannelPage`.
    ChannelPage = 49,
    /// `ChannelNotify`, server -> client.
    ChannelNotify = 50,

    /// `PresenceQuery` -> `PresenceResult`.
    PresenceQuery = 64,
    /// `PresenceResult`.
    PresenceResult = 65,

    /// `SearchRequest` -> `SearchResults`.
    Search = 80,
    /// `SearchResults`.
    SearchResults = 81,

    /// `SystemPush`, server -> client.
    SystemPush = 96,

    /// `EditRequest` -> `SendAck` (the edit entry's own ack).
    Edit = 112,
    /// `ReactRequest` -> `SendAck` (the reaction entry's own ack).
    React = 113,
    /// `SettingsRequest` -> `SettingsAck`: pin, mute, archive, draft, block.
    Settings = 114,
    /// `SettingsAck`.
    SettingsAck = 115,
    /// `BlockedRequest` -> `BlockedList`.
    Blocked = 116,
    /// `BlockedList`.
    BlockedList = 117,
    /// `ReadStateRequest` -> `ReadState`: who in a group read a message.
    ReadStateQuery = 118,
    /// `ReadState`.
    ReadState = 119,

    /// `GroupsRequest` -> `GroupList`: the caller's groups.
    GroupsQuery = 120,
    /// `GroupList`.
    GroupList = 121,
    /// `GroupUpdateRequest` -> `GroupInfo`: name, avatar, announcement, mute.
    GroupUpdate = 122,
    /// `GroupRoleRequest` -> `Ok`.
    GroupSetRole = 123,
    /// `GroupTransferRequest` -> `Ok`.
    GroupTransfer = 124,
    /// `GroupMuteRequest` -> `Ok`.
    GroupMute = 125,
    /// `GroupDismissRequest` -> `Ok`.
    GroupDismiss = 126,
    /// `GroupMembersChangeRequest` -> `Ok`: add members.
    GroupAddMembers = 127,
    /// `GroupMembersChangeRequest` -> `Ok`: remove members.
    GroupRemoveMembers = 128,

    /// `PushRegisterRequest` -> `Ok`: this device's push-notification token.
    PushRegister = 129,
    /// `PushUnregisterRequest` -> `Ok`: no more notifications to this device.
    PushUnregister = 130,
    /// `AppStateRequest` -> `Ok`: the app went to the background or came back.
    AppState = 131,

    /// `MediaUploadRequest` -> `MediaUploadTicket`: where to upload a file
    /// before sending it as a `MediaRef`.
    MediaUpload = 132,
    /// `MediaUploadTicket`.
    MediaUploadTicket = 133,
}

impl Command {
    /// Whether a product's business handler owns this command.
    pub const fn is_business(self) -> bool {
        matches!(self, Command::Business(_))
    }

    /// Whether this version does not know the command (see [`Command::Unknown`]).
    pub const fn is_unknown(self) -> bool {
        matches!(self, Command::Unknown(_))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Business(code) => write!(f, "Business({code:#06x})"),
            Command::Unknown(code) => write!(f, "Unknown({code})"),
            other => write!(f, "{other:?}"),
        }
    }
}
