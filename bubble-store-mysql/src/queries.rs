//! The SQL behind the hot reads (the seed's two, history pages, the
//! conversation list, group read state and reactions) and job claims,
//! public so operators can `EXPLAIN` them against their own data (and the
//! tests check they use their index). Those with an `IN (…)` list are
//! functions of its length.
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
/// `ix_inbox_unread (app, owner, direct, status, conv_kind, conv_id)` alone
/// (the derived table `u`), then each counted conversation joined to its
/// list row by primary key for whether an unread message mentions the owner
/// (`mention_version > read_up_to`; no row is no mention). Rows come in
/// the grouping's order, `(conv_kind, conv_id)`, but no `ORDER BY` says so
/// (it would sort the derived table): `unread` sorts them.
pub const UNREAD: &str = "SELECT u.conv_kind, u.conv_id, u.n, \
     c.mention_version > c.read_up_to AS mentioned \
     FROM (SELECT app, owner, conv_kind, conv_id, COUNT(*) AS n FROM inbox \
           WHERE app = ? AND owner = ? AND direct = -1 AND status = 0 \
           GROUP BY conv_kind, conv_id) u \
     LEFT JOIN conversations c ON c.app = u.app AND c.owner = u.owner \
           AND c.conv_kind = u.conv_kind AND c.conv_id = u.conv_id";

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
/// from (`read_up_to`). Not `inbox_join!`: the list drives this join. Rows
/// with activity 0 (settings set before any message) are not listed: the
/// range is `0 < activity < before`.
pub const CONVERSATIONS: &str = concat!(
    "SELECT c.activity AS list_activity, c.unread AS list_unread, \
     c.read_up_to AS list_read_up_to, c.peer_read_up_to AS list_peer_read_up_to, \
     c.flags AS list_flags, c.draft AS list_draft, \
     c.mention_version > c.read_up_to AS list_mentioned, ",
    inbox_columns!(),
    " FROM conversations c \
     JOIN inbox i ON i.app = c.app AND i.owner = c.owner AND i.version = c.last_version \
     JOIN messages m ON m.id = i.message_id \
     WHERE c.app = ? AND c.owner = ? AND c.activity < ? AND c.activity > 0 \
     ORDER BY c.activity DESC LIMIT ?"
);

/// The owner's settings of one conversation: `app`, `owner`, `conv_kind`,
/// `conv_id`. One row by primary key (none: the defaults).
pub const SETTINGS: &str = "SELECT flags, draft FROM conversations \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ?";

/// The peers of the owner's blocked 1:1 conversations, in user id order:
/// `app`, `owner`. A range of the primary key `(app, owner, conv_kind = 1,
/// conv_id)`, already in peer order; the flag is checked on each row.
pub const BLOCKED: &str = "SELECT conv_id FROM conversations \
     WHERE app = ? AND owner = ? AND conv_kind = 1 AND (flags & 8) <> 0 \
     ORDER BY conv_id";

/// Who of `members` members received a group message and what they have
/// read: `app`, `server_msg_id`, `conv_kind`, `conv_id`, then the
/// `members` user ids. One row per member holding a received copy: its
/// version and the member's read mark in that conversation. The message
/// rows of the id (`ix_messages_server_msg`, nearly always one), the
/// members' list rows of the conversation (primary-key points, one per
/// member), and each member's entry of the message row
/// (`ix_inbox_message (app, owner, message_id)`): no row per reader, no
/// scan of the group's entries. The inbox is named with `FORCE INDEX`: in a
/// join the optimizer knows only the average entries per owner, and where
/// most users have a few (an app of many quiet users) it would read a
/// member's whole inbox by primary key `(app, owner)` to find one entry.
pub fn readers(members: usize) -> String {
    format!(
        "SELECT i.owner, i.version, c.read_up_to \
         FROM messages m \
         JOIN conversations c ON c.app = m.app \
         JOIN inbox i FORCE INDEX (ix_inbox_message) \
           ON i.app = c.app AND i.owner = c.owner AND i.message_id = m.id \
         WHERE m.app = ? AND m.server_msg_id = ? AND m.entry_kind IN (1, 6) \
         AND c.conv_kind = ? AND c.conv_id = ? AND c.owner IN {} \
         AND i.direct = -1 AND i.conv_kind = c.conv_kind AND i.conv_id = c.conv_id",
        crate::rows::row_placeholders(members)
    )
}

/// The reactions on `ids` messages, counted per message and emoji: `viewer`,
/// `app`, then the ids. One range read of the primary key `(app,
/// server_msg_id, emoji, user_id)`, one interval per message, grouped in
/// key order (no temporary table, no sort).
pub fn reactions(ids: usize) -> String {
    format!(
        "SELECT server_msg_id, emoji, COUNT(*) AS n, MAX(user_id = ?) AS mine \
         FROM reactions WHERE app = ? AND server_msg_id IN {} \
         GROUP BY server_msg_id, emoji ORDER BY server_msg_id, emoji",
        crate::rows::row_placeholders(ids)
    )
}

/// What an add of a reaction is checked against, read while the message's
/// `reaction_heads` row is locked: `app`, `server_msg_id` (the distinct
/// emoji on the message: a loose scan of the primary key, one index entry
/// per emoji, however many users put each there), `app`, `server_msg_id`,
/// `emoji` (whether it is one of them: the first entry of its range), `app`,
/// `server_msg_id`, `user` (the user's emoji on it, from
/// `ix_reactions_user`), `app`, `server_msg_id`, `emoji`, `user` (whether
/// this one is already theirs: a primary-key point). The grouping names the
/// key's leading columns, `(app, server_msg_id, emoji)`, which is what lets
/// MySQL and MariaDB skip from one emoji to the next.
pub const REACTION_CAPS: &str = "SELECT \
     (SELECT COUNT(*) FROM (SELECT emoji FROM reactions WHERE app = ? AND server_msg_id = ? \
                            GROUP BY app, server_msg_id, emoji) e) AS emojis, \
     EXISTS (SELECT 1 FROM reactions WHERE app = ? AND server_msg_id = ? AND emoji = ?) AS present, \
     (SELECT COUNT(*) FROM reactions WHERE app = ? AND server_msg_id = ? AND user_id = ?) AS mine, \
     EXISTS (SELECT 1 FROM reactions \
             WHERE app = ? AND server_msg_id = ? AND emoji = ? AND user_id = ?) AS already";

/// A page of a rebuild's scan ([`InboxStore::scan_messages`]), first step:
/// the next message rows of kind message or notice after a cursor, in id
/// order: `app`, `after` (a message id; empty bytes for the start, which
/// sort before every id), `limit`. A range of `ix_messages_server_msg (app,
/// server_msg_id)` read in key order (no sort), each row's kind checked on
/// its row; stops after `limit` rows. An id with several rows (entries of
/// one delivery that differ) may come more than once: the caller
/// de-duplicates, and the next step reads every row of the last id anyway.
/// The index is named with `FORCE INDEX`: for the `ORDER BY … LIMIT`
/// MariaDB otherwise turns the range into a lookup of the app alone (`ref`,
/// the cursor checked on each index entry), which reads every id before the
/// cursor again on every page.
///
/// [`InboxStore::scan_messages`]: bubble_core::ports::InboxStore::scan_messages
pub const SCAN_IDS: &str = "SELECT server_msg_id \
     FROM messages FORCE INDEX (ix_messages_server_msg) \
     WHERE app = ? AND server_msg_id > ? AND entry_kind IN (1, 6) \
     ORDER BY server_msg_id LIMIT ?";

/// The second step: who holds, recalled or deleted each message of a page:
/// `app`, `after`, `last` (the page's ids are `after < id <= last`). One
/// row per owner of each message, recall and delete row of those ids: the
/// same range of `ix_messages_server_msg`, each row's owners from
/// `ix_inbox_owners (message_id)` alone (the owner and version are the
/// primary key, which every secondary index entry holds). Receipts, cursors,
/// edits and reactions share the ids but are left out by their kind. In no
/// particular order: the caller groups them. Both indexes are named, as in
/// [`SCAN_IDS`].
pub const SCAN_OWNERS: &str = "SELECT m.server_msg_id, m.entry_kind, i.owner, i.version \
     FROM messages m FORCE INDEX (ix_messages_server_msg) \
     JOIN inbox i FORCE INDEX (ix_inbox_owners) ON i.message_id = m.id \
     WHERE m.app = ? AND m.server_msg_id > ? AND m.server_msg_id <= ? \
     AND m.entry_kind IN (1, 2, 3, 6)";

/// The third step: one owner's entry of each listed message, by the inbox's
/// primary key: `app`, then `entries` (owner, version) pairs. One range of
/// `PRIMARY (app, owner, version)`, one point per pair, each joined to its
/// message row by the message's primary key: the body is read once per
/// message, not once per owner.
pub fn scan_entries(entries: usize) -> String {
    format!(
        concat!(
            "SELECT ",
            inbox_columns!(),
            inbox_join!(),
            "WHERE i.app = ? AND (i.owner, i.version) IN ({})"
        ),
        crate::rows::values(entries, 2)
    )
}

/// The jobs a [`ClaimOrder::Any`] claim takes, locked for its lease:
/// `queue`, `now`, `now`, `limit`. The queue's rows in id order along
/// `ix_jobs_queue (queue, id)`, those not due or still leased passed over,
/// and those another claim has locked skipped (SKIP LOCKED: concurrent
/// claimers take different jobs instead of waiting for each other).
///
/// [`ClaimOrder::Any`]: bubble_core::jobs::ClaimOrder::Any
pub const CLAIM_ANY: &str = "SELECT id, queue, payload, attempts, enqueued_at, due_at, \
     lease_until FROM jobs WHERE queue = ? AND due_at <= ? \
     AND (lease_until IS NULL OR lease_until <= ?) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED";

/// The head a [`ClaimOrder::InOrder`] claim takes a run from: `queue`,
/// `limit`. The queue's oldest rows along `ix_jobs_queue`, free or not,
/// locked and waited for: a second claimer waits until the first has
/// leased the head, then finds it held, so one holder at a time works the
/// queue.
///
/// [`ClaimOrder::InOrder`]: bubble_core::jobs::ClaimOrder::InOrder
pub const CLAIM_HEAD: &str = "SELECT id, queue, payload, attempts, enqueued_at, due_at, \
     lease_until FROM jobs WHERE queue = ? ORDER BY id LIMIT ? FOR UPDATE";
