//! `ChannelLog`: super-group logs, one row per message with a per-group seq.
//!
//! An append raises the group's counter in `channel_seqs` with
//! `LAST_INSERT_ID(seq + 1)` (one statement that takes the group's row lock
//! and returns the new seq), then inserts the row; the lock is held to
//! commit, so seqs of one group are consecutive on every node. The dedup key
//! is a unique index on the log itself; a duplicate rolls the counter back.
//! An edit also rewrites, in the same transaction, the content and meta of
//! the message row it names.

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnection, MySqlPool};

use bubble_core::ports::{ChannelAppend, ChannelLog, Expired};
use bubble_core::{
    AppId, ChannelEntry, ChannelPage, EntryKind, Error, GroupId, MsgId, Result, SendReceipt,
    UserId, page_before,
};

use crate::client::MysqlStore;
use crate::error::{commit_err, is_duplicate, map_err};
use crate::retry::{self, Replay};
use crate::rows::{self, b, channel_columns};

async fn find_sent(
    conn: &mut MySqlConnection,
    app: &AppId,
    group: &GroupId,
    sender: &UserId,
    client_msg_id: &str,
) -> Result<Option<SendReceipt>> {
    let row = sqlx::query(
        "SELECT server_msg_id, CAST(0 AS UNSIGNED) AS version, seq, server_time FROM channel_log \
         WHERE app = ? AND group_id = ? AND sender = ? AND client_msg_id = ?",
    )
    .bind(b(app.as_str()))
    .bind(b(group.as_str()))
    .bind(b(sender.as_str()))
    .bind(b(client_msg_id))
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    row.as_ref().map(rows::receipt).transpose()
}

impl MysqlStore {
    async fn channel_append_once(
        pool: MySqlPool,
        app: &AppId,
        e: &ChannelEntry,
    ) -> Result<ChannelAppend> {
        let mut tx = pool.begin().await.map_err(map_err)?;
        let raised = sqlx::query(
            "INSERT INTO channel_seqs (app, group_id, seq) VALUES (?, ?, 1) \
             ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(seq + 1)",
        )
        .bind(b(app.as_str()))
        .bind(b(e.group.as_str()))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // 1 row affected: the counter was created at 1; 2: it was raised and
        // LAST_INSERT_ID carries the new value.
        let seq = if raised.rows_affected() == 1 {
            1
        } else {
            raised.last_insert_id()
        };
        let inserted = sqlx::query(
            "INSERT INTO channel_log (app, group_id, seq, entry_kind, server_msg_id, sender, \
             sender_device, client_msg_id, client_seq, create_time, server_time, content_type, \
             content, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(b(app.as_str()))
        .bind(b(e.group.as_str()))
        .bind(seq)
        .bind(e.kind as u8)
        .bind(&e.server_msg_id.0[..])
        .bind(b(e.sender.as_str()))
        .bind(b(e.sender_device.as_str()))
        .bind((!e.client_msg_id.is_empty()).then(|| b(&e.client_msg_id)))
        .bind(e.client_seq)
        .bind(e.create_time)
        .bind(e.server_time)
        .bind(e.content.kind as u8)
        .bind(&e.content.body[..])
        .bind(rows::meta_value(&e.meta))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                if e.kind == EntryKind::Edit {
                    // The message it names shows the edit from now on
                    // (ix_channel_log_message; under READ COMMITTED only the
                    // matching rows stay locked).
                    sqlx::query(
                        "UPDATE channel_log SET content_type = ?, content = ?, meta = ? \
                         WHERE app = ? AND group_id = ? AND server_msg_id = ? AND entry_kind = 1",
                    )
                    .bind(e.content.kind as u8)
                    .bind(&e.content.body[..])
                    .bind(rows::meta_value(&e.meta))
                    .bind(b(app.as_str()))
                    .bind(b(e.group.as_str()))
                    .bind(&e.server_msg_id.0[..])
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(commit_err)?;
                Ok(ChannelAppend::Appended {
                    seq,
                    prev_seq: seq - 1,
                })
            }
            Err(err) if is_duplicate(&err) && !e.client_msg_id.is_empty() => {
                tx.rollback().await.map_err(map_err)?;
                let mut conn = pool.acquire().await.map_err(map_err)?;
                let receipt = find_sent(&mut conn, app, &e.group, &e.sender, &e.client_msg_id)
                    .await?
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "mysql: channel_log reported {:?} of {} taken but holds no row for it",
                            e.client_msg_id, e.sender
                        ))
                    })?;
                Ok(ChannelAppend::Duplicate(receipt))
            }
            Err(err) => Err(map_err(err)),
        }
    }
}

#[async_trait]
impl ChannelLog for MysqlStore {
    async fn append(&self, app: &AppId, entry: &ChannelEntry) -> Result<ChannelAppend> {
        // With a client message id, the log's unique key makes a second
        // attempt after an unknown COMMIT answer `Duplicate` if the first
        // was stored (see `append::replay`).
        let replay = if entry.client_msg_id.is_empty() {
            Replay::BeforeCommit
        } else {
            Replay::Always
        };
        retry::run(
            &self.inner.nodes,
            self.inner.config.deadlock_retries,
            replay,
            |pool| MysqlStore::channel_append_once(pool, app, entry),
        )
        .await
    }

    async fn range(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let found = self
            .read(|pool| async move {
                sqlx::query(concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channel_log WHERE app = ? AND group_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(b(app.as_str()))
        .bind(b(group.as_str()))
        .bind(after_seq)
        .bind((limit as u64).saturating_add(1))
        .fetch_all(&pool).await.map_err(map_err)
            })
            .await?;
        let (entries, has_more) = rows::page(&found, limit, rows::channel_entry)?;
        Ok(ChannelPage { entries, has_more })
    }

    async fn range_before(
        &self,
        app: &AppId,
        group: &GroupId,
        before_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let before = page_before(before_seq);
        let found = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT ",
                    channel_columns!(),
                    " FROM channel_log WHERE app = ? AND group_id = ? AND seq < ? \
                     ORDER BY seq DESC LIMIT ?"
                ))
                .bind(b(app.as_str()))
                .bind(b(group.as_str()))
                .bind(before)
                .bind((limit as u64).saturating_add(1))
                .fetch_all(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        let (entries, has_more) = rows::page(&found, limit, rows::channel_entry)?;
        Ok(ChannelPage { entries, has_more })
    }

    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64> {
        let seq: Option<u64> = self
            .read(|pool| async move {
                sqlx::query_scalar("SELECT seq FROM channel_seqs WHERE app = ? AND group_id = ?")
                    .bind(b(app.as_str()))
                    .bind(b(group.as_str()))
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>> {
        let row = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT ",
                    channel_columns!(),
                    " FROM channel_log WHERE app = ? AND group_id = ? AND server_msg_id = ? \
             AND entry_kind IN (1, 6) ORDER BY seq LIMIT 1"
                ))
                .bind(b(app.as_str()))
                .bind(b(group.as_str()))
                .bind(&id.0[..])
                .fetch_optional(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        row.as_ref().map(rows::channel_entry).transpose()
    }

    async fn count_messages_after(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
    ) -> Result<u64> {
        let n: i64 = self
            .read(|pool| async move {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM channel_log \
             WHERE app = ? AND group_id = ? AND seq > ? AND entry_kind IN (1, 6)",
                )
                .bind(b(app.as_str()))
                .bind(b(group.as_str()))
                .bind(after_seq)
                .fetch_one(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        Ok(n as u64)
    }

    async fn set_read_seq(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        seq: u64,
    ) -> Result<()> {
        self.write(|pool| async move {
            sqlx::query(
                "INSERT INTO channel_reads (app, group_id, user_id, read_seq) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE read_seq = GREATEST(read_seq, VALUES(read_seq))",
            )
            .bind(b(app.as_str()))
            .bind(b(group.as_str()))
            .bind(b(user.as_str()))
            .bind(seq)
            .execute(&pool)
            .await
            .map_err(map_err)
        })
        .await?;
        Ok(())
    }

    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64> {
        let seq: Option<u64> = self
            .read(|pool| async move {
                sqlx::query_scalar(
            "SELECT read_seq FROM channel_reads WHERE app = ? AND group_id = ? AND user_id = ?",
        )
        .bind(b(app.as_str()))
        .bind(b(group.as_str()))
        .bind(b(user.as_str()))
        .fetch_optional(&pool).await.map_err(map_err)
            })
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        self.expire_batch(
            crate::retention::Expiring::Channels,
            app,
            sent_before,
            limit,
        )
        .await
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        // The key is the log row's client_msg_id (ux_channel_log_client):
        // forgetting it sets it to NULL, which never collides.
        let done = self
            .write(|pool| async move {
                sqlx::query(
                    "UPDATE channel_log SET client_msg_id = NULL \
             WHERE server_time < ? AND client_msg_id IS NOT NULL ORDER BY server_time LIMIT ?",
                )
                .bind(sent_before)
                .bind(limit as u64)
                .execute(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        Ok(done.rows_affected())
    }
}
