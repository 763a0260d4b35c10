//! What the search index is fed from: the outbox's oldest tasks (each
//! message with one owner's entry and every owner's name), their
//! completion, and the scan of every message that a rebuild reads.

use bubble_core::ports::{IndexTask, StoredMessage};
use bubble_core::{AppId, MsgId, Result, UserId};
use rusqlite::{Connection, params};

use crate::error::map_sqlite;
use crate::names::name_of;
use crate::rows::{self, bound, from_stored, inbox_columns};
use crate::writer::WriteOp;

/// The oldest outbox rows, each with its message and one owner's entry of
/// it (the lowest-numbered owner: one seek of `inbox_by_msg`), in outbox
/// order; [`TASK_OWNERS`] then names every owner. Rows whose message has no
/// entry (none are written so; a damaged file could have them) are passed
/// over, so they can never fill a page and hide the work behind them.
///
/// Until migration 10 one statement returned the message's columns again
/// with every owner's entry: a group of 100 decoded (and, with numbered
/// names, looked up) a hundred full rows to learn a hundred names.
pub(crate) const PENDING_INDEX: &str = concat!(
    "SELECT o.id, m.id, m.app, ",
    inbox_columns!(),
    " FROM (SELECT id, message FROM index_outbox b \
     WHERE EXISTS (SELECT 1 FROM inbox WHERE message = b.message) ORDER BY id LIMIT ?) o \
     CROSS JOIN messages m CROSS JOIN inbox i INDEXED BY inbox_by_msg \
     WHERE m.id = o.message AND i.message = o.message \
     AND i.owner = (SELECT MIN(owner) FROM inbox WHERE message = o.message) ORDER BY o.id"
);

/// The names of every owner holding an entry of a message row (covering
/// `inbox_by_msg`, then each name by rowid).
pub(crate) const TASK_OWNERS: &str = concat!(
    "SELECT ",
    name_of!("owner"),
    " FROM inbox WHERE message = ?1"
);

/// The oldest outbox rows, one task each: its message as one owner's
/// entry, and every owner holding an entry of it.
pub(crate) fn pending_index(conn: &Connection, limit: usize) -> Result<Vec<IndexTask>> {
    let mut stmt = conn.prepare_cached(PENDING_INDEX).map_err(map_sqlite)?;
    let mut owners = conn.prepare_cached(TASK_OWNERS).map_err(map_sqlite)?;
    let mut found = stmt
        .query(params![bound(limit as u64)])
        .map_err(map_sqlite)?;
    let mut tasks: Vec<IndexTask> = Vec::new();
    while let Some(row) = found.next().map_err(map_sqlite)? {
        let id = from_stored(rows::int(row, 0)?);
        // An owner holding two entries of one message row (a note to
        // self: sent and received) comes back twice; the task is one.
        if tasks.last().is_some_and(|t| t.id == id) {
            continue;
        }
        let message: i64 = rows::get(row, 1)?;
        let entry = rows::inbox_entry(row, 3)?;
        let mut named: Vec<UserId> = rows::all(&mut owners, params![message], |r| {
            Ok(UserId::from(rows::text(r, 0)?))
        })?;
        named.sort_unstable();
        named.dedup();
        tasks.push(IndexTask {
            id,
            app: AppId::from(rows::text(row, 2)?),
            owners: named,
            entry,
        });
    }
    Ok(tasks)
}

/// The next message ids of an app after a cursor, in id order
/// (`messages_by_id`; an empty blob sorts before every id).
const SCAN_IDS: &str = "SELECT DISTINCT server_msg_id FROM messages INDEXED BY messages_by_id \
     WHERE app = ?1 AND server_msg_id > ?2 AND kind IN (1, 6) ORDER BY server_msg_id LIMIT ?3";

/// Every owner's entry of one message, by owner.
const SCAN_ENTRIES: &str = concat!(
    "SELECT ",
    inbox_columns!(),
    " FROM messages m INDEXED BY messages_by_id CROSS JOIN inbox i \
     WHERE m.app = ?1 AND m.server_msg_id = ?2 AND m.kind IN (1, 6) AND i.message = m.id \
     ORDER BY 1"
);

/// Whether the message was recalled (its recall rows share its id).
const SCAN_RECALLED: &str = "SELECT 1 FROM messages INDEXED BY messages_by_id \
     WHERE app = ?1 AND server_msg_id = ?2 AND kind = 2 LIMIT 1";

/// The owners who deleted the message for themselves.
const SCAN_DELETED: &str = concat!(
    "SELECT ",
    name_of!("i.owner"),
    " FROM messages m INDEXED BY messages_by_id \
     CROSS JOIN inbox i WHERE m.app = ?1 AND m.server_msg_id = ?2 AND m.kind = 3 \
     AND i.message = m.id"
);

/// [`InboxStore::scan_messages`]: a page of ids from `messages_by_id`, then
/// for each its owners' entries, its recall and its deletes, all by that
/// index and `inbox_by_msg`: a rebuild reads each message a few times, and
/// never the whole table at once.
pub(crate) fn scan_messages(
    conn: &Connection,
    app: &AppId,
    after: Option<MsgId>,
    limit: usize,
) -> Result<Vec<StoredMessage>> {
    let mut cursor: Vec<u8> = after.map(|id| id.0.to_vec()).unwrap_or_default();
    let mut ids = conn.prepare_cached(SCAN_IDS).map_err(map_sqlite)?;
    let mut entries = conn.prepare_cached(SCAN_ENTRIES).map_err(map_sqlite)?;
    let mut recalled = conn.prepare_cached(SCAN_RECALLED).map_err(map_sqlite)?;
    let mut deleted = conn.prepare_cached(SCAN_DELETED).map_err(map_sqlite)?;
    let mut out = Vec::with_capacity(limit.min(1024));
    // Read on past ids that list nothing (recalled, or deleted by every
    // owner) until the page has some or the ids run out: an empty page
    // means the end to a caller, so a run of gone messages must not
    // stop a rebuild.
    while out.len() < limit {
        let want = limit - out.len();
        let page = rows::all(
            &mut ids,
            params![app.as_str(), &cursor[..], bound(want as u64)],
            |row| rows::msg_id(row, 0),
        )?;
        let Some(last) = page.last() else {
            break;
        };
        cursor = last.0.to_vec();
        let exhausted = page.len() < want;
        scan_page(
            app,
            page,
            &mut entries,
            &mut recalled,
            &mut deleted,
            &mut out,
        )?;
        if exhausted {
            break;
        }
    }
    Ok(out)
}

/// Lists the messages of `page` (ids in order) that some owner still
/// holds into `out`.
fn scan_page(
    app: &AppId,
    page: Vec<MsgId>,
    entries: &mut rusqlite::CachedStatement<'_>,
    recalled: &mut rusqlite::CachedStatement<'_>,
    deleted: &mut rusqlite::CachedStatement<'_>,
    out: &mut Vec<StoredMessage>,
) -> Result<()> {
    for id in page {
        let args = params![app.as_str(), &id.0[..]];
        if rows::first(recalled, args, |_| Ok(()))?.is_some() {
            continue;
        }
        let gone: Vec<String> = rows::all(deleted, args, |row| rows::text(row, 0))?;
        let held = rows::all(entries, args, |row| rows::inbox_entry(row, 0))?;
        let mut owners: Vec<UserId> = Vec::with_capacity(held.len());
        let mut entry = None;
        for e in held {
            if gone.iter().any(|g| g == e.owner.as_str()) || owners.contains(&e.owner) {
                continue;
            }
            owners.push(e.owner.clone());
            entry.get_or_insert(e);
        }
        if let Some(entry) = entry {
            out.push(StoredMessage { entry, owners });
        }
    }
    Ok(())
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
