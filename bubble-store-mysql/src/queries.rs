//! The SQL behind the seed's two hot reads, public so operators can `EXPLAIN`
//! them against their own data (and the tests check they use their index).
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
