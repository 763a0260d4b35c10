//! Rows to domain types and back, and the multi-row statements batches use.

use std::sync::OnceLock;

use bubble_core::{
    ChannelEntry, Content, ContentType, Conversation, ConversationKind, DeviceId, Direction,
    EntryKind, Error, GroupId, InboxEntry, MsgId, Result, UserId,
};
use bytes::Bytes;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::map_err;

/// The inbox columns every read selects, in the order [`inbox_entry`]
/// decodes (a macro so statements can be `concat!`-ed constants).
macro_rules! inbox_columns {
    () => {
        "owner, version, kind, conv_kind, peer, direction, server_msg_id, sender, sender_device, \
         client_msg_id, client_seq, create_time, server_time, content_type, content, read_up_to"
    };
    ($t:literal) => {
        concat!(
            $t,
            ".owner, ",
            $t,
            ".version, ",
            $t,
            ".kind, ",
            $t,
            ".conv_kind, ",
            $t,
            ".peer, ",
            $t,
            ".direction, ",
            $t,
            ".server_msg_id, ",
            $t,
            ".sender, ",
            $t,
            ".sender_device, ",
            $t,
            ".client_msg_id, ",
            $t,
            ".client_seq, ",
            $t,
            ".create_time, ",
            $t,
            ".server_time, ",
            $t,
            ".content_type, ",
            $t,
            ".content, ",
            $t,
            ".read_up_to"
        )
    };
}
pub(crate) use inbox_columns;

/// The channel-log columns every read selects, in the order [`channel_entry`] decodes.
macro_rules! channel_columns {
    () => {
        "group_id, seq, kind, server_msg_id, sender, sender_device, client_msg_id, client_seq, \
         create_time, server_time, content_type, content"
    };
}
pub(crate) use channel_columns;

/// A `u64` that SQLite compares (versions, seqs, limits): values beyond
/// `i64::MAX` mean "everything", so they saturate instead of wrapping negative.
pub(crate) fn bound(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// A `u64` stored as is (a client's counter): SQLite integers are signed
/// 64-bit, so the bits are kept and read back with [`from_stored`].
pub(crate) fn stored(v: u64) -> i64 {
    v as i64
}

/// Reads back a value written with [`stored`] or [`bound`].
pub(crate) fn from_stored(v: i64) -> u64 {
    v as u64
}

fn get<'r, T>(row: &'r SqliteRow, i: usize) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(i).map_err(map_err)
}

fn small(row: &SqliteRow, i: usize, what: &str) -> Result<u8> {
    let v: i64 = get(row, i)?;
    u8::try_from(v).map_err(|_| Error::internal(format!("stored {what} {v} is out of range")))
}

/// Decodes [`INBOX_COLUMNS`] starting at column `at`.
/// A page from rows fetched with one more than `limit` asked for: the first
/// `limit` mapped, and whether more follow.
pub(crate) fn page<T>(
    found: &[SqliteRow],
    limit: usize,
    map: impl Fn(&SqliteRow) -> Result<T>,
) -> Result<(Vec<T>, bool)> {
    let entries = found.iter().take(limit).map(map).collect::<Result<_>>()?;
    Ok((entries, found.len() > limit))
}

pub(crate) fn inbox_entry(row: &SqliteRow, at: usize) -> Result<InboxEntry> {
    let owner: String = get(row, at)?;
    let conv_kind = ConversationKind::from_u8(small(row, at + 3, "conversation kind")?)?;
    let peer: String = get(row, at + 4)?;
    let direction: i64 = get(row, at + 5)?;
    let direction = Direction::from_i8(direction as i8)?;
    let id: Vec<u8> = get(row, at + 6)?;
    let sender: String = get(row, at + 7)?;
    let device: String = get(row, at + 8)?;
    let content: Vec<u8> = get(row, at + 14)?;
    Ok(InboxEntry {
        owner: UserId::from(owner),
        version: from_stored(get(row, at + 1)?),
        kind: EntryKind::from_u8(small(row, at + 2, "entry kind")?)?,
        conversation: Conversation::from_parts(conv_kind, &peer),
        direction,
        server_msg_id: MsgId::from_slice(&id)?,
        sender: UserId::from(sender),
        sender_device: DeviceId::from(device),
        client_msg_id: get(row, at + 9)?,
        client_seq: from_stored(get(row, at + 10)?),
        create_time: get(row, at + 11)?,
        server_time: get(row, at + 12)?,
        content: Content {
            kind: ContentType::from_u8(small(row, at + 13, "content type")?)?,
            body: Bytes::from(content),
        },
        read_up_to: from_stored(get(row, at + 15)?),
    })
}

/// Decodes [`CHANNEL_COLUMNS`].
pub(crate) fn channel_entry(row: &SqliteRow) -> Result<ChannelEntry> {
    let group: String = get(row, 0)?;
    let id: Vec<u8> = get(row, 3)?;
    let sender: String = get(row, 4)?;
    let device: String = get(row, 5)?;
    let content: Vec<u8> = get(row, 11)?;
    Ok(ChannelEntry {
        group: GroupId::from(group),
        seq: from_stored(get(row, 1)?),
        kind: EntryKind::from_u8(small(row, 2, "entry kind")?)?,
        server_msg_id: MsgId::from_slice(&id)?,
        sender: UserId::from(sender),
        sender_device: DeviceId::from(device),
        client_msg_id: get(row, 6)?,
        client_seq: from_stored(get(row, 7)?),
        create_time: get(row, 8)?,
        server_time: get(row, 9)?,
        content: Content {
            kind: ContentType::from_u8(small(row, 10, "content type")?)?,
            body: Bytes::from(content),
        },
    })
}

/// A message id read back from a blob column.
pub(crate) fn msg_id(row: &SqliteRow, i: usize) -> Result<MsgId> {
    let raw: Vec<u8> = get(row, i)?;
    MsgId::from_slice(&raw)
}

/// An integer column that may be NULL.
pub(crate) fn opt_int(row: &SqliteRow, i: usize) -> Result<Option<i64>> {
    get(row, i)
}

/// An integer column.
pub(crate) fn int(row: &SqliteRow, i: usize) -> Result<i64> {
    get(row, i)
}

/// A text column.
pub(crate) fn text(row: &SqliteRow, i: usize) -> Result<String> {
    get(row, i)
}

// ------------------------------------------------------------ multi-row

/// The most rows one multi-row statement carries. A batch of any size is
/// cut into statements of 64, 32, 16, 8, 4, 2 and 1 rows, so each table has
/// at most seven statement shapes and they all stay in the prepared
/// statement cache. (64 rows of the widest table bind 1152 values, far
/// below SQLite's limit of 32766.)
pub(crate) const MAX_ROWS: usize = 64;

/// Splits `n` rows into runs `(start, len)` whose lengths are 64 or a
/// smaller power of two.
pub(crate) fn runs(n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let len = if left >= MAX_ROWS {
            MAX_ROWS
        } else {
            1 << (usize::BITS - 1 - left.leading_zeros())
        };
        out.push((start, len));
        start += len;
    }
    out
}

/// The seven shapes of one multi-row statement: `head` + `rows` groups of
/// `group` joined by commas + `tail`.
pub(crate) struct Shapes {
    by_len: [String; 7],
}

impl Shapes {
    fn new(head: &str, group: &str, tail: &str) -> Shapes {
        let make = |n: usize| {
            let mut s = String::with_capacity(head.len() + n * (group.len() + 1) + tail.len());
            s.push_str(head);
            for i in 0..n {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(group);
            }
            s.push_str(tail);
            s
        };
        Shapes {
            by_len: [
                make(1),
                make(2),
                make(4),
                make(8),
                make(16),
                make(32),
                make(64),
            ],
        }
    }

    /// The statement for `len` rows (a power of two up to 64).
    pub(crate) fn get(&self, len: usize) -> &str {
        debug_assert!(len.is_power_of_two() && len <= MAX_ROWS);
        &self.by_len[len.trailing_zeros() as usize]
    }
}

macro_rules! shapes {
    ($name:ident, $head:expr, $group:expr, $tail:expr) => {
        pub(crate) fn $name() -> &'static Shapes {
            static S: OnceLock<Shapes> = OnceLock::new();
            S.get_or_init(|| Shapes::new($head, $group, $tail))
        }
    };
}

shapes!(
    insert_inbox,
    "INSERT INTO inbox (app, owner, version, peer, conv_kind, direction, kind, server_msg_id, \
     sender, sender_device, client_msg_id, client_seq, create_time, server_time, content_type, \
     content, read_up_to) VALUES ",
    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    ""
);

// Each owner's newest version, from `inbox_pull` (NULL for a new owner).
// (A join with the VALUES list, not `(app, owner) IN (VALUES ...)`: SQLite
// plans the IN form as a scan of the whole table.)
shapes!(
    select_versions,
    "SELECT k.column1, k.column2, (SELECT MAX(version) FROM inbox \
     WHERE app = k.column1 AND owner = k.column2) FROM (VALUES ",
    "(?,?)",
    ") AS k"
);

shapes!(
    select_sent,
    "SELECT s.app, s.sender, s.client_msg_id, s.server_msg_id, s.version, s.server_time \
     FROM (VALUES ",
    "(?,?,?)",
    ") AS k JOIN inbox_sent s ON s.app = k.column1 AND s.sender = k.column2 \
     AND s.client_msg_id = k.column3"
);

shapes!(
    insert_sent,
    "INSERT INTO inbox_sent (app, sender, client_msg_id, server_msg_id, version, server_time) VALUES ",
    "(?,?,?,?,?,?)",
    ""
);

shapes!(
    insert_outbox,
    "INSERT INTO index_outbox (app, owner, version) VALUES ",
    "(?,?,?)",
    ""
);

shapes!(
    delete_outbox,
    "DELETE FROM index_outbox WHERE id IN (",
    "?",
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_every_row_once_in_power_of_two_pieces() {
        for n in 0..300 {
            let r = runs(n);
            let mut next = 0;
            for (start, len) in &r {
                assert_eq!(*start, next);
                assert!(len.is_power_of_two() && *len <= MAX_ROWS);
                next += len;
            }
            assert_eq!(next, n);
        }
        assert_eq!(runs(200), vec![(0, 64), (64, 64), (128, 64), (192, 8)]);
    }

    #[test]
    fn shapes_have_one_group_per_row() {
        let s = insert_outbox();
        assert_eq!(s.get(1).matches("(?,?,?)").count(), 1);
        assert_eq!(s.get(64).matches("(?,?,?)").count(), 64);
        assert_eq!(
            delete_outbox().get(4),
            "DELETE FROM index_outbox WHERE id IN (?,?,?,?)"
        );
    }

    #[test]
    fn compared_values_saturate_and_stored_values_round_trip() {
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(bound(7), 7);
        assert_eq!(from_stored(stored(u64::MAX)), u64::MAX);
    }
}
