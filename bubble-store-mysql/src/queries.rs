//! The SQL behind the hot reads (the seed's two, history pages and the
//! conversation list), public so operators can `EXPLAIN` them against their
//! own data (and the tests check they use their index).
//!
//! Placeholders are bound in order; ids are bound as bytes.

use crate::rows::{inbox_columns, inbox_join};

/// "Everything of B after version v" (sync): `app`, `owner`, `after_version`,
/// `limit + 1`. Served by a range of the inbox's primary key `(app, owner,
/// version)`, each entry joined to its message by the message's primary key.
pub const PULL: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    inbox_join!(),
    "WHERE i.app = ? AND i.owner = ? AND i.version > ? ORDER BY i.version LIMIT ?"
);

/// One conversation's history, newest first: `app`, `owner`, `conv_kind`,
/// `conv_id`, `before`, `limit`. One backwards range of
/// `ix_inbox_conversation (app, owner, conv_kind, conv_id, version)`.
pub const HISTORY: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    inbox_join!(),
    "WHERE i.app = ? AND i.owner = ? AND i.conv_kind = ? AND i.conv_id = ? AND i.version < ? \
     ORDER BY i.version DESC LIMIT ?"
);

/// "Unread of B", counted per conversation: `app`, `owner`. The seed's
/// `direct = -1 AND qID = B AND status = 0`, answered from the index
/// `ix_inbox_unread (app, owner, direct, status, conv_kind, conv_id)` alone.
pub const UNREAD: &str = "SELECT conv_kind, conv_id, COUNT(*) AS n FROM inbox \
     WHERE app = ? AND owner = ? AND direct = -1 AND status = 0 \
     GROUP BY conv_kind, conv_id ORDER BY conv_kind, conv_id";

/// The unread received messages of one conversation up to a version, which
/// `mark_read` then flips by primary key: `app`, `owner`, `conv_kind`,
/// `conv_id`, `up_to`. A range of `ix_inbox_unread`, read from the index alone.
/// (An `UPDATE` with these conditions would not use that index, because it
/// changes `status`, one of the index's own columns.)
pub const UNREAD_VERSIONS: &str = "SELECT version FROM inbox \
     WHERE app = ? AND owner = ? AND direct = -1 AND status = 0 \
     AND conv_kind = ? AND conv_id = ? AND version <= ?";

/// The newest received message of a conversation at or below a version (the
/// read receipt names it): `app`, `owner`, `conv_kind`, `conv_id`, `up_to`.
/// Read backwards along `ix_inbox_conversation`; the entry kind is the
/// message's, checked on each joined row until one matches.
pub const LAST_READ: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    inbox_join!(),
    "WHERE i.app = ? AND i.owner = ? AND i.conv_kind = ? AND i.conv_id = ? \
     AND i.version <= ? AND i.direct = -1 AND m.entry_kind IN (1, 6) \
     ORDER BY i.version DESC LIMIT 1"
);

/// A page of the owner's conversation list, newest activity first: `app`,
/// `owner`, `before` (an activity; `u64::MAX` for the first page), `limit +
/// 1`. A backwards range of `ix_conversations_activity (app, owner,
/// activity)`, each row joined to the entry it shows by the inbox's primary
/// key and that entry to its message by the message's: one indexed read
/// however many conversations and entries the owner has. The list's columns
/// are renamed (`list_…`) so none shadows an inbox column the entry is read
/// from (`read_up_to`). Not `inbox_join!`: the list drives this join.
pub const CONVERSATIONS: &str = concat!(
    "SELECT c.activity AS list_activity, c.unread AS list_unread, \
     c.read_up_to AS list_read_up_to, c.peer_read_up_to AS list_peer_read_up_to, ",
    inbox_columns!(),
    " FROM conversations c \
     JOIN inbox i ON i.app = c.app AND i.owner = c.owner AND i.version = c.last_version \
     JOIN messages m ON m.id = i.message_id \
     WHERE c.app = ? AND c.owner = ? AND c.activity < ? \
     ORDER BY c.activity DESC LIMIT ?"
);
