//! Reading domain types out of result rows (ids are stored as bytes), and
//! the placeholder lists of statements assembled at run time.

use bytes::Bytes;
use sqlx::mysql::MySqlRow;
use sqlx::{Row, SqlSafeStr};

use bubble_core::{
    ChannelEntry, Content, ContentType, Conversation, ConversationKind, DeviceId, Direction,
    EntryKind, EntryMeta, Error, GroupId, InboxEntry, MsgId, Result, SendReceipt, UserId,
};

use crate::error::map_err;

/// A name bound as bytes: the id columns are `VARBINARY` and compare byte
/// for byte, where a `&str` would bind as text in the connection's charset.
pub(crate) fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

/// The columns [`inbox_entry`] reads, from an inbox row `i` joined to its
/// message row `m` ([`inbox_join`]), in a form `concat!` accepts.
macro_rules! inbox_columns {
    () => {
        "i.owner, i.version, i.conv_kind, i.conv_id, i.direct, m.entry_kind, m.server_msg_id, \
         m.sender, m.sender_device, m.client_msg_id, m.client_seq, m.create_time, \
         m.server_time, i.read_up_to, m.content_type, m.content, m.meta"
    };
}
pub(crate) use inbox_columns;

/// Inbox rows `i` with their message rows `m`: one primary-key lookup per entry.
macro_rules! inbox_join {
    () => {
        " FROM inbox i JOIN messages m ON m.id = i.message_id "
    };
}
pub(crate) use inbox_join;

/// The columns [`channel_entry`] reads.
macro_rules! channel_columns {
    () => {
        "group_id, seq, entry_kind, server_msg_id, sender, sender_device, client_msg_id, \
         client_seq, create_time, server_time, content_type, content, meta"
    };
}
pub(crate) use channel_columns;

/// A result row as the decoders read it: the driver's [`MySqlRow`], or, for
/// the `mysql_rows` fuzz target, a row of plain values
/// ([`crate::fuzzing::Row`]), which no driver can be made to return.
pub(crate) trait Columns {
    /// The value of column `col`; an absent column, a NULL where none may
    /// be, or a value of another type is an error (`Internal`: stored data,
    /// not the caller's input).
    fn column<T: Cell>(&self, col: &str) -> Result<T>;
}

impl Columns for MySqlRow {
    fn column<T: Cell>(&self, col: &str) -> Result<T> {
        self.try_get(col).map_err(map_err)
    }
}

/// A Rust type a column decodes into: what the driver decodes, and what a
/// fuzzed plain value converts to (the driver's rules, loosened only where
/// that lets more values reach the decoders' own checks).
pub(crate) trait Cell:
    for<'r> sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql> + Sized
{
    fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String>;
}

macro_rules! int_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String> {
                use crate::fuzzing::Value;
                match value {
                    Value::Int(v) => <$t>::try_from(*v).map_err(|_| format!("{v} is out of range")),
                    Value::UInt(v) => <$t>::try_from(*v).map_err(|_| format!("{v} is out of range")),
                    other => Err(format!("{other:?} is not an integer")),
                }
            }
        }
    )*};
}
int_cell!(u8, i8, u16, u32, u64, i32, i64);

impl Cell for bool {
    fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String> {
        i64::from_value(value).map(|v| v != 0)
    }
}

impl Cell for Vec<u8> {
    fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String> {
        match value {
            crate::fuzzing::Value::Bytes(b) => Ok(b.clone()),
            other => Err(format!("{other:?} is not a byte string")),
        }
    }
}

impl Cell for String {
    fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String> {
        String::from_utf8(Vec::from_value(value)?).map_err(|_| "invalid UTF-8".to_owned())
    }
}

impl<T: Cell> Cell for Option<T> {
    fn from_value(value: &crate::fuzzing::Value) -> std::result::Result<Self, String> {
        match value {
            crate::fuzzing::Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A column holding UTF-8 bytes (an id) as text.
pub(crate) fn text(row: &impl Columns, col: &str) -> Result<String> {
    let raw: Vec<u8> = row.column(col)?;
    String::from_utf8(raw).map_err(|_| {
        Error::internal(format!(
            "mysql: column {col} holds bytes that are not UTF-8"
        ))
    })
}

/// A nullable id column; NULL reads as the empty string.
pub(crate) fn text_or_empty(row: &impl Columns, col: &str) -> Result<String> {
    let raw: Option<Vec<u8>> = row.column(col)?;
    match raw {
        None => Ok(String::new()),
        Some(raw) => String::from_utf8(raw).map_err(|_| {
            Error::internal(format!(
                "mysql: column {col} holds bytes that are not UTF-8"
            ))
        }),
    }
}

pub(crate) fn get<T: Cell>(row: &impl Columns, col: &str) -> Result<T> {
    row.column(col)
}

pub(crate) fn msg_id(row: &impl Columns, col: &str) -> Result<MsgId> {
    let raw: Vec<u8> = get(row, col)?;
    MsgId::from_slice(&raw)
        .map_err(|e| Error::internal(format!("mysql: column {col}: {}", e.message())))
}

fn content(row: &impl Columns) -> Result<Content> {
    let kind = code(row, "content_type", ContentType::from_u8)?;
    let body: Vec<u8> = get(row, "content")?;
    Ok(Content {
        kind,
        body: Bytes::from(body),
    })
}

/// A `meta` column: the encoded [`EntryMeta`], NULL (or empty) for none.
/// Bytes that do not decode are a corrupt column, as elsewhere.
pub(crate) fn meta(row: &impl Columns, col: &str) -> Result<EntryMeta> {
    let raw: Option<Vec<u8>> = get(row, col)?;
    match raw {
        None => Ok(EntryMeta::none()),
        Some(raw) => EntryMeta::from_bytes(Bytes::from(raw))
            .map_err(|e| Error::internal(format!("mysql: column {col}: {}", e.message()))),
    }
}

/// The value a `meta` column stores for `meta`: NULL for none, as rows
/// written before migration 5 hold.
pub(crate) fn meta_value(meta: &EntryMeta) -> Option<&[u8]> {
    (!meta.is_empty()).then(|| &meta.as_bytes()[..])
}

/// An enum column: its stored number through `from`. A number this build
/// does not know is a corrupt column (`Internal`), named with its value.
pub(crate) fn code<N: Cell + Copy + std::fmt::Display, T>(
    row: &impl Columns,
    col: &str,
    from: impl FnOnce(N) -> Result<T>,
) -> Result<T> {
    let n: N = row.column(col)?;
    from(n).map_err(|e| {
        Error::internal(format!(
            "mysql: column {col} holds {n}, which this version does not know: {}",
            e.message()
        ))
    })
}

/// A page from rows fetched with one more than `limit` asked for: the first
/// `limit` mapped, and whether more follow.
pub(crate) fn page<T>(
    found: &[MySqlRow],
    limit: usize,
    map: impl Fn(&MySqlRow) -> Result<T>,
) -> Result<(Vec<T>, bool)> {
    let entries = found.iter().take(limit).map(map).collect::<Result<_>>()?;
    Ok((entries, found.len() > limit))
}

/// One inbox row (selected with [`inbox_columns`]).
pub(crate) fn inbox_entry(row: &impl Columns) -> Result<InboxEntry> {
    let conv_kind = code(row, "conv_kind", ConversationKind::from_u8)?;
    Ok(InboxEntry {
        owner: UserId::from(text(row, "owner")?),
        version: get(row, "version")?,
        kind: code(row, "entry_kind", EntryKind::from_u8)?,
        conversation: Conversation::from_parts(conv_kind, &text(row, "conv_id")?),
        direction: code(row, "direct", Direction::from_i8)?,
        server_msg_id: msg_id(row, "server_msg_id")?,
        sender: UserId::from(text(row, "sender")?),
        sender_device: DeviceId::from(text(row, "sender_device")?),
        client_msg_id: text(row, "client_msg_id")?,
        client_seq: get(row, "client_seq")?,
        create_time: get(row, "create_time")?,
        server_time: get(row, "server_time")?,
        content: content(row)?,
        read_up_to: get(row, "read_up_to")?,
        meta: meta(row, "meta")?,
    })
}

/// One channel-log row (selected with [`channel_columns`]).
pub(crate) fn channel_entry(row: &impl Columns) -> Result<ChannelEntry> {
    Ok(ChannelEntry {
        group: GroupId::from(text(row, "group_id")?),
        seq: get(row, "seq")?,
        kind: code(row, "entry_kind", EntryKind::from_u8)?,
        server_msg_id: msg_id(row, "server_msg_id")?,
        sender: UserId::from(text(row, "sender")?),
        sender_device: DeviceId::from(text(row, "sender_device")?),
        client_msg_id: text_or_empty(row, "client_msg_id")?,
        client_seq: get(row, "client_seq")?,
        create_time: get(row, "create_time")?,
        server_time: get(row, "server_time")?,
        content: content(row)?,
        meta: meta(row, "meta")?,
    })
}

/// A receipt from `server_msg_id`, `version`, `seq` and `server_time` columns,
/// answering a retry (so `duplicate` is set).
pub(crate) fn receipt(row: &impl Columns) -> Result<SendReceipt> {
    Ok(SendReceipt {
        server_msg_id: msg_id(row, "server_msg_id")?,
        version: get(row, "version")?,
        seq: get(row, "seq")?,
        server_time: get(row, "server_time")?,
        duplicate: true,
        prev_version: 0,
    })
}

/// `n` placeholders for one row: `(?, ?, …)`.
pub(crate) fn row_placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3 + 2);
    s.push('(');
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s.push(')');
    s
}

/// `rows` rows of `cols` placeholders: `(?, ?), (?, ?)`.
pub(crate) fn values(rows: usize, cols: usize) -> String {
    let one = row_placeholders(cols);
    let mut s = String::with_capacity(rows * (one.len() + 2));
    for i in 0..rows {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&one);
    }
    s
}

/// A statement's text with its values written in as literals: byte strings
/// as hex literals (`X'…'`), numbers as digits. Whatever bytes a value holds,
/// it adds only hex digits to the text, so no value can change what the
/// statement says. For the append's round trips of several statements, which
/// the text protocol carries without placeholders.
pub(crate) struct Sql(String);

impl Sql {
    /// Starts a statement with a fixed fragment.
    pub(crate) fn new(head: &str) -> Sql {
        let mut s = String::with_capacity(head.len() + 256);
        s.push_str(head);
        Sql(s)
    }

    /// Appends a fixed fragment (never input).
    pub(crate) fn push(&mut self, fixed: &str) -> &mut Sql {
        self.0.push_str(fixed);
        self
    }

    /// Opens the `n`th row of a `VALUES` list.
    pub(crate) fn row(&mut self, n: usize) -> &mut Sql {
        self.push(if n == 0 { "(" } else { ", (" })
    }

    /// Closes a row.
    pub(crate) fn end_row(&mut self) -> &mut Sql {
        self.push(")")
    }

    /// Separates two values.
    pub(crate) fn sep(&mut self) -> &mut Sql {
        self.push(", ")
    }

    /// A byte string as a hex literal, or NULL when there is none.
    pub(crate) fn bytes_or_null(&mut self, v: Option<&[u8]>) -> &mut Sql {
        match v {
            Some(v) => self.bytes(v),
            None => self.push("NULL"),
        }
    }

    /// A byte string as a hex literal (`X''` for none).
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Sql {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        self.0.reserve(v.len() * 2 + 3);
        self.0.push_str("X'");
        for byte in v {
            self.0.push(char::from(HEX[usize::from(byte >> 4)]));
            self.0.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
        self.0.push('\'');
        self
    }

    pub(crate) fn uint(&mut self, v: u64) -> &mut Sql {
        use std::fmt::Write;
        let _ = write!(self.0, "{v}");
        self
    }

    pub(crate) fn int(&mut self, v: i64) -> &mut Sql {
        use std::fmt::Write;
        let _ = write!(self.0, "{v}");
        self
    }

    /// The text so far, in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

/// Runs a statement whose text was assembled from fixed fragments and
/// placeholders only (multi-row inserts, `IN (…)` lists), or by [`Sql`]:
/// never from input text.
pub(crate) fn dynamic(sql: String) -> impl SqlSafeStr {
    sqlx::AssertSqlSafe(sql)
}
