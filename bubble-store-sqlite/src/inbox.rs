//! The inbox's SQL: the batched append (versions, dedup, outbox) and the
//! reads and read marks.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bubble_core::ports::{AppendOutcome, Appended, IndexTask, MarkedRead};
use bubble_core::{
    AppId, Conversation, ConversationKind, InboxEntry, InboxPage, MsgId, Result, SendReceipt,
    UnreadCount, UserId,
};
use rusqlite::{Connection, params};

use crate::error::map_sqlite;
use crate::rows::{self, bound, from_stored, inbox_columns, stored};
use crate::writer::{AppendRequest, WriteOp};

/// Sync: one range scan of `inbox_pull`.
pub(crate) const PULL: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM inbox WHERE app = ? AND owner = ? AND version > ? ORDER BY version LIMIT ?"
);

/// A message by id: `inbox_by_msg`. Rows of one id come back in insertion
/// (= version) order without an ORDER BY, which would tempt the planner
/// onto `inbox_pull`.
pub(crate) const GET: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM inbox WHERE app = ? AND owner = ? AND server_msg_id = ? AND kind IN (1, 6) LIMIT 1"
);

/// Unread per conversation: the `inbox_unread` partial index alone.
pub(crate) const UNREAD: &str = "SELECT conv_kind, peer, COUNT(*) FROM inbox \
     WHERE app = ? AND owner = ? AND status = 0 AND direction = -1 AND kind IN (1, 6) \
     GROUP BY conv_kind, peer ORDER BY conv_kind, peer";

/// A read mark touches only the unread rows (`inbox_unread`).
pub(crate) const MARK_READ: &str = "UPDATE inbox SET status = 1 WHERE app = ? AND owner = ? \
     AND conv_kind = ? AND peer = ? AND version <= ? AND status = 0 AND direction = -1 \
     AND kind IN (1, 6)";

/// The newest received message a read mark covers (`inbox_conversation`).
pub(crate) const LAST_READ: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM inbox WHERE app = ? AND owner = ? AND conv_kind = ? AND peer = ? AND version <= ? \
     AND direction = -1 AND kind IN (1, 6) ORDER BY version DESC LIMIT 1"
);

/// One message stops counting (`inbox_by_msg`).
pub(crate) const MARK_MESSAGE_READ: &str = "UPDATE inbox SET status = 1 WHERE app = ? \
     AND owner = ? AND server_msg_id = ? AND status = 0 AND direction = -1 AND kind IN (1, 6)";

/// The oldest outbox rows with their entries.
pub(crate) const PENDING_INDEX: &str = concat!(
    "SELECT o.id, o.app, ",
    inbox_columns!("i"),
    " FROM index_outbox o JOIN inbox i ON i.app = o.app AND i.owner = o.owner \
     AND i.version = o.version ORDER BY o.id LIMIT ?"
);

/// The receipt of an accepted client message id (`inbox_sent`'s key).
pub(crate) const FIND_SENT: &str = "SELECT server_msg_id, version, server_time FROM inbox_sent \
     WHERE app = ? AND sender = ? AND client_msg_id = ?";

/// The owner's newest version: one seek to the end of its `inbox_pull` range.
pub(crate) const LAST_VERSION: &str = "SELECT MAX(version) FROM inbox WHERE app = ? AND owner = ?";

const INSERT_INBOX: &str = "INSERT INTO inbox (app, owner, version, peer, conv_kind, direction, \
     kind, server_msg_id, sender, sender_device, client_msg_id, client_seq, create_time, \
     server_time, content_type, content, read_up_to) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_SENT: &str = "INSERT INTO inbox_sent (app, sender, client_msg_id, server_msg_id, \
     version, server_time) VALUES (?, ?, ?, ?, ?, ?)";

const INSERT_OUTBOX: &str = "INSERT INTO index_outbox (app, owner, version) VALUES (?, ?, ?)";

/// Applies every append of a batch inside the writer's open transaction,
/// one prepared statement per row on the writer's thread.
///
/// Versions are assigned here from each owner's stored counter, in batch
/// order; a delivery whose `(app, sender, client_msg_id)` was accepted
/// before (in an earlier transaction, or earlier in this batch) writes
/// nothing and answers the first receipt.
pub(crate) fn write_batch(conn: &Connection, reqs: &[AppendRequest]) -> Result<Vec<AppendOutcome>> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut find_sent = conn.prepare_cached(FIND_SENT).map_err(map_sqlite)?;
    let mut last_version = conn.prepare_cached(LAST_VERSION).map_err(map_sqlite)?;
    let mut insert_inbox = conn.prepare_cached(INSERT_INBOX).map_err(map_sqlite)?;
    let mut insert_sent = conn.prepare_cached(INSERT_SENT).map_err(map_sqlite)?;
    let mut insert_outbox = conn.prepare_cached(INSERT_OUTBOX).map_err(map_sqlite)?;

    // Receipts given in this batch, by (app, sender, client_msg_id).
    let mut given: HashMap<(&AppId, &UserId, &str), SendReceipt> = HashMap::new();
    // Each owner's newest version so far in this batch.
    let mut last: HashMap<(&AppId, &UserId), u64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(reqs.len());
    for r in reqs {
        let d = &r.delivery;
        let keyed = !d.client_msg_id.is_empty();
        if keyed {
            let key = (&r.app, &d.sender, d.client_msg_id.as_str());
            let first = match given.get(&key) {
                Some(receipt) => Some(*receipt),
                None => rows::first(
                    &mut find_sent,
                    params![r.app.as_str(), d.sender.as_str(), d.client_msg_id],
                    receipt,
                )?,
            };
            if let Some(first) = first {
                outcomes.push(AppendOutcome::Duplicate(SendReceipt {
                    duplicate: true,
                    ..first
                }));
                continue;
            }
        }
        let mut appended = Vec::with_capacity(d.entries.len());
        for e in &d.entries {
            let counter = match last.entry((&r.app, &e.owner)) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => {
                    let stored = rows::first(
                        &mut last_version,
                        params![r.app.as_str(), e.owner.as_str()],
                        |row| rows::get::<Option<i64>>(row, 0),
                    )?
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
                    r.app.as_str(),
                    e.owner.as_str(),
                    bound(version),
                    e.conversation.id(),
                    e.conversation.kind as u8 as i64,
                    e.direction.as_i8() as i64,
                    e.kind as u8 as i64,
                    &e.server_msg_id.0[..],
                    e.sender.as_str(),
                    e.sender_device.as_str(),
                    e.client_msg_id.as_str(),
                    stored(e.client_seq),
                    e.create_time,
                    e.server_time,
                    e.content.kind as u8 as i64,
                    &e.content.body[..],
                    stored(e.read_up_to),
                ])
                .map_err(map_sqlite)?;
            if d.index {
                insert_outbox
                    .execute(params![r.app.as_str(), e.owner.as_str(), bound(version)])
                    .map_err(map_sqlite)?;
            }
            appended.push(Appended {
                version,
                prev_version,
            });
        }
        if keyed && !d.entries.is_empty() {
            let receipt = d.receipt(&appended);
            insert_sent
                .execute(params![
                    r.app.as_str(),
                    d.sender.as_str(),
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
    Ok(outcomes)
}

// ------------------------------------------------------------------ reads

/// Entries after `after_version`, at most `limit`.
pub(crate) fn pull(
    conn: &Connection,
    app: &AppId,
    owner: &UserId,
    after_version: u64,
    limit: usize,
) -> Result<InboxPage> {
    if limit == 0 {
        // Nothing asked for; say whether anything is there.
        let more = last_version(conn, app, owner)? > after_version;
        return Ok(InboxPage {
            entries: Vec::new(),
            has_more: more,
        });
    }
    // One row more than asked tells whether more follow.
    let fetch = bound(limit as u64).saturating_add(1);
    let mut stmt = conn.prepare_cached(PULL).map_err(map_sqlite)?;
    let (entries, has_more) = rows::page(
        &mut stmt,
        params![app.as_str(), owner.as_str(), bound(after_version), fetch],
        limit,
        |row| rows::inbox_entry(row, 0),
    )?;
    Ok(InboxPage { entries, has_more })
}

/// The owner's newest version.
pub(crate) fn last_version(conn: &Connection, app: &AppId, owner: &UserId) -> Result<u64> {
    let mut stmt = conn.prepare_cached(LAST_VERSION).map_err(map_sqlite)?;
    let v = rows::first(&mut stmt, params![app.as_str(), owner.as_str()], |row| {
        rows::get::<Option<i64>>(row, 0)
    })?;
    Ok(v.flatten().map_or(0, from_stored))
}

/// The owner's message or notice with this id.
pub(crate) fn get(
    conn: &Connection,
    app: &AppId,
    owner: &UserId,
    id: &MsgId,
) -> Result<Option<InboxEntry>> {
    let mut stmt = conn.prepare_cached(GET).map_err(map_sqlite)?;
    rows::first(
        &mut stmt,
        params![app.as_str(), owner.as_str(), &id.0[..]],
        |row| rows::inbox_entry(row, 0),
    )
}

/// Unread received messages per conversation, from the `inbox_unread`
/// partial index alone.
pub(crate) fn unread(conn: &Connection, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
    let mut stmt = conn.prepare_cached(UNREAD).map_err(map_sqlite)?;
    rows::all(&mut stmt, params![app.as_str(), owner.as_str()], |row| {
        let kind = ConversationKind::from_u8(rows::int(row, 0)? as u8)?;
        Ok(UnreadCount {
            conversation: Conversation::from_parts(kind, &rows::text(row, 1)?),
            count: from_stored(rows::int(row, 2)?),
        })
    })
}

/// The receipt of an accepted client message id.
pub(crate) fn find_sent(
    conn: &Connection,
    app: &AppId,
    sender: &UserId,
    client_msg_id: &str,
) -> Result<Option<SendReceipt>> {
    let mut stmt = conn.prepare_cached(FIND_SENT).map_err(map_sqlite)?;
    rows::first(
        &mut stmt,
        params![app.as_str(), sender.as_str(), client_msg_id],
        receipt,
    )
}

/// A receipt from [`FIND_SENT`]'s columns, as a retry gets it back.
fn receipt(row: &rusqlite::Row<'_>) -> Result<SendReceipt> {
    Ok(SendReceipt {
        server_msg_id: rows::msg_id(row, 0)?,
        version: from_stored(rows::int(row, 1)?),
        seq: 0,
        server_time: rows::int(row, 2)?,
        duplicate: true,
    })
}

/// The oldest outbox rows with their entries.
pub(crate) fn pending_index(conn: &Connection, limit: usize) -> Result<Vec<IndexTask>> {
    let mut stmt = conn.prepare_cached(PENDING_INDEX).map_err(map_sqlite)?;
    rows::all(&mut stmt, params![bound(limit as u64)], |row| {
        Ok(IndexTask {
            id: from_stored(rows::int(row, 0)?),
            app: AppId::from(rows::text(row, 1)?),
            entry: rows::inbox_entry(row, 2)?,
        })
    })
}

// ----------------------------------------------------------------- writes

/// [`InboxStore::mark_read`](bubble_core::ports::InboxStore::mark_read).
pub(crate) struct MarkRead {
    pub app: AppId,
    pub owner: UserId,
    pub conversation: Conversation,
    pub up_to: u64,
}

impl WriteOp for MarkRead {
    type Output = MarkedRead;

    fn apply(&self, conn: &Connection) -> Result<MarkedRead> {
        let kind = self.conversation.kind as u8 as i64;
        let args = params![
            self.app.as_str(),
            self.owner.as_str(),
            kind,
            self.conversation.id(),
            bound(self.up_to)
        ];
        let marked = conn
            .prepare_cached(MARK_READ)
            .and_then(|mut s| s.execute(args))
            .map_err(map_sqlite)?;
        let mut last = conn.prepare_cached(LAST_READ).map_err(map_sqlite)?;
        let last_read = rows::first(&mut last, args, |row| rows::inbox_entry(row, 0))?;
        Ok(MarkedRead {
            marked: marked as u64,
            last_read,
        })
    }
}

/// [`InboxStore::mark_message_read`](bubble_core::ports::InboxStore::mark_message_read).
pub(crate) struct MarkMessageRead {
    pub app: AppId,
    pub owner: UserId,
    pub id: MsgId,
}

impl WriteOp for MarkMessageRead {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        let changed = conn
            .prepare_cached(MARK_MESSAGE_READ)
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    self.owner.as_str(),
                    &self.id.0[..]
                ])
            })
            .map_err(map_sqlite)?;
        Ok(changed > 0)
    }
}

/// [`InboxStore::complete_index`](bubble_core::ports::InboxStore::complete_index).
pub(crate) struct CompleteIndex {
    pub ids: Vec<u64>,
}

impl WriteOp for CompleteIndex {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        // The indexer completes the oldest rows, whose ids are nearly always
        // one unbroken run: one range delete for each run of consecutive ids,
        // the lone ids one by one.
        let (ranges, singles) = id_runs(&self.ids);
        let mut range = conn
            .prepare_cached(DELETE_OUTBOX_RANGE)
            .map_err(map_sqlite)?;
        for (first, last) in ranges {
            range
                .execute(params![bound(first), bound(last)])
                .map_err(map_sqlite)?;
        }
        let mut one = conn.prepare_cached(DELETE_OUTBOX_ONE).map_err(map_sqlite)?;
        for id in singles {
            one.execute(params![bound(id)]).map_err(map_sqlite)?;
        }
        Ok(())
    }
}

/// Completed outbox rows from the first id to the last of a run (the
/// rowid's own B-tree: one seek, then neighbouring cells).
pub(crate) const DELETE_OUTBOX_RANGE: &str = "DELETE FROM index_outbox WHERE id BETWEEN ? AND ?";

/// One completed outbox row.
const DELETE_OUTBOX_ONE: &str = "DELETE FROM index_outbox WHERE id = ?";

/// Splits ids into runs of consecutive ids (`(first, last)`, two or more
/// ids each) and the ids that stand alone.
fn id_runs(ids: &[u64]) -> (Vec<(u64, u64)>, Vec<u64>) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges = Vec::new();
    let mut singles = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut last = first;
        while i + 1 < sorted.len() && sorted[i + 1] == last + 1 {
            i += 1;
            last += 1;
        }
        if last > first {
            ranges.push((first, last));
        } else {
            singles.push(first);
        }
        i += 1;
    }
    (ranges, singles)
}

#[cfg(test)]
mod tests {
    use super::id_runs;

    #[test]
    fn completed_ids_split_into_runs_and_lone_ids() {
        assert_eq!(id_runs(&[]), (vec![], vec![]));
        assert_eq!(id_runs(&[3, 1, 2, 2]), (vec![(1, 3)], vec![]));
        assert_eq!(
            id_runs(&[1, 2, 3, 5, 7, 8, 10]),
            (vec![(1, 3), (7, 8)], vec![5, 10])
        );
        assert_eq!(id_runs(&[u64::MAX]), (vec![], vec![u64::MAX]));
    }
}
