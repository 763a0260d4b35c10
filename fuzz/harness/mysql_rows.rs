//! Harness of the `mysql_rows` fuzz target: the MySQL store's row decoders
//! (inbox entries, conversation-list rows, super-group log entries, retry
//! receipts, groups, members, apps, jobs, push tokens) fed rows of arbitrary
//! values, as a database written by another program, an older bubble or a
//! hand-made fix would hold them.
//!
//! Only the driver can build a `MySqlRow`, so the decoders read a row of
//! plain values (`bubble_store_mysql::fuzzing::Row`) through the same code:
//! they are generic over how a row gives its columns, and the plain row
//! converts a value the way the driver does (an integer out of the Rust
//! type's range, a NULL where none may be, bytes that are not UTF-8 as text:
//! each an error).
//!
//! The first byte picks the decoder; the rest gives each of its columns a
//! value: NULL, a signed or unsigned integer, text or raw bytes.
//!
//! The contract: no panic; a row that does not decode is an `Internal`
//! error (stored data is not the caller's input to fix); and a row that
//! decodes keeps every enum column's value exactly (257 must not read as 1).
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/mysql_rows.rs` and the
//! replay of `fuzz/regressions/mysql_rows/` in bubble-store-mysql's tests.

use bubble_core::{ErrorKind, Result};
use bubble_store_mysql::fuzzing::{self, Row, Value};

#[path = "input.rs"]
mod input;
use input::Input;

impl Input<'_> {
    fn value(&mut self) -> Value {
        match self.u8() % 6 {
            0 => Value::Null,
            1 => Value::Int(i64::from(self.u8() as i8)),
            2 => Value::Int(i64::from_be_bytes(self.array())),
            3 => Value::UInt(u64::from_be_bytes(self.array())),
            4 => Value::Bytes(
                String::from_utf8_lossy(&self.bytes())
                    .into_owned()
                    .into_bytes(),
            ),
            _ => Value::Bytes(self.bytes()),
        }
    }
}

/// How a value is written into an input (the inverse of [`Input::value`]),
/// for the seeds.
fn encode(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => vec![0],
        Value::Int(v) => [&[2][..], &v.to_be_bytes()].concat(),
        Value::UInt(v) => [&[3][..], &v.to_be_bytes()].concat(),
        Value::Bytes(b) => {
            assert!(b.len() <= 255, "a seed's value is at most 255 bytes");
            [&[5, b.len() as u8][..], b].concat()
        }
    }
}

const INBOX: &[&str] = &[
    "owner",
    "version",
    "conv_kind",
    "conv_id",
    "direct",
    "entry_kind",
    "server_msg_id",
    "sender",
    "sender_device",
    "client_msg_id",
    "client_seq",
    "create_time",
    "server_time",
    "read_up_to",
    "content_type",
    "content",
    "meta",
];

const LIST: &[&str] = &[
    "list_activity",
    "list_unread",
    "list_read_up_to",
    "list_peer_read_up_to",
    "list_flags",
    "list_draft",
    "list_mentioned",
];

const CHANNEL: &[&str] = &[
    "group_id",
    "seq",
    "entry_kind",
    "server_msg_id",
    "sender",
    "sender_device",
    "client_msg_id",
    "client_seq",
    "create_time",
    "server_time",
    "content_type",
    "content",
    "meta",
];

/// What a decoded row must have kept exactly: (column, the value decoded
/// from it, as a number).
type Kept = Vec<(&'static str, i64)>;

/// What a decoded row must have kept of an inbox entry's enum columns.
fn inbox_kept(e: &bubble_core::InboxEntry) -> Kept {
    vec![
        ("conv_kind", e.conversation.kind as i64),
        ("direct", i64::from(e.direction.as_i8())),
        ("entry_kind", e.kind as i64),
        ("content_type", e.content.kind as i64),
    ]
}

type Check = fn(&Row) -> Result<Kept>;

/// Each decoder: its name, its columns, and what it must keep.
struct Decoder {
    name: &'static str,
    columns: fn() -> Vec<&'static str>,
    check: Check,
}

const DECODERS: &[Decoder] = &[
    Decoder {
        name: "inbox",
        columns: || INBOX.to_vec(),
        check: |row| fuzzing::inbox_entry(row).map(|e| inbox_kept(&e)),
    },
    Decoder {
        name: "conversation",
        columns: || [INBOX, LIST].concat(),
        check: |row| fuzzing::conversation(row).map(|c| inbox_kept(&c.last)),
    },
    Decoder {
        name: "channel",
        columns: || CHANNEL.to_vec(),
        check: |row| {
            fuzzing::channel_entry(row).map(|e| {
                vec![
                    ("entry_kind", e.kind as i64),
                    ("content_type", e.content.kind as i64),
                ]
            })
        },
    },
    Decoder {
        name: "receipt",
        columns: || vec!["server_msg_id", "version", "seq", "server_time"],
        check: |row| fuzzing::receipt(row).map(|_| Vec::new()),
    },
    Decoder {
        name: "group",
        columns: || {
            vec![
                "id",
                "name",
                "kind",
                "owner",
                "created_at",
                "avatar_url",
                "announcement",
                "muted",
            ]
        },
        check: |row| fuzzing::group(row).map(|g| vec![("kind", g.kind as i64)]),
    },
    Decoder {
        name: "member",
        columns: || vec!["user_id", "role", "joined_at", "muted_until"],
        check: |row| fuzzing::member(row).map(|m| vec![("role", m.role as i64)]),
    },
    Decoder {
        name: "app",
        columns: || vec!["id", "name", "secret", "settings"],
        check: |row| fuzzing::app(row).map(|_| Vec::new()),
    },
    Decoder {
        name: "job",
        columns: || {
            vec![
                "id",
                "queue",
                "payload",
                "attempts",
                "enqueued_at",
                "due_at",
                "lease_until",
            ]
        },
        check: |row| fuzzing::job(row).map(|_| Vec::new()),
    },
    Decoder {
        name: "push_token",
        columns: || {
            vec![
                "device",
                "platform",
                "token",
                "locale",
                "quiet_until",
                "updated_at",
            ]
        },
        check: |row| {
            fuzzing::push_token(row).map(|t| {
                // The platform is text: it must read back as what was stored.
                let stored = row.0.iter().find(|(c, _)| *c == "platform").map(|(_, v)| v);
                assert_eq!(
                    stored,
                    Some(&Value::Bytes(t.platform.as_str().as_bytes().to_vec())),
                    "push_token platform decoded to {} from another value",
                    t.platform.as_str()
                );
                Vec::new()
            })
        },
    },
];

/// The row an input describes, and its decoder.
fn row_of(data: &[u8]) -> (&'static Decoder, Row) {
    let mut input = Input(data);
    let decoder = &DECODERS[usize::from(input.u8()) % DECODERS.len()];
    let row = Row((decoder.columns)()
        .into_iter()
        .map(|c| (c, input.value()))
        .collect());
    (decoder, row)
}

/// Runs one input; panics on a violation of the decoders' contract.
pub fn run(data: &[u8]) {
    let (decoder, row) = row_of(data);
    let name = decoder.name;
    match (decoder.check)(&row) {
        Ok(kept) => {
            for (column, decoded) in kept {
                let stored = row.0.iter().find(|(c, _)| *c == column).map(|(_, v)| v);
                let exact = match stored {
                    Some(Value::Int(v)) => *v == decoded,
                    Some(Value::UInt(v)) => i64::try_from(*v) == Ok(decoded),
                    _ => false,
                };
                assert!(
                    exact,
                    "{name} column {column} decoded to {decoded} from {stored:?}"
                );
            }
        }
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::Internal,
            "a {name} row that does not decode must be an internal error: {e}"
        ),
    }
}

/// Whether an input's row decodes (the seeds must: rows as the store
/// writes them). For the replay test; the fuzz target does not need it.
#[allow(dead_code)]
pub fn decodes(data: &[u8]) -> bool {
    let (decoder, row) = row_of(data);
    (decoder.check)(&row).is_ok()
}

/// The first seed's row: an inbox row as the store writes it. For the
/// replay test's specifications; the fuzz target does not need it.
#[allow(dead_code)]
pub fn inbox_seed_row() -> Row {
    row_of(&seeds()[0]).1
}

/// Rows as the store writes them, one per decoder.
pub fn seeds() -> Vec<Vec<u8>> {
    fn text(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }
    let time = 1_767_225_600_000;
    let inbox = vec![
        text("alice"),
        Value::UInt(7),
        Value::UInt(1),
        text("bob"),
        Value::Int(1),
        Value::UInt(1),
        Value::Bytes(vec![9; 16]),
        text("alice"),
        text("phone-1"),
        text("m-1"),
        Value::UInt(1),
        Value::Int(time),
        Value::Int(time + 3),
        Value::UInt(0),
        Value::UInt(1),
        text("hello"),
        Value::Null,
    ];
    let list = vec![
        Value::UInt(7),
        Value::UInt(1),
        Value::UInt(0),
        Value::UInt(0),
        Value::UInt(0),
        Value::Null,
        Value::Int(0),
    ];
    let channel = vec![
        text("g1"),
        Value::UInt(42),
        Value::UInt(1),
        Value::Bytes(vec![3; 16]),
        text("bob"),
        text("laptop"),
        text("m-9"),
        Value::UInt(9),
        Value::Int(time),
        Value::Int(time + 1),
        Value::UInt(1),
        text("hi all"),
        Value::Null,
    ];
    let receipt = vec![
        Value::Bytes(vec![3; 16]),
        Value::UInt(7),
        Value::UInt(0),
        Value::Int(time),
    ];
    let group = vec![
        text("g1"),
        text("team"),
        Value::UInt(1),
        text("alice"),
        Value::Int(time),
        text(""),
        text("be kind"),
        Value::UInt(0),
    ];
    let member = vec![text("bob"), Value::UInt(1), Value::Int(time), Value::Int(0)];
    let app = vec![
        text("demo"),
        text("Demo"),
        text("dddddddddddddddddddddddddddddddd"),
        text(r#"{"max_text_bytes":16384}"#),
    ];
    let job = vec![
        Value::UInt(1),
        text("push"),
        Value::Bytes(b"{\"to\":\"bob\"}".to_vec()),
        Value::UInt(0),
        Value::Int(time),
        Value::Int(time),
        Value::Null,
    ];
    let token = vec![
        text("phone-1"),
        text("apns"),
        text("a1b2c3"),
        text("en"),
        Value::Int(0),
        Value::Int(time),
    ];
    let rows = [
        inbox.clone(),
        [inbox, list].concat(),
        channel,
        receipt,
        group,
        member,
        app,
        job,
        token,
    ];
    rows.iter()
        .enumerate()
        .map(|(i, values)| {
            let mut input = vec![i as u8];
            for v in values {
                input.extend(encode(v));
            }
            input
        })
        .collect()
}
