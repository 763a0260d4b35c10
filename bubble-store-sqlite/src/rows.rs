//! Rows to domain types and back, and the multi-row statements batches use.

use bubble_core::{
    ChannelEntry, Content, ContentType, Conversation, ConversationKind, DeviceId, Direction,
    EntryKind, EntryMeta, Error, GroupId, InboxEntry, MsgId, Result, UserId,
};
use bytes::Bytes;
use rusqlite::types::FromSql;
use rusqlite::{Params, Row, Statement};

use crate::error::map_sqlite;

/// The inbox columns every read selects, in the order [`inbox_entry`]
/// decodes (a macro so statements can be `concat!`-ed constants): the
/// owner's own from the inbox row `i`, the shared ones from its message
/// row `m`. The owner and the peer are numbers in the row (see `names`):
/// their names are the SQL expressions given, a bound parameter where the
/// read already has the name (no lookup per row), else [`inbox_columns!`]'s
/// lookups by number.
macro_rules! inbox_columns_with {
    ($owner:expr, $peer:expr) => {
        concat!(
            $owner,
            ", i.version, m.kind, i.conv_kind, ",
            $peer,
            ", i.direction, m.server_msg_id, m.sender, m.sender_device, m.client_msg_id, \
             m.client_seq, m.create_time, m.server_time, m.content_type, m.content, \
             i.read_up_to, m.meta"
        )
    };
}
pub(crate) use inbox_columns_with;

/// [`inbox_columns_with!`] with the owner's and the peer's names looked up
/// by number (one seek of `names`' rowid each per row).
macro_rules! inbox_columns {
    () => {
        crate::rows::inbox_columns_with!(
            crate::names::name_of!("i.owner"),
            crate::names::name_of!("i.peer")
        )
    };
}
pub(crate) use inbox_columns;

/// The channel-log columns every read selects, in the order [`channel_entry`] decodes.
macro_rules! channel_columns {
    () => {
        "group_id, seq, kind, server_msg_id, sender, sender_device, client_msg_id, client_seq, \
         create_time, server_time, content_type, content, meta"
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

/// An enum stored as its integer code, read back with `decode` (a
/// `from_u8` or `from_i8`). A code out of `V`'s range or unknown to
/// `decode` is corrupt data, an internal error like any row that does not
/// decode: never wrapped into range (257 is not 1), and never the caller's
/// invalid input (`decode`'s own error says that).
pub(crate) fn code<V: TryFrom<i64>, T>(
    row: &Row<'_>,
    i: usize,
    what: &str,
    decode: impl FnOnce(V) -> Result<T>,
) -> Result<T> {
    let v: i64 = get(row, i)?;
    V::try_from(v)
        .ok()
        .and_then(|v| decode(v).ok())
        .ok_or_else(|| {
            Error::internal(format!(
                "stored {what} {v} is not one this version knows; the database may be from another program or corrupt"
            ))
        })
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
    let conv_kind = code(row, at + 3, "conversation kind", ConversationKind::from_u8)?;
    let peer: String = get(row, at + 4)?;
    Ok(InboxEntry {
        owner: UserId::from(get::<String>(row, at)?),
        version: from_stored(get(row, at + 1)?),
        kind: code(row, at + 2, "entry kind", EntryKind::from_u8)?,
        conversation: Conversation::from_parts(conv_kind, &peer),
        direction: code(row, at + 5, "direction", Direction::from_i8)?,
        server_msg_id: msg_id(row, at + 6)?,
        sender: UserId::from(get::<String>(row, at + 7)?),
        sender_device: DeviceId::from(get::<String>(row, at + 8)?),
        client_msg_id: get(row, at + 9)?,
        client_seq: from_stored(get(row, at + 10)?),
        create_time: get(row, at + 11)?,
        server_time: get(row, at + 12)?,
        content: Content {
            kind: code(row, at + 13, "content type", ContentType::from_u8)?,
            body: Bytes::from(get::<Vec<u8>>(row, at + 14)?),
        },
        read_up_to: from_stored(get(row, at + 15)?),
        meta: meta(row, at + 16)?,
    })
}

/// Decodes the channel-log columns ([`channel_columns`]).
pub(crate) fn channel_entry(row: &Row<'_>) -> Result<ChannelEntry> {
    Ok(ChannelEntry {
        group: GroupId::from(get::<String>(row, 0)?),
        seq: from_stored(get(row, 1)?),
        kind: code(row, 2, "entry kind", EntryKind::from_u8)?,
        server_msg_id: msg_id(row, 3)?,
        sender: UserId::from(get::<String>(row, 4)?),
        sender_device: DeviceId::from(get::<String>(row, 5)?),
        client_msg_id: get(row, 6)?,
        client_seq: from_stored(get(row, 7)?),
        create_time: get(row, 8)?,
        server_time: get(row, 9)?,
        content: Content {
            kind: code(row, 10, "content type", ContentType::from_u8)?,
            body: Bytes::from(get::<Vec<u8>>(row, 11)?),
        },
        meta: meta(row, 12)?,
    })
}

/// An entry's meta from a nullable blob column (NULL: none). Bytes that do
/// not decode are corrupt data, like any other column that does not.
pub(crate) fn meta(row: &Row<'_>, i: usize) -> Result<EntryMeta> {
    let Some(raw) = get::<Option<Vec<u8>>>(row, i)? else {
        return Ok(EntryMeta::none());
    };
    EntryMeta::from_bytes(Bytes::from(raw)).map_err(|e| {
        Error::internal(format!(
            "a stored entry meta does not decode ({e}); the database may be from another program or corrupt"
        ))
    })
}

/// An entry's meta for a nullable blob column.
pub(crate) fn meta_value(meta: &EntryMeta) -> Option<&[u8]> {
    (!meta.is_empty()).then(|| &meta.as_bytes()[..])
}

/// A message id read back from a blob column.
pub(crate) fn msg_id(row: &Row<'_>, i: usize) -> Result<MsgId> {
    let raw: Vec<u8> = get(row, i)?;
    MsgId::from_slice(&raw).map_err(|_| {
        Error::internal(format!(
            "a stored message id is {} bytes, not 16; the database may be from another program or corrupt",
            raw.len()
        ))
    })
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
    use bubble_core::{ErrorKind, Role};
    use rusqlite::types::Value;

    /// `values` as one row (a `SELECT` of them), decoded by `decode`.
    fn decode_row<T>(values: &[Value], decode: impl Fn(&Row<'_>) -> Result<T>) -> Result<T> {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = format!("SELECT {}", vec!["?"; values.len()].join(", "));
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(values)).unwrap();
        decode(rows.next().unwrap().unwrap())
    }

    #[test]
    fn a_stored_code_reads_back_as_its_enum() {
        let direction = decode_row(&[Value::Integer(-1)], |row| {
            code(row, 0, "direction", Direction::from_i8)
        });
        assert_eq!(direction.unwrap(), Direction::In);
    }

    #[test]
    fn a_stored_code_out_of_range_is_corrupt_not_wrapped_into_range() {
        // 257 truncated to a byte is 1 (`Out`, `Member`): it must not read as that.
        let err = decode_row(&[Value::Integer(257)], |row| {
            code(row, 0, "direction", Direction::from_i8)
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.message().contains("direction 257"), "{err}");
    }

    #[test]
    fn an_unknown_stored_code_is_corrupt_data_not_the_callers_invalid_input() {
        // Found by the `sqlite_rows` fuzz target: a member row with role 0
        // came back as `InvalidInput` ("fix your request").
        let err = decode_row(&[Value::Integer(0)], |row| {
            code(row, 0, "member role", Role::from_u8)
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.message().contains("member role 0"), "{err}");
    }

    #[test]
    fn a_stored_message_id_that_is_not_16_bytes_is_corrupt_data() {
        let err = decode_row(&[Value::Blob(vec![7; 15])], |row| msg_id(row, 0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    }

    #[test]
    fn compared_values_saturate_and_stored_values_round_trip() {
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(bound(7), 7);
        assert_eq!(from_stored(stored(u64::MAX)), u64::MAX);
    }
}
