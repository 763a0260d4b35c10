//! Rows to domain types and back, and the multi-row statements batches use.

use bubble_core::{
    ChannelEntry, Content, ContentType, Conversation, ConversationKind, DeviceId, Direction,
    EntryKind, Error, GroupId, InboxEntry, MsgId, Result, UserId,
};
use bytes::Bytes;
use rusqlite::types::FromSql;
use rusqlite::{Params, Row, Statement};

use crate::error::map_sqlite;

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

/// A column of a row, its SQLite error made a core one.
pub(crate) fn get<T: FromSql>(row: &Row<'_>, i: usize) -> Result<T> {
    row.get(i).map_err(map_sqlite)
}

fn small(row: &Row<'_>, i: usize, what: &str) -> Result<u8> {
    let v: i64 = get(row, i)?;
    u8::try_from(v).map_err(|_| Error::internal(format!("stored {what} {v} is out of range")))
}

/// Every row a statement returns, each decoded by `map`.
pub(crate) fn all<T>(
    stmt: &mut Statement<'_>,
    args: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut found = stmt.query(args).map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = found.next().map_err(map_sqlite)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// The first row a statement returns, if any, decoded by `map`.
pub(crate) fn first<T>(
    stmt: &mut Statement<'_>,
    args: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut found = stmt.query(args).map_err(map_sqlite)?;
    found.next().map_err(map_sqlite)?.map(map).transpose()
}

/// A page from a statement asked for one row more than `limit`: the first
/// `limit` rows decoded, and whether more follow.
pub(crate) fn page<T>(
    stmt: &mut Statement<'_>,
    args: impl Params,
    limit: usize,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<(Vec<T>, bool)> {
    let mut found = stmt.query(args).map_err(map_sqlite)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    while let Some(row) = found.next().map_err(map_sqlite)? {
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(map(row)?);
    }
    Ok((out, false))
}

/// Decodes the inbox columns ([`inbox_columns`]) starting at column `at`.
pub(crate) fn inbox_entry(row: &Row<'_>, at: usize) -> Result<InboxEntry> {
    let conv_kind = ConversationKind::from_u8(small(row, at + 3, "conversation kind")?)?;
    let peer: String = get(row, at + 4)?;
    let direction: i64 = get(row, at + 5)?;
    Ok(InboxEntry {
        owner: UserId::from(get::<String>(row, at)?),
        version: from_stored(get(row, at + 1)?),
        kind: EntryKind::from_u8(small(row, at + 2, "entry kind")?)?,
        conversation: Conversation::from_parts(conv_kind, &peer),
        direction: Direction::from_i8(direction as i8)?,
        server_msg_id: msg_id(row, at + 6)?,
        sender: UserId::from(get::<String>(row, at + 7)?),
        sender_device: DeviceId::from(get::<String>(row, at + 8)?),
        client_msg_id: get(row, at + 9)?,
        client_seq: from_stored(get(row, at + 10)?),
        create_time: get(row, at + 11)?,
        server_time: get(row, at + 12)?,
        content: Content {
            kind: ContentType::from_u8(small(row, at + 13, "content type")?)?,
            body: Bytes::from(get::<Vec<u8>>(row, at + 14)?),
        },
        read_up_to: from_stored(get(row, at + 15)?),
    })
}

/// Decodes the channel-log columns ([`channel_columns`]).
pub(crate) fn channel_entry(row: &Row<'_>) -> Result<ChannelEntry> {
    Ok(ChannelEntry {
        group: GroupId::from(get::<String>(row, 0)?),
        seq: from_stored(get(row, 1)?),
        kind: EntryKind::from_u8(small(row, 2, "entry kind")?)?,
        server_msg_id: msg_id(row, 3)?,
        sender: UserId::from(get::<String>(row, 4)?),
        sender_device: DeviceId::from(get::<String>(row, 5)?),
        client_msg_id: get(row, 6)?,
        client_seq: from_stored(get(row, 7)?),
        create_time: get(row, 8)?,
        server_time: get(row, 9)?,
        content: Content {
            kind: ContentType::from_u8(small(row, 10, "content type")?)?,
            body: Bytes::from(get::<Vec<u8>>(row, 11)?),
        },
    })
}

/// A message id read back from a blob column.
pub(crate) fn msg_id(row: &Row<'_>, i: usize) -> Result<MsgId> {
    MsgId::from_slice(&get::<Vec<u8>>(row, i)?)
}

/// An integer column.
pub(crate) fn int(row: &Row<'_>, i: usize) -> Result<i64> {
    get(row, i)
}

/// A text column.
pub(crate) fn text(row: &Row<'_>, i: usize) -> Result<String> {
    get(row, i)
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
