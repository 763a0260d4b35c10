//! The super-group log's SQL: append with per-group seq and dedup, ranges,
//! read seqs.

use bubble_core::ports::ChannelAppend;
use bubble_core::{AppId, ChannelEntry, ChannelPage, GroupId, MsgId, Result, SendReceipt, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::sqlite::SqlitePool;

use crate::error::{map_err, map_sqlite};
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

impl WriteOp for Append {
    type Output = ChannelAppend;

    fn apply(&self, conn: &Connection) -> Result<ChannelAppend> {
        let e = &self.entry;
        let keyed = !e.client_msg_id.is_empty();
        if keyed {
            let first = conn
                .prepare_cached(
                    "SELECT server_msg_id, seq, server_time FROM channel_sent \
                     WHERE app = ? AND group_id = ? AND sender = ? AND client_msg_id = ?",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            self.app.as_str(),
                            e.group.as_str(),
                            e.sender.as_str(),
                            e.client_msg_id.as_str()
                        ],
                        |row| {
                            Ok(SendReceipt {
                                server_msg_id: rows::row_msg_id(row, 0)?,
                                version: 0,
                                seq: rows::from_stored(row.get(1)?),
                                server_time: row.get(2)?,
                                duplicate: true,
                            })
                        },
                    )
                    .optional()
                })
                .map_err(map_sqlite)?;
            if let Some(receipt) = first {
                return Ok(ChannelAppend::Duplicate(receipt));
            }
        }
        // The writer is the only writer, and this runs in its transaction:
        // the newest seq plus one cannot be taken by anyone else.
        let seq: i64 = conn
            .prepare_cached(NEXT_SEQ)
            .and_then(|mut s| {
                s.query_row(params![self.app.as_str(), e.group.as_str()], |r| r.get(0))
            })
            .map_err(map_sqlite)?;
        conn.prepare_cached(
            "INSERT INTO channel_log (app, group_id, seq, kind, server_msg_id, sender, \
             sender_device, client_msg_id, client_seq, create_time, server_time, content_type, \
             content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .and_then(|mut s| {
            s.execute(params![
                self.app.as_str(),
                e.group.as_str(),
                seq,
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
            ])
        })
        .map_err(map_sqlite)?;
        if keyed {
            conn.prepare_cached(
                "INSERT INTO channel_sent (app, group_id, sender, client_msg_id, server_msg_id, \
                 seq, server_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    e.group.as_str(),
                    e.sender.as_str(),
                    e.client_msg_id.as_str(),
                    &e.server_msg_id.0[..],
                    seq,
                    e.server_time,
                ])
            })
            .map_err(map_sqlite)?;
        }
        let seq = rows::from_stored(seq);
        Ok(ChannelAppend::Appended {
            seq,
            prev_seq: seq - 1,
        })
    }
}

/// The seq a new entry of a group gets (`channel_log_range`'s last key, plus one).
pub(crate) const NEXT_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) + 1 FROM channel_log WHERE app = ? AND group_id = ?";

/// [`ChannelLog::set_read_seq`](bubble_core::ports::ChannelLog::set_read_seq).
pub(crate) struct SetReadSeq {
    pub app: AppId,
    pub group: GroupId,
    pub user: UserId,
    pub seq: u64,
}

impl WriteOp for SetReadSeq {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO channel_reads (app, group_id, user, read_seq) VALUES (?, ?, ?, ?) \
             ON CONFLICT (app, group_id, user) \
             DO UPDATE SET read_seq = max(read_seq, excluded.read_seq)",
        )
        .and_then(|mut s| {
            s.execute(params![
                self.app.as_str(),
                self.group.as_str(),
                self.user.as_str(),
                bound(self.seq)
            ])
        })
        .map_err(map_sqlite)?;
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
