//! The inbox append, as the writer runs it for a batch of deliveries inside
//! its open transaction: each message once, per-owner versions, dedup by
//! client message id, and the search outbox rows.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, btree_map};

use bubble_core::ports::{AppendOutcome, Appended, Delivery};
use bubble_core::{AppId, EntryKind, InboxEntry, ListRowChange, Result, SendReceipt, UserId};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::error::map_sqlite;
use crate::names::{Names, id_of};
use crate::rows::{self, bound, from_stored, stored};

/// One inbox append waiting for the writer. Appends of a batch are applied
/// together ([`write_batch`]).
pub(crate) struct AppendRequest {
    pub app: AppId,
    pub delivery: Delivery,
    pub reply: oneshot::Sender<Result<AppendOutcome>>,
}

/// The receipt of an accepted client message id (`?1` app, `?2` sender's
/// name, `?3` the id; `inbox_sent`'s key, the sender by number).
pub(crate) const FIND_SENT: &str = concat!(
    "SELECT server_msg_id, version, server_time FROM inbox_sent WHERE sender = ",
    id_of!("?1", "?2"),
    " AND client_msg_id = ?3"
);

/// [`FIND_SENT`] of a sender the append has numbered (`?1`).
pub(crate) const FIND_SENT_BY_NUMBER: &str = "SELECT server_msg_id, version, server_time \
     FROM inbox_sent WHERE sender = ?1 AND client_msg_id = ?2";

/// The newest version of an owner (`?1` app, `?2` name): one seek to the
/// end of its range of the inbox key, and one into `version_floors`
/// (retention's record of deleted newest entries: nearly always empty),
/// the higher of the two.
pub(crate) const LAST_VERSION: &str = concat!(
    "SELECT MAX(v) FROM (SELECT MAX(version) AS v FROM inbox WHERE owner = ",
    id_of!("?1", "?2"),
    " UNION ALL SELECT version FROM version_floors WHERE app = ?1 AND owner = ?2)"
);

/// [`LAST_VERSION`] of an owner the append has numbered (`?1`) while
/// `version_floors` is empty (no app has retention, or it never caught up
/// with an owner): the seek to the end of the range alone.
pub(crate) const NEWEST_ENTRY: &str = "SELECT MAX(version) FROM inbox WHERE owner = ?1";

/// Whether retention left any version floor (one step into an empty tree).
pub(crate) const ANY_FLOOR: &str = "SELECT EXISTS (SELECT 1 FROM version_floors)";

const INSERT_MESSAGE: &str = "INSERT INTO messages (app, server_msg_id, kind, sender, \
     sender_device, client_msg_id, client_seq, create_time, server_time, content_type, content, \
     meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// An edit: the message's row (`messages_by_id`; every owner shares it)
/// takes the new content and meta.
const EDIT_MESSAGE: &str = "UPDATE messages SET content_type = ?3, content = ?4, meta = ?5 \
     WHERE app = ?1 AND server_msg_id = ?2 AND kind = 1";

/// An owner's entry; owner and peer are numbers ([`Names`]).
const INSERT_INBOX: &str = "INSERT INTO inbox (owner, version, message, peer, conv_kind, \
     direction, status, read_up_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// A dedup receipt; the sender is a number ([`Names`]).
const INSERT_SENT: &str = "INSERT INTO inbox_sent (sender, client_msg_id, server_msg_id, \
     version, server_time) VALUES (?, ?, ?, ?, ?)";

const INSERT_OUTBOX: &str = "INSERT INTO index_outbox (message) VALUES (?)";

/// The messages and notices of a batch for one conversation row (made if
/// new), gathered ([`ListRowChange`]): the newest takes the activity and is
/// shown last; the received ones add to the unread count, the newest of
/// them is the newest received, and the newest that mentions the owner is
/// the row's mention. When nothing was unread the unread floor moves up to
/// the batch's first received entry (or its newest, if none was received):
/// nothing below it can be unread (see `inbox::MARK_READ`).
const UPSERT_CONVERSATION: &str = "INSERT INTO conversations (owner, conv_kind, peer, \
     activity, last_version, last_msg, unread, unread_floor, last_received, mention_version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (owner, conv_kind, peer) DO UPDATE SET activity = excluded.activity, \
     last_version = excluded.last_version, last_msg = excluded.last_msg, \
     unread = unread + excluded.unread, \
     unread_floor = CASE WHEN unread = 0 THEN excluded.unread_floor ELSE unread_floor END, \
     last_received = MAX(last_received, excluded.last_received), \
     mention_version = MAX(mention_version, excluded.mention_version)";

/// A settings entry sets the row's settings, making a row without activity
/// (not listed) if there is none.
const SETTINGS_IN_CONVERSATION: &str = "INSERT INTO conversations (owner, conv_kind, peer, \
     activity, last_version, last_msg, flags, draft) VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6) \
     ON CONFLICT (owner, conv_kind, peer) DO UPDATE SET flags = excluded.flags, \
     draft = excluded.draft";

/// A recall or delete of the message shown last is shown in its place.
const RECALL_IN_CONVERSATION: &str = "UPDATE conversations SET last_version = ?4 \
     WHERE owner = ?1 AND conv_kind = ?2 AND peer = ?3 AND last_msg = ?5";

/// A read cursor raises the owner's read mark.
const CURSOR_IN_CONVERSATION: &str = "UPDATE conversations SET read_up_to = MAX(read_up_to, ?4) \
     WHERE owner = ?1 AND conv_kind = ?2 AND peer = ?3";

/// A read receipt raises the peer's read position.
const RECEIPT_IN_CONVERSATION: &str = "UPDATE conversations \
     SET peer_read_up_to = MAX(peer_read_up_to, ?4) \
     WHERE owner = ?1 AND conv_kind = ?2 AND peer = ?3";

/// Applies every append of a batch inside the writer's open transaction,
/// one prepared statement per row on the writer's thread.
///
/// Each delivery writes a `messages` row for its entries' shared fields and
/// a small inbox row per entry pointing at it; an entry that differs from
/// every message row the delivery wrote so far starts a new one (and, if
/// indexed, its own outbox row). Versions are assigned here from each
/// owner's stored counter, in batch order; a delivery whose `(app, sender,
/// client_msg_id)` was accepted before (in an earlier transaction, or
/// earlier in this batch) writes nothing and answers the first receipt.
pub(crate) fn write_batch(
    conn: &Connection,
    names: &mut Names,
    reqs: &[AppendRequest],
) -> Result<Vec<AppendOutcome>> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut find_sent = conn
        .prepare_cached(FIND_SENT_BY_NUMBER)
        .map_err(map_sqlite)?;
    // Once per batch, so an owner's counter costs one seek where no floor exists.
    let floors = conn
        .prepare_cached(ANY_FLOOR)
        .and_then(|mut s| s.query_row([], |r| r.get::<_, bool>(0)))
        .map_err(map_sqlite)?;
    let mut last_version = conn
        .prepare_cached(if floors { LAST_VERSION } else { NEWEST_ENTRY })
        .map_err(map_sqlite)?;
    let mut insert_message = conn.prepare_cached(INSERT_MESSAGE).map_err(map_sqlite)?;
    let mut insert_inbox = conn.prepare_cached(INSERT_INBOX).map_err(map_sqlite)?;
    let mut insert_sent = conn.prepare_cached(INSERT_SENT).map_err(map_sqlite)?;
    let mut insert_outbox = conn.prepare_cached(INSERT_OUTBOX).map_err(map_sqlite)?;

    // Receipts given in this batch, by (app, sender, client_msg_id).
    let mut given: HashMap<(&AppId, &UserId, &str), SendReceipt> = HashMap::new();
    // Each owner's (by number) newest version so far in this batch.
    let mut last: HashMap<i64, u64> = HashMap::new();
    // The list rows the batch's messages and notices change, written once
    // each (at the end, or before another entry of the same row).
    let mut gathered: BTreeMap<RowKey, ListRowChange> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(reqs.len());
    for r in reqs {
        let d = &r.delivery;
        let keyed = !d.client_msg_id.is_empty();
        let mut sender = None;
        if keyed {
            let key = (&r.app, &d.sender, d.client_msg_id.as_str());
            let first = match given.get(&key) {
                Some(receipt) => Some(*receipt),
                None => {
                    let number = names.id(conn, r.app.as_str(), d.sender.as_str())?;
                    sender = Some(number);
                    rows::first(&mut find_sent, params![number, d.client_msg_id], receipt)?
                }
            };
            if let Some(first) = first {
                outcomes.push(AppendOutcome::Duplicate(SendReceipt {
                    duplicate: true,
                    prev_version: 0,
                    ..first
                }));
                continue;
            }
        }
        let mut appended = Vec::with_capacity(d.entries.len());
        // The message rows this delivery wrote: nearly always one.
        let mut written: Vec<(&InboxEntry, i64)> = Vec::with_capacity(1);
        for e in &d.entries {
            let message = match written.iter().find(|(m, _)| m.same_message(e)) {
                Some(&(_, id)) => id,
                None => {
                    insert_message
                        .execute(params![
                            r.app.as_str(),
                            &e.server_msg_id.0[..],
                            e.kind as u8 as i64,
                            e.sender.as_str(),
                            e.sender_device.as_str(),
                            e.client_msg_id.as_str(),
                            stored(e.client_seq),
                            e.create_time,
                            e.server_time,
                            e.content.kind as u8 as i64,
                            &e.content.body[..],
                            rows::meta_value(&e.meta),
                        ])
                        .map_err(map_sqlite)?;
                    let id = conn.last_insert_rowid();
                    if e.kind == EntryKind::Edit {
                        edit_message(conn, &r.app, e)?;
                    }
                    if d.index {
                        insert_outbox.execute(params![id]).map_err(map_sqlite)?;
                    }
                    written.push((e, id));
                    id
                }
            };
            let owner = names.id(conn, r.app.as_str(), e.owner.as_str())?;
            let peer = names.id(conn, r.app.as_str(), e.conversation.id())?;
            let counter = match last.entry(owner) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    let newest = |row: &rusqlite::Row<'_>| rows::get::<Option<i64>>(row, 0);
                    let stored = if floors {
                        rows::first(
                            &mut last_version,
                            params![r.app.as_str(), e.owner.as_str()],
                            newest,
                        )
                    } else {
                        rows::first(&mut last_version, params![owner], newest)
                    }?
                    .flatten();
                    // Owners seen for the first time start from 0.
                    v.insert(stored.map_or(0, from_stored))
                }
            };
            let prev_version = *counter;
            let version = prev_version + 1;
            *counter = version;
            insert_inbox
                .execute(params![
                    owner,
                    bound(version),
                    message,
                    peer,
                    e.conversation.kind as u8 as i64,
                    e.direction.as_i8() as i64,
                    unread_status(e),
                    stored(e.read_up_to),
                ])
                .map_err(map_sqlite)?;
            let key = (owner, e.conversation.kind as u8 as i64, peer);
            list(conn, &mut gathered, key, e, version)?;
            appended.push(Appended {
                version,
                prev_version,
            });
        }
        if let Some(sender) = sender
            && !d.entries.is_empty()
        {
            let receipt = d.receipt(&appended);
            insert_sent
                .execute(params![
                    sender,
                    d.client_msg_id.as_str(),
                    &receipt.server_msg_id.0[..],
                    bound(receipt.version),
                    receipt.server_time,
                ])
                .map_err(map_sqlite)?;
            given.insert((&r.app, &d.sender, d.client_msg_id.as_str()), receipt);
        }
        outcomes.push(AppendOutcome::Appended(appended));
    }
    for (key, row) in std::mem::take(&mut gathered) {
        upsert(conn, key, &row)?;
    }
    Ok(outcomes)
}

/// A conversation row's key: the owner's number, the conversation's kind
/// and the peer's number.
type RowKey = (i64, i64, i64);

/// Writes one gathered row ([`UPSERT_CONVERSATION`]): a group message in
/// a busy batch writes each member's row and its place in
/// `conversations_by_activity` once, not once per message.
fn upsert(conn: &Connection, key: RowKey, row: &ListRowChange) -> Result<()> {
    conn.prepare_cached(UPSERT_CONVERSATION)
        .and_then(|mut s| {
            s.execute(params![
                key.0,
                key.1,
                key.2,
                bound(row.activity),
                bound(row.version),
                &row.msg.0[..],
                bound(row.unread),
                bound(row.unread_floor()),
                bound(row.last_received),
                bound(row.mention),
            ])
        })
        .map_err(map_sqlite)?;
    Ok(())
}

/// Applies a new entry (given `version`) to its conversation's row in the
/// list, by the rules of `InboxStore::conversations`. A message or notice
/// is gathered; any other entry of a row with gathered ones writes them
/// first, so it sees the row as they left it (a recall of the message shown
/// last, a cursor on a row they made).
fn list(
    conn: &Connection,
    gathered: &mut BTreeMap<RowKey, ListRowChange>,
    key: RowKey,
    e: &InboxEntry,
    version: u64,
) -> Result<()> {
    let run = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<()> {
        let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
        stmt.execute(args).map_err(map_sqlite)?;
        Ok(())
    };
    let flush = |gathered: &mut BTreeMap<RowKey, ListRowChange>| match gathered.remove(&key) {
        Some(row) => upsert(conn, key, &row),
        None => Ok(()),
    };
    match e.kind {
        EntryKind::Message | EntryKind::SystemNotice => {
            match gathered.entry(key) {
                btree_map::Entry::Occupied(mut o) => o.get_mut().add(e, version),
                btree_map::Entry::Vacant(v) => {
                    v.insert(ListRowChange::new(e, version));
                }
            }
            Ok(())
        }
        EntryKind::Edit | EntryKind::Reaction => Ok(()),
        EntryKind::Settings => match e.meta.settings() {
            Some(settings) => {
                flush(gathered)?;
                run(
                    SETTINGS_IN_CONVERSATION,
                    params![
                        key.0,
                        key.1,
                        key.2,
                        &e.server_msg_id.0[..],
                        i64::from(settings.flags()),
                        settings.draft,
                    ],
                )
            }
            None => Ok(()),
        },
        EntryKind::Recall | EntryKind::Delete => {
            flush(gathered)?;
            run(
                RECALL_IN_CONVERSATION,
                params![key.0, key.1, key.2, bound(version), &e.server_msg_id.0[..]],
            )
        }
        EntryKind::ReadCursor => {
            flush(gathered)?;
            run(
                CURSOR_IN_CONVERSATION,
                params![key.0, key.1, key.2, bound(e.read_up_to)],
            )
        }
        EntryKind::ReadReceipt => {
            flush(gathered)?;
            run(
                RECEIPT_IN_CONVERSATION,
                params![key.0, key.1, key.2, bound(e.read_up_to)],
            )
        }
    }
}

/// Gives the message an edit names the edit's content and meta.
fn edit_message(conn: &Connection, app: &AppId, e: &InboxEntry) -> Result<()> {
    conn.prepare_cached(EDIT_MESSAGE)
        .and_then(|mut s| {
            s.execute(params![
                app.as_str(),
                &e.server_msg_id.0[..],
                e.content.kind as u8 as i64,
                &e.content.body[..],
                rows::meta_value(&e.meta),
            ])
        })
        .map_err(map_sqlite)?;
    Ok(())
}

/// The inbox row's `status` for a new entry: unread (0) for a received
/// message or notice, NULL for every entry that never counts as unread
/// (so a read mark, which cannot see the message's kind in the inbox row,
/// touches exactly the entries that count).
fn unread_status(e: &InboxEntry) -> Option<i64> {
    e.starts_unread().then_some(0)
}

/// A receipt from [`FIND_SENT`]'s columns, as a retry gets it back.
pub(crate) fn receipt(row: &rusqlite::Row<'_>) -> Result<SendReceipt> {
    Ok(SendReceipt {
        server_msg_id: rows::msg_id(row, 0)?,
        version: from_stored(rows::int(row, 1)?),
        seq: 0,
        server_time: rows::int(row, 2)?,
        duplicate: true,
        prev_version: 0,
    })
}
