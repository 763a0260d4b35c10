//! Retention ([`InboxStore::expire`](bubble_core::ports::InboxStore::expire),
//! [`ChannelLog::expire`](bubble_core::ports::ChannelLog::expire)): an app's
//! oldest messages deleted with every owner's entry of them, and its oldest
//! super-group log entries, one bounded batch per transaction. Versions
//! come from `inbox_versions` and seqs from `channel_seqs`, which nothing
//! here touches, so none is ever given again.

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnection;

use bubble_core::ports::Expired;
use bubble_core::{AppId, MsgId, Result};

use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::queries::{EXPIRE_CHANNEL_OLDEST, EXPIRE_OLDEST};
use crate::rows::{self, dynamic, row_placeholders};

/// What a row loses: the unread its deleted entries counted (`unread` is
/// unsigned: never below 0). A row whose shown entry went leaves the list
/// (`activity` 0, as a row with settings only) until its next message; a
/// mention that went stops marking it. Binds: unread, app, owner, highest
/// deleted version, app, owner, conv_kind, conv_id.
const SHRINK_ROW: &str = "UPDATE conversations SET unread = unread - LEAST(unread, ?), \
     activity = IF(EXISTS (SELECT 1 FROM inbox i \
         WHERE i.app = ? AND i.owner = ? AND i.version = conversations.last_version), \
         activity, 0), \
     mention_version = IF(mention_version <= ?, 0, mention_version) \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ?";

/// An outbox row names its delivery's first entry: one whose entry went
/// has nothing left to index.
const ORPHANED_OUTBOX: &str = "DELETE o FROM inbox_index_outbox o \
     LEFT JOIN inbox i ON i.app = o.app AND i.owner = o.owner AND i.version = o.version \
     WHERE o.app = ? AND i.version IS NULL";

/// Entries one batch deletes at most (then it finishes the message it is
/// on), as on SQLite: 200 messages to a group of 100 would be one
/// transaction of 20,000 rows.
const ENTRY_BUDGET: u64 = 2_000;

/// A conversation row, as `(owner, conv_kind, conv_id)`.
type RowKey = (Vec<u8>, u8, Vec<u8>);

/// Which log a batch deletes from.
#[derive(Clone, Copy)]
pub(crate) enum Expiring {
    /// Messages with every owner's entry ([`InboxStore::expire`](bubble_core::ports::InboxStore::expire)).
    Inboxes,
    /// Super-group log entries ([`ChannelLog::expire`](bubble_core::ports::ChannelLog::expire)).
    Channels,
}

impl MysqlStore {
    /// One batch of retention, in one transaction.
    pub(crate) async fn expire_batch(
        &self,
        what: Expiring,
        app: &AppId,
        sent_before: i64,
        limit: usize,
    ) -> Result<Expired> {
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            let expired = match what {
                Expiring::Inboxes => expire_in(&mut tx, app, sent_before, limit).await?,
                Expiring::Channels => expire_channels_in(&mut tx, app, sent_before, limit).await?,
            };
            tx.commit().await.map_err(commit_err)?;
            Ok(expired)
        })
        .await
    }
}

/// The app's oldest rows of `sql` (one of the `EXPIRE_*` queries), locked:
/// at most `limit`, and whether more are due.
async fn oldest_due(
    conn: &mut MySqlConnection,
    sql: &'static str,
    app: &AppId,
    sent_before: i64,
    limit: usize,
) -> Result<(Vec<sqlx::mysql::MySqlRow>, bool)> {
    let mut found = sqlx::query(sql)
        .bind(app.as_str().as_bytes())
        .bind(sent_before)
        .bind(limit as u64 + 1)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    let more = found.len() > limit;
    found.truncate(limit);
    Ok((found, more))
}

async fn expire_channels_in(
    conn: &mut MySqlConnection,
    app: &AppId,
    sent_before: i64,
    limit: usize,
) -> Result<Expired> {
    let a = app.as_str().as_bytes();
    let (found, more) = oldest_due(conn, EXPIRE_CHANNEL_OLDEST, app, sent_before, limit).await?;
    let mut by_group: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    let mut messages = Vec::new();
    for row in &found {
        by_group
            .entry(rows::get(row, "group_id")?)
            .or_default()
            .push(rows::get(row, "seq")?);
        messages.push(rows::msg_id(row, "server_msg_id")?);
    }
    for (group, seqs) in &by_group {
        let mut q = sqlx::query(dynamic(format!(
            "DELETE FROM channel_log WHERE app = ? AND group_id = ? AND seq IN {}",
            row_placeholders(seqs.len())
        )))
        .bind(a)
        .bind(&group[..]);
        for seq in seqs {
            q = q.bind(*seq);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    delete_reactions(conn, a, &messages).await?;
    Ok(Expired { messages, more })
}

/// The reactions of deleted messages, and their counters.
async fn delete_reactions(conn: &mut MySqlConnection, app: &[u8], ids: &[MsgId]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    for table in ["reactions", "reaction_heads"] {
        let mut q = sqlx::query(dynamic(format!(
            "DELETE FROM {table} WHERE app = ? AND server_msg_id IN {}",
            row_placeholders(ids.len())
        )))
        .bind(app);
        for id in ids {
            q = q.bind(&id.0[..]);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

/// `sql` with its `IN {}` made the placeholders of `messages`' row ids,
/// bound in order.
fn by_ids<'q>(
    sql: &str,
    messages: &[(u64, MsgId)],
) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    let text = sql.replacen("{}", &row_placeholders(messages.len()), 1);
    messages
        .iter()
        .fold(sqlx::query(dynamic(text)), |q, (id, _)| q.bind(*id))
}

async fn expire_in(
    conn: &mut MySqlConnection,
    app: &AppId,
    sent_before: i64,
    limit: usize,
) -> Result<Expired> {
    let a = app.as_str().as_bytes();
    let (found, mut more) = oldest_due(conn, EXPIRE_OLDEST, app, sent_before, limit).await?;
    let mut oldest = found
        .iter()
        .map(|row| {
            Ok((
                rows::get::<u64>(row, "id")?,
                rows::msg_id(row, "server_msg_id")?,
            ))
        })
        .collect::<Result<Vec<(u64, MsgId)>>>()?;
    if oldest.is_empty() {
        return Ok(Expired {
            messages: Vec::new(),
            more,
        });
    }

    // How many entries each has (from `ix_inbox_owners` alone): the batch
    // stops after about ENTRY_BUDGET of them, so a backlog of big-group
    // messages is deleted in short transactions.
    let counts: BTreeMap<u64, u64> = by_ids(
        "SELECT message_id, CAST(COUNT(*) AS UNSIGNED) AS n FROM inbox WHERE message_id IN {} \
         GROUP BY message_id",
        &oldest,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?
    .iter()
    .map(|row| Ok((rows::get(row, "message_id")?, rows::get(row, "n")?)))
    .collect::<Result<_>>()?;
    let mut entries_taken = 0;
    let mut taken = 0;
    for (id, _) in &oldest {
        if entries_taken >= ENTRY_BUDGET {
            more = true;
            break;
        }
        entries_taken += counts.get(id).copied().unwrap_or(0);
        taken += 1;
    }
    oldest.truncate(taken);

    // Every owner's entry of them (`ix_inbox_owners`), locked: a read mark
    // flipping one of them waits, so what it counts is counted once.
    let entries = by_ids(
        "SELECT owner, version, conv_kind, conv_id, direct, status FROM inbox \
         WHERE message_id IN {} FOR UPDATE",
        &oldest,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    // Each row's deleted unread entries and highest deleted version.
    let mut hit: BTreeMap<RowKey, (u64, u64)> = BTreeMap::new();
    for row in &entries {
        let unread = rows::get::<i8>(row, "direct")? == -1 && rows::get::<i8>(row, "status")? == 0;
        let version: u64 = rows::get(row, "version")?;
        let key = (
            rows::get::<Vec<u8>>(row, "owner")?,
            rows::get::<u8>(row, "conv_kind")?,
            rows::get::<Vec<u8>>(row, "conv_id")?,
        );
        let h = hit.entry(key).or_default();
        h.0 += u64::from(unread);
        h.1 = h.1.max(version);
    }

    for sql in [
        "DELETE FROM inbox WHERE message_id IN {}",
        "DELETE FROM messages WHERE id IN {}",
    ] {
        by_ids(sql, &oldest)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    let msgs: Vec<MsgId> = oldest.iter().map(|(_, msg)| *msg).collect();
    delete_reactions(conn, a, &msgs).await?;
    sqlx::query(ORPHANED_OUTBOX)
        .bind(a)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    for ((owner, kind, conv_id), (unread, top)) in &hit {
        sqlx::query(SHRINK_ROW)
            .bind(*unread)
            .bind(a)
            .bind(&owner[..])
            .bind(*top)
            .bind(a)
            .bind(&owner[..])
            .bind(*kind)
            .bind(&conv_id[..])
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(Expired {
        messages: oldest.into_iter().map(|(_, msg)| msg).collect(),
        more,
    })
}
