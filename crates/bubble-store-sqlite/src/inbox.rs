//! The inbox's SQL: the batched append (versions, dedup, outbox) and the
//! reads and read marks.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bubble_core::ports::{AppendOutcome, Appended, IndexTask, MarkedRead};
use bubble_core::{
    AppId, Conversation, ConversationKind, Direction, InboxEntry, InboxPage, MsgId, Result,
    SendReceipt, UnreadCount, UserId,
};
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::error::map_err;
use crate::rows::{self, bound, inbox_columns, runs, stored};
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

/// `(app, sender, client_msg_id)`: the dedup key.
type SentKey = (AppId, UserId, String);

/// `(app, owner)`: one version space.
type OwnerKey = (AppId, UserId);

/// One inbox row to insert.
struct NewRow<'a> {
    app: &'a AppId,
    entry: &'a InboxEntry,
    version: i64,
}

/// Applies every append of a batch inside the writer's open transaction,
/// with a handful of multi-row statements instead of several per message.
///
/// Versions are assigned here from each owner's stored counter, in batch
/// order; a delivery whose `(app, sender, client_msg_id)` was accepted
/// before (in an earlier transaction, or earlier in this batch) writes
/// nothing and answers the first receipt.
pub(crate) async fn write_batch(
    conn: &mut SqliteConnection,
    reqs: &[AppendRequest],
) -> Result<Vec<AppendOutcome>> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let key_of = |r: &AppendRequest| -> Option<SentKey> {
        (!r.delivery.client_msg_id.is_empty()).then(|| {
            (
                r.app.clone(),
                r.delivery.sender.clone(),
                r.delivery.client_msg_id.clone(),
            )
        })
    };
    let keys: Vec<Option<SentKey>> = reqs.iter().map(key_of).collect();

    // 1. Receipts accepted by earlier transactions.
    let lookup: Vec<&SentKey> = keys.iter().flatten().collect();
    let mut receipts = load_sent(conn, &lookup).await?;

    // 2. Which deliveries write: the first of each key not accepted before.
    let mut seen = HashSet::new();
    let writes: Vec<bool> = keys
        .iter()
        .map(|k| match k {
            None => true,
            Some(k) => !receipts.contains_key(k) && seen.insert(k),
        })
        .collect();

    // 3. The current version of every owner about to get an entry.
    let mut owners: Vec<OwnerKey> = Vec::new();
    let mut owner_set = HashSet::new();
    for (r, _) in reqs.iter().zip(&writes).filter(|(_, w)| **w) {
        for e in &r.delivery.entries {
            let k = (r.app.clone(), e.owner.clone());
            if owner_set.insert(k.clone()) {
                owners.push(k);
            }
        }
    }
    let mut last = load_versions(conn, &owners).await?;
    // Owners seen for the first time start from 0.

    // 4. Versions, receipts and rows, in batch order.
    let mut outcomes = Vec::with_capacity(reqs.len());
    let mut rows = Vec::new();
    let mut outbox = Vec::new();
    let mut sent = Vec::new();
    for ((r, key), write) in reqs.iter().zip(keys).zip(writes) {
        if !write {
            let key = key.expect("only keyed deliveries are skipped");
            let first = receipts
                .get(&key)
                .copied()
                .expect("a skipped delivery has a receipt");
            outcomes.push(AppendOutcome::Duplicate(SendReceipt {
                duplicate: true,
                ..first
            }));
            continue;
        }
        let d = &r.delivery;
        let mut appended = Vec::with_capacity(d.entries.len());
        let mut sender_version = 0;
        for e in &d.entries {
            let counter = last.entry((r.app.clone(), e.owner.clone())).or_insert(0);
            let prev_version = *counter;
            let version = prev_version + 1;
            *counter = version;
            rows.push(NewRow {
                app: &r.app,
                entry: e,
                version: bound(version),
            });
            if d.index {
                outbox.push((&r.app, &e.owner, bound(version)));
            }
            if e.owner == d.sender && e.direction == Direction::Out {
                sender_version = version;
            }
            appended.push(Appended {
                version,
                prev_version,
            });
        }
        if let (Some(key), Some(first)) = (key, d.entries.first()) {
            let receipt = SendReceipt {
                server_msg_id: first.server_msg_id,
                version: sender_version,
                seq: 0,
                server_time: first.server_time,
                duplicate: false,
            };
            sent.push((r, receipt));
            receipts.insert(key, receipt);
        }
        outcomes.push(AppendOutcome::Appended(appended));
    }

    // 5. Write it all.
    insert_rows(conn, &rows).await?;
    insert_sent(conn, &sent).await?;
    insert_outbox(conn, &outbox).await?;
    Ok(outcomes)
}

async fn load_sent(
    conn: &mut SqliteConnection,
    keys: &[&SentKey],
) -> Result<HashMap<SentKey, SendReceipt>> {
    let mut out = HashMap::new();
    for (start, len) in runs(keys.len()) {
        let mut q = sqlx::query(rows::select_sent().get(len));
        for (app, sender, cmid) in &keys[start..start + len] {
            q = q
                .bind(app.as_str())
                .bind(sender.as_str())
                .bind(cmid.as_str());
        }
        for row in q.fetch_all(&mut *conn).await.map_err(map_err)? {
            let key = (
                AppId::from(rows::text(&row, 0)?),
                UserId::from(rows::text(&row, 1)?),
                rows::text(&row, 2)?,
            );
            let receipt = SendReceipt {
                server_msg_id: rows::msg_id(&row, 3)?,
                version: rows::from_stored(rows::int(&row, 4)?),
                seq: 0,
                server_time: rows::int(&row, 5)?,
                duplicate: false,
            };
            out.insert(key, receipt);
        }
    }
    Ok(out)
}

async fn load_versions(
    conn: &mut SqliteConnection,
    owners: &[OwnerKey],
) -> Result<HashMap<OwnerKey, u64>> {
    let mut out = HashMap::with_capacity(owners.len());
    for (start, len) in runs(owners.len()) {
        let mut q = sqlx::query(rows::select_versions().get(len));
        for (app, owner) in &owners[start..start + len] {
            q = q.bind(app.as_str()).bind(owner.as_str());
        }
        for row in q.fetch_all(&mut *conn).await.map_err(map_err)? {
            let key = (
                AppId::from(rows::text(&row, 0)?),
                UserId::from(rows::text(&row, 1)?),
            );
            out.insert(key, rows::opt_int(&row, 2)?.map_or(0, rows::from_stored));
        }
    }
    Ok(out)
}

async fn insert_rows(conn: &mut SqliteConnection, new: &[NewRow<'_>]) -> Result<()> {
    for (start, len) in runs(new.len()) {
        let mut q = sqlx::query(rows::insert_inbox().get(len));
        for r in &new[start..start + len] {
            let e = r.entry;
            q = q
                .bind(r.app.as_str())
                .bind(e.owner.as_str())
                .bind(r.version)
                .bind(e.conversation.id())
                .bind(e.conversation.kind as u8 as i64)
                .bind(e.direction.as_i8() as i64)
                .bind(e.kind as u8 as i64)
                .bind(&e.server_msg_id.0[..])
                .bind(e.sender.as_str())
                .bind(e.sender_device.as_str())
                .bind(e.client_msg_id.as_str())
                .bind(stored(e.client_seq))
                .bind(e.create_time)
                .bind(e.server_time)
                .bind(e.content.kind as u8 as i64)
                .bind(&e.content.body[..])
                .bind(stored(e.read_up_to));
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

async fn insert_sent(
    conn: &mut SqliteConnection,
    sent: &[(&AppendRequest, SendReceipt)],
) -> Result<()> {
    for (start, len) in runs(sent.len()) {
        let mut q = sqlx::query(rows::insert_sent().get(len));
        for (r, receipt) in &sent[start..start + len] {
            q = q
                .bind(r.app.as_str())
                .bind(r.delivery.sender.as_str())
                .bind(r.delivery.client_msg_id.as_str())
                .bind(&receipt.server_msg_id.0[..])
                .bind(bound(receipt.version))
                .bind(receipt.server_time);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

async fn insert_outbox(
    conn: &mut SqliteConnection,
    outbox: &[(&AppId, &UserId, i64)],
) -> Result<()> {
    for (start, len) in runs(outbox.len()) {
        let mut q = sqlx::query(rows::insert_outbox().get(len));
        for (app, owner, version) in &outbox[start..start + len] {
            q = q.bind(app.as_str()).bind(owner.as_str()).bind(*version);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ reads

/// Entries after `after_version`, at most `limit`.
pub(crate) async fn pull(
    pool: &SqlitePool,
    app: &AppId,
    owner: &UserId,
    after_version: u64,
    limit: usize,
) -> Result<InboxPage> {
    if limit == 0 {
        // Nothing asked for; say whether anything is there.
        let more = last_version(pool, app, owner).await? > after_version;
        return Ok(InboxPage {
            entries: Vec::new(),
            has_more: more,
        });
    }
    // One row more than asked tells whether more follow.
    let fetch = bound(limit as u64).saturating_add(1);
    let found = sqlx::query(PULL)
        .bind(app.as_str())
        .bind(owner.as_str())
        .bind(bound(after_version))
        .bind(fetch)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let (entries, has_more) = rows::page(&found, limit, |row| rows::inbox_entry(row, 0))?;
    Ok(InboxPage { entries, has_more })
}

/// The owner's newest version.
pub(crate) async fn last_version(pool: &SqlitePool, app: &AppId, owner: &UserId) -> Result<u64> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM inbox WHERE app = ? AND owner = ?")
            .bind(app.as_str())
            .bind(owner.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map_err)?;
    Ok(v.map_or(0, rows::from_stored))
}

/// The owner's message or notice with this id.
pub(crate) async fn get(
    pool: &SqlitePool,
    app: &AppId,
    owner: &UserId,
    id: &MsgId,
) -> Result<Option<InboxEntry>> {
    let row = sqlx::query(GET)
        .bind(app.as_str())
        .bind(owner.as_str())
        .bind(&id.0[..])
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.map(|r| rows::inbox_entry(&r, 0)).transpose()
}

/// Unread received messages per conversation, from the `inbox_unread`
/// partial index alone.
pub(crate) async fn unread(
    pool: &SqlitePool,
    app: &AppId,
    owner: &UserId,
) -> Result<Vec<UnreadCount>> {
    let found = sqlx::query(UNREAD)
        .bind(app.as_str())
        .bind(owner.as_str())
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found
        .iter()
        .map(|row| {
            let kind = ConversationKind::from_u8(rows::int(row, 0)? as u8)?;
            Ok(UnreadCount {
                conversation: Conversation::from_parts(kind, &rows::text(row, 1)?),
                count: rows::from_stored(rows::int(row, 2)?),
            })
        })
        .collect()
}

/// The receipt of an accepted client message id.
pub(crate) async fn find_sent(
    pool: &SqlitePool,
    app: &AppId,
    sender: &UserId,
    client_msg_id: &str,
) -> Result<Option<SendReceipt>> {
    let row = sqlx::query(
        "SELECT server_msg_id, version, server_time FROM inbox_sent \
         WHERE app = ? AND sender = ? AND client_msg_id = ?",
    )
    .bind(app.as_str())
    .bind(sender.as_str())
    .bind(client_msg_id)
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    row.map(|row| {
        Ok(SendReceipt {
            server_msg_id: rows::msg_id(&row, 0)?,
            version: rows::from_stored(rows::int(&row, 1)?),
            seq: 0,
            server_time: rows::int(&row, 2)?,
            duplicate: true,
        })
    })
    .transpose()
}

/// The oldest outbox rows with their entries.
pub(crate) async fn pending_index(pool: &SqlitePool, limit: usize) -> Result<Vec<IndexTask>> {
    let found = sqlx::query(PENDING_INDEX)
        .bind(bound(limit as u64))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found
        .iter()
        .map(|row| {
            Ok(IndexTask {
                id: rows::from_stored(rows::int(row, 0)?),
                app: AppId::from(rows::text(row, 1)?),
                entry: rows::inbox_entry(row, 2)?,
            })
        })
        .collect()
}

// ----------------------------------------------------------------- writes

/// [`InboxStore::mark_read`](bubble_core::ports::InboxStore::mark_read).
pub(crate) struct MarkRead {
    pub app: AppId,
    pub owner: UserId,
    pub conversation: Conversation,
    pub up_to: u64,
}

#[async_trait]
impl WriteOp for MarkRead {
    type Output = MarkedRead;

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<MarkedRead> {
        let kind = self.conversation.kind as u8 as i64;
        let marked = sqlx::query(MARK_READ)
            .bind(self.app.as_str())
            .bind(self.owner.as_str())
            .bind(kind)
            .bind(self.conversation.id())
            .bind(bound(self.up_to))
            .execute(&mut *conn)
            .await
            .map_err(map_err)?
            .rows_affected();
        let last = sqlx::query(LAST_READ)
            .bind(self.app.as_str())
            .bind(self.owner.as_str())
            .bind(kind)
            .bind(self.conversation.id())
            .bind(bound(self.up_to))
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        Ok(MarkedRead {
            marked,
            last_read: last.map(|r| rows::inbox_entry(&r, 0)).transpose()?,
        })
    }
}

/// [`InboxStore::mark_message_read`](bubble_core::ports::InboxStore::mark_message_read).
pub(crate) struct MarkMessageRead {
    pub app: AppId,
    pub owner: UserId,
    pub id: MsgId,
}

#[async_trait]
impl WriteOp for MarkMessageRead {
    type Output = bool;

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<bool> {
        let changed = sqlx::query(MARK_MESSAGE_READ)
            .bind(self.app.as_str())
            .bind(self.owner.as_str())
            .bind(&self.id.0[..])
            .execute(&mut *conn)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(changed > 0)
    }
}

/// [`InboxStore::complete_index`](bubble_core::ports::InboxStore::complete_index).
pub(crate) struct CompleteIndex {
    pub ids: Vec<u64>,
}

#[async_trait]
impl WriteOp for CompleteIndex {
    type Output = ();

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<()> {
        // The indexer completes the oldest rows, whose ids are nearly always
        // one unbroken run: one range delete for each run of consecutive ids,
        // the lone ids in lists.
        let (ranges, singles) = id_runs(&self.ids);
        for (first, last) in ranges {
            sqlx::query(DELETE_OUTBOX_RANGE)
                .bind(bound(first))
                .bind(bound(last))
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        for (start, len) in runs(singles.len()) {
            let mut q = sqlx::query(rows::delete_outbox().get(len));
            for id in &singles[start..start + len] {
                q = q.bind(bound(*id));
            }
            q.execute(&mut *conn).await.map_err(map_err)?;
        }
        Ok(())
    }
}

/// Completed outbox rows from the first id to the last of a run (the
/// rowid's own B-tree: one seek, then neighbouring cells).
pub(crate) const DELETE_OUTBOX_RANGE: &str = "DELETE FROM index_outbox WHERE id BETWEEN ? AND ?";

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
