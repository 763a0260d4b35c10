//! The SQL behind the seed's two hot reads, public so operators can `EXPLAIN`
//! them against their own data (and the tests check they use their index).
//!
//! Placeholders are bound in order; ids are bound as bytes.

use crate::rows::inbox_columns;

/// "Everything of B after version v" (sync): `app`, `owner`, `after_version`,
/// `limit + 1`. Served by a range of the primary key `(app, owner, version)`.
pub const PULL: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM inbox WHERE app = ? AND owner = ? AND version > ? ORDER BY version LIMIT ?"
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
/// Read backwards along `ix_inbox_conversation`.
pub const LAST_READ: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM inbox WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ? \
     AND version <= ? AND direct = -1 AND entry_kind IN (1, 6) \
     ORDER BY version DESC LIMIT 1"
);
