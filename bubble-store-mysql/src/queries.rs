//! The SQL behind the hot reads (the seed's two, history pages, the
//! conversation list, group read state and reactions) and job claims,
//! public so operators can `EXPLAIN` them against their own data (and the
//! tests check they use their index). Those with an `IN (…)` list are
//! functions of its length.
//!
//! Placeholders are bound in order; ids are bound as bytes.

use crate::groups::{group_columns, member_columns};
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

/// A message by id as the owner holds it: `app`, `server_msg_id`, `app`,
/// `owner`. The message rows of the id (`ix_messages_server_msg`), then
/// the owner's entry of each (`ix_inbox_owners`: `message_id`, then the
/// primary key's `app` and `owner`), in that order (`STRAIGHT_JOIN`): for
/// the `ORDER BY` the optimizer would rather read the owner's whole range
/// of the primary key in version order.
pub const GET: &str = concat!(
    "SELECT STRAIGHT_JOIN ",
    inbox_columns!(),
    " FROM messages m FORCE INDEX (ix_messages_server_msg) \
     JOIN inbox i FORCE INDEX (ix_inbox_owners) ON i.message_id = m.id \
     WHERE m.app = ? AND m.server_msg_id = ? AND m.entry_kind IN (1, 6) \
     AND i.app = ? AND i.owner = ? ORDER BY i.version LIMIT 1"
);

/// The owner's unread entries of a message (nearly always one, often none),
/// with their conversations: `app`, `server_msg_id`, `app`, `owner`. The
/// same path as [`GET`].
pub const UNREAD_OF_MESSAGE: &str = "SELECT STRAIGHT_JOIN i.version, i.conv_kind, i.conv_id \
     FROM messages m FORCE INDEX (ix_messages_server_msg) \
     JOIN inbox i FORCE INDEX (ix_inbox_owners) ON i.message_id = m.id \
     WHERE m.app = ? AND m.server_msg_id = ? AND i.app = ? AND i.owner = ? AND i.status = 0";

/// "Unread of B", counted per conversation: `app`, `owner`. The counts the
/// list's rows keep (the append adds, the marks take off, in the same
/// transactions as the entries), read along the primary key, so already in
/// conversation order; a row is "mentioned" while its mention is above its
/// read mark.
pub const UNREAD: &str = "SELECT conv_kind, conv_id, unread AS n, \
     mention_version > read_up_to AS mentioned FROM conversations \
     WHERE app = ? AND owner = ? AND unread > 0 ORDER BY conv_kind, conv_id";

/// A read mark's list row, locked for the mark's transaction: `app`,
/// `owner`, `conv_kind`, `conv_id`. An append of the conversation updates
/// the same row, so the two are ordered: the mark reads every entry
/// committed before it, and an entry committed after it finds the floor the
/// mark left.
pub const LOCK_CONVERSATION: &str = "SELECT unread_floor, last_received FROM conversations \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ? FOR UPDATE";

/// The unread received messages of one conversation from its unread floor
/// up to a version, which `mark_read` then flips by primary key: `app`,
/// `owner`, `conv_kind`, `conv_id`, the floor, `up_to`. A range of
/// `ix_inbox_conversation`, what arrived since the previous mark (named: in
/// a conversation of many entries the optimizer would rather read the
/// owner's range of the primary key).
pub const UNREAD_VERSIONS: &str = "SELECT version FROM inbox FORCE INDEX (ix_inbox_conversation) \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ? \
     AND version BETWEEN ? AND ? AND direct = -1 AND status = 0";

/// What a read mark did to its list row: `marked`, the new floor, then the
/// row's key. Takes what it flipped off the unread count and raises the
/// floor past the mark.
pub const MARKED_ON_CONVERSATION: &str = "UPDATE conversations \
     SET unread = unread - LEAST(unread, ?), unread_floor = GREATEST(unread_floor, ?) \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ?";

/// The newest received message of a conversation at or below a version (the
/// read receipt names it): `app`, `owner`, `conv_kind`, `conv_id`, and the
/// lower of the mark and the row's `last_received`. Read backwards along
/// `ix_inbox_conversation` from there: one row when the mark is at or past
/// the newest received message; the entry kind is the message's, checked on
/// each joined row until one matches.
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

/// The settings of `rows` conversations at once (the reads the block check
/// of concurrent sends makes, gathered: see `coalesce`): `rows` times
/// `app`, `owner`, `conv_kind`, `conv_id`. One point of the primary key per
/// row; a conversation without a row has the defaults. The index is named:
/// on a table holding rows, MariaDB otherwise may take a range of
/// `ix_conversations_activity (app, owner, …)`, every conversation of
/// each owner.
pub fn settings_of(rows: usize) -> String {
    format!(
        "SELECT app, owner, conv_kind, conv_id, flags, draft FROM conversations \
         FORCE INDEX (PRIMARY) WHERE (app, owner, conv_kind, conv_id) IN ({})",
        crate::rows::values(rows, 4)
    )
}

/// The rosters of `groups` groups at once (the reads of concurrent group
/// sends, gathered): `groups` times `app`, `id`. Each group's row by the
/// primary key, joined to its member rows by theirs `(app, group_id,
/// user_id)`; a group without members has one row with the member columns
/// NULL. Not sorted here (a sort of every member of sixteen groups would
/// go through a temporary table): the caller puts each group's members in
/// user id order.
pub fn rosters(groups: usize) -> String {
    format!(
        concat!(
            "SELECT g.app, ",
            group_columns!(),
            ", ",
            member_columns!(),
            " FROM chat_groups g \
             LEFT JOIN group_members m ON m.app = g.app AND m.group_id = g.id \
             WHERE (g.app, g.id) IN ({})"
        ),
        crate::rows::values(groups, 2)
    )
}

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
/// (`ix_inbox_owners (message_id)`, whose entries carry the primary key
/// `app, owner, version`, looked up by its first three): no row per reader, no
/// scan of the group's entries. The inbox is named with `FORCE INDEX`: in a
/// join the optimizer knows only the average entries per owner, and where
/// most users have a few (an app of many quiet users) it would read a
/// member's whole inbox by primary key `(app, owner)` to find one entry.
/// `STRAIGHT_JOIN` keeps the tables in that order: otherwise it reads every
/// copy of the message (the whole group's) for each chunk of members.
pub fn readers(members: usize) -> String {
    format!(
        "SELECT STRAIGHT_JOIN i.owner, i.version, c.read_up_to \
         FROM messages m \
         JOIN conversations c ON c.app = m.app \
         JOIN inbox i FORCE INDEX (ix_inbox_owners) \
           ON i.message_id = m.id AND i.app = c.app AND i.owner = c.owner \
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

/// Retention: the app's oldest messages before a time, a range of
/// `ix_messages_time`, locked, so two nodes sweeping at once never count one
/// entry twice (the second finds the rows gone). Binds: app, time, one more
/// than the batch (to tell whether more remain).
pub const EXPIRE_OLDEST: &str = "SELECT id, server_msg_id FROM messages \
     WHERE app = ? AND server_time < ? ORDER BY server_time, id LIMIT ? FOR UPDATE";

/// Retention: the app's oldest super-group log entries before a time, a
/// range of `ix_channel_log_app_time` (whose entries end with the primary key,
/// so the order needs no sort), locked. Binds as [`EXPIRE_OLDEST`].
pub const EXPIRE_CHANNEL_OLDEST: &str = "SELECT group_id, seq, server_msg_id FROM channel_log \
     WHERE app = ? AND server_time < ? ORDER BY server_time, group_id, seq LIMIT ? FOR UPDATE";
