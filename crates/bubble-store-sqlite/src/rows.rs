//! Rows to domain types and back, and the multi-row statements batches use.

use bubble_core::{
    ChannelEntry, Content, ContentType, Conversation, ConversationKind, DeviceId, Direction,
    EntryKind, Error, GroupId, InboxEntry, MsgId, Result, UserId,
};
use bytes::Bytes;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::{map_err, map_sqlite};

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

/// An integer column.
pub(crate) fn int(row: &SqliteRow, i: usize) -> Result<i64> {
    get(row, i)
}

/// A text column.
pub(crate) fn text(row: &SqliteRow, i: usize) -> Result<String> {
    get(row, i)
}

// ------------------------------------------------- the writer's driver

fn row_small(row: &rusqlite::Row<'_>, i: usize, what: &str) -> Result<u8> {
    let v: i64 = row.get(i).map_err(map_sqlite)?;
    u8::try_from(v).map_err(|_| Error::internal(format!("stored {what} {v} is out of range")))
}

/// A message id read back from a blob column, for `query_row` closures.
pub(crate) fn row_msg_id(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<MsgId> {
    let raw: Vec<u8> = row.get(i)?;
    MsgId::from_slice(&raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// [`inbox_entry`] on a row the writer read (inbox columns from 0).
pub(crate) fn row_inbox_entry(row: &rusqlite::Row<'_>) -> Result<InboxEntry> {
    let text = |i| -> Result<String> { row.get(i).map_err(map_sqlite) };
    let int = |i| -> Result<i64> { row.get(i).map_err(map_sqlite) };
    let blob = |i| -> Result<Vec<u8>> { row.get(i).map_err(map_sqlite) };
    let conv_kind = ConversationKind::from_u8(row_small(row, 3, "conversation kind")?)?;
    Ok(InboxEntry {
        owner: UserId::from(text(0)?),
        version: from_stored(int(1)?),
        kind: EntryKind::from_u8(row_small(row, 2, "entry kind")?)?,
        conversation: Conversation::from_parts(conv_kind, &text(4)?),
        direction: Direction::from_i8(int(5)? as i8)?,
        server_msg_id: MsgId::from_slice(&blob(6)?)?,
        sender: UserId::from(text(7)?),
        sender_device: DeviceId::from(text(8)?),
        client_msg_id: text(9)?,
        client_seq: from_stored(int(10)?),
        create_time: int(11)?,
        server_time: int(12)?,
        content: Content {
            kind: ContentType::from_u8(row_small(row, 13, "content type")?)?,
            body: Bytes::from(blob(14)?),
        },
        read_up_to: from_stored(int(15)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compared_values_saturate_and_stored_values_round_trip() {
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(bound(7), 7);
        assert_eq!(from_stored(stored(u64::MAX)), u64::MAX);
    }
}
