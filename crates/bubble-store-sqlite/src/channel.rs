//! The super-group log's SQL: append with per-group seq and dedup, ranges,
//! read seqs.

use async_trait::async_trait;
use bubble_core::ports::ChannelAppend;
use bubble_core::{AppId, ChannelEntry, ChannelPage, GroupId, MsgId, Result, SendReceipt, UserId};
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::error::map_err;
use crate::rows::{self, bound, channel_columns, stored};
use crate::writer::WriteOp;

/// A page of the log: one range scan of `channel_log_range`.
pub(crate) const RANGE: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channel_log WHERE app = ? AND group_id = ? AND seq > ? ORDER BY seq LIMIT ?"
);

/// A message by id: `channel_log_by_msg` (insertion order = seq order).
pub(crate) const GET: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channel_log WHERE app = ? AND group_id = ? AND server_msg_id = ? \
     AND kind IN (1, 6) LIMIT 1"
);

/// [`ChannelLog::append`](bubble_core::ports::ChannelLog::append), applied by
/// the writer inside its batch transaction.
pub(crate) struct Append {
    pub app: AppId,
    pub entry: ChannelEntry,
}

#[async_trait]
impl WriteOp for Append {
    type Output = ChannelAppend;

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<ChannelAppend> {
        let e = &self.entry;
        let keyed = !e.client_msg_id.is_empty();
        if keyed {
            let first = sqlx::query(
                "SELECT server_msg_id, seq, server_time FROM channel_sent \
                 WHERE app = ? AND group_id = ? AND sender = ? AND client_msg_id = ?",
            )
            .bind(self.app.as_str())
            .bind(e.group.as_str())
            .bind(e.sender.as_str())
            .bind(e.client_msg_id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
            if let Some(row) = first {
                return Ok(ChannelAppend::Duplicate(SendReceipt {
                    server_msg_id: rows::msg_id(&row, 0)?,
                    version: 0,
                    seq: rows::from_stored(rows::int(&row, 1)?),
                    server_time: rows::int(&row, 2)?,
                    duplicate: true,
                }));
            }
        }
        // The writer is the only writer, and this runs in its transaction:
        // the newest seq plus one cannot be taken by anyone else.
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM channel_log WHERE app = ? AND group_id = ?",
        )
        .bind(self.app.as_str())
        .bind(e.group.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO channel_log (app, group_id, seq, kind, server_msg_id, sender, \
             sender_device, client_msg_id, client_seq, create_time, server_time, content_type, \
             content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.app.as_str())
        .bind(e.group.as_str())
        .bind(seq)
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
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        if keyed {
            sqlx::query(
                "INSERT INTO channel_sent (app, group_id, sender, client_msg_id, server_msg_id, \
                 seq, server_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(self.app.as_str())
            .bind(e.group.as_str())
            .bind(e.sender.as_str())
            .bind(e.client_msg_id.as_str())
            .bind(&e.server_msg_id.0[..])
            .bind(seq)
            .bind(e.server_time)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        }
        let seq = rows::from_stored(seq);
        Ok(ChannelAppend::Appended {
            seq,
            prev_seq: seq - 1,
        })
    }
}

/// [`ChannelLog::set_read_seq`](bubble_core::ports::ChannelLog::set_read_seq).
pub(crate) struct SetReadSeq {
    pub app: AppId,
    pub group: GroupId,
    pub user: UserId,
    pub seq: u64,
}

#[async_trait]
impl WriteOp for SetReadSeq {
    type Output = ();

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<()> {
        sqlx::query(
            "INSERT INTO channel_reads (app, group_id, user, read_seq) VALUES (?, ?, ?, ?) \
             ON CONFLICT (app, group_id, user) \
             DO UPDATE SET read_seq = max(read_seq, excluded.read_seq)",
        )
        .bind(self.app.as_str())
        .bind(self.group.as_str())
        .bind(self.user.as_str())
        .bind(bound(self.seq))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}

// ------------------------------------------------------------------ reads

/// Entries after `after_seq`, at most `limit`.
pub(crate) async fn range(
    pool: &SqlitePool,
    app: &AppId,
    group: &GroupId,
    after_seq: u64,
    limit: usize,
) -> Result<ChannelPage> {
    if limit == 0 {
        let more = last_seq(pool, app, group).await? > after_seq;
        return Ok(ChannelPage {
            entries: Vec::new(),
            has_more: more,
        });
    }
    let found = sqlx::query(RANGE)
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(bound(after_seq))
        .bind(bound(limit as u64).saturating_add(1))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let (entries, has_more) = rows::page(&found, limit, rows::channel_entry)?;
    Ok(ChannelPage { entries, has_more })
}

/// The group's newest seq.
pub(crate) async fn last_seq(pool: &SqlitePool, app: &AppId, group: &GroupId) -> Result<u64> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM channel_log WHERE app = ? AND group_id = ?")
            .bind(app.as_str())
            .bind(group.as_str())
            .fetch_optional(pool)
            .await
            .map_err(map_err)?;
    Ok(v.map_or(0, rows::from_stored))
}

/// The message or notice with this id.
pub(crate) async fn get(
    pool: &SqlitePool,
    app: &AppId,
    group: &GroupId,
    id: &MsgId,
) -> Result<Option<ChannelEntry>> {
    let row = sqlx::query(GET)
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(&id.0[..])
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.map(|r| rows::channel_entry(&r)).transpose()
}

/// Messages and notices after `after_seq`.
pub(crate) async fn count_messages_after(
    pool: &SqlitePool,
    app: &AppId,
    group: &GroupId,
    after_seq: u64,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM channel_log WHERE app = ? AND group_id = ? AND seq > ? \
         AND kind IN (1, 6)",
    )
    .bind(app.as_str())
    .bind(group.as_str())
    .bind(bound(after_seq))
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    Ok(rows::from_stored(n))
}

/// A member's read seq.
pub(crate) async fn read_seq(
    pool: &SqlitePool,
    app: &AppId,
    group: &GroupId,
    user: &UserId,
) -> Result<u64> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT read_seq FROM channel_reads WHERE app = ? AND group_id = ? AND user = ?",
    )
    .bind(app.as_str())
    .bind(group.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    Ok(v.map_or(0, rows::from_stored))
}
