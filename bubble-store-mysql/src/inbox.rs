//! [`InboxStore`] on MySQL: appends go through the batch writers (or, with
//! `batch_max = 1`, straight into one transaction, see `append`); reads and
//! read marks are here.

use async_trait::async_trait;

use bubble_core::ports::{AppendOutcome, Delivery, InboxStore, IndexTask, MarkedRead};
use bubble_core::{
    AppId, Conversation, ConversationKind, Error, InboxEntry, InboxPage, MsgId, Result,
    SendReceipt, UnreadCount, UserId,
};

use crate::append::{Job, OWNER_CHUNK, decode_owners, find_sent_on, replay, write_batch};
use crate::client::MysqlStore;
use crate::error::map_err;
use crate::queries;
use crate::retry;
use crate::rows::{self, dynamic, inbox_columns, inbox_join};

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

#[async_trait]
impl InboxStore for MysqlStore {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        if let Some(batcher) = &self.inner.batcher {
            return batcher.append(app, delivery).await;
        }
        let job = [Job { app, delivery }];
        let ids = self.inner.message_ids;
        let mut outcomes = retry::run(
            &self.inner.nodes,
            self.inner.config.deadlock_retries,
            replay(&job),
            |pool| {
                let job = &job;
                async move { write_batch(&pool, ids, job).await }
            },
        )
        .await?;
        Ok(outcomes.pop().expect("one outcome per job"))
    }

    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let found = self
            .read(|pool| async move {
                sqlx::query(queries::PULL)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(after_version)
                    .bind((limit as u64).saturating_add(1))
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        let (entries, has_more) = rows::page(&found, limit, rows::inbox_entry)?;
        Ok(InboxPage { entries, has_more })
    }

    async fn history(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        before_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let before = if before_version == 0 {
            u64::MAX
        } else {
            before_version
        };
        let found = self
            .read(|pool| async move {
                sqlx::query(queries::HISTORY)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(conversation.kind as u8)
                    .bind(b(conversation.id()))
                    .bind(before)
                    .bind((limit as u64).saturating_add(1))
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        let (entries, has_more) = rows::page(&found, limit, rows::inbox_entry)?;
        Ok(InboxPage { entries, has_more })
    }

    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
        let v: Option<u64> = self
            .read(|pool| async move {
                sqlx::query_scalar("SELECT version FROM inbox_versions WHERE app = ? AND owner = ?")
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        // The message rows of that id (ix_messages_server_msg), then the
        // owner's entry of each (ix_inbox_message).
        let row = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT ",
                    inbox_columns!(),
                    inbox_join!(),
                    "WHERE m.app = ? AND m.server_msg_id = ? AND m.entry_kind IN (1, 6) \
             AND i.app = ? AND i.owner = ? ORDER BY i.version LIMIT 1"
                ))
                .bind(b(app.as_str()))
                .bind(&id.0[..])
                .bind(b(app.as_str()))
                .bind(b(owner.as_str()))
                .fetch_optional(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        row.as_ref().map(rows::inbox_entry).transpose()
    }

    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        let versions: Vec<u64> = self
            .read(|pool| async move {
                sqlx::query_scalar(queries::UNREAD_VERSIONS)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(conversation.kind as u8)
                    .bind(b(conversation.id()))
                    .bind(up_to)
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        let mut marked = 0;
        for chunk in versions.chunks(OWNER_CHUNK) {
            // `status = 0` again: of two concurrent marks, one flips each row.
            let sql = format!(
                "UPDATE inbox SET status = 1 WHERE app = ? AND owner = ? AND status = 0 \
                 AND version IN {}",
                rows::row_placeholders(chunk.len())
            );
            let sql = &sql;
            marked += self
                .write(|pool| async move {
                    let mut q = sqlx::query(dynamic(sql.clone()))
                        .bind(b(app.as_str()))
                        .bind(b(owner.as_str()));
                    for v in chunk {
                        q = q.bind(*v);
                    }
                    Ok(q.execute(&pool).await.map_err(map_err)?.rows_affected())
                })
                .await?;
        }
        let last = self
            .read(|pool| async move {
                sqlx::query(queries::LAST_READ)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(conversation.kind as u8)
                    .bind(b(conversation.id()))
                    .bind(up_to)
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(MarkedRead {
            marked,
            last_read: last.as_ref().map(rows::inbox_entry).transpose()?,
        })
    }

    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        // Only unread received messages have status 0, so this cannot touch
        // anything else.
        let changed = self
            .write(|pool| async move {
                sqlx::query(
                    "UPDATE inbox i JOIN messages m ON m.id = i.message_id SET i.status = 1 \
             WHERE m.app = ? AND m.server_msg_id = ? \
             AND i.app = ? AND i.owner = ? AND i.status = 0",
                )
                .bind(b(app.as_str()))
                .bind(&id.0[..])
                .bind(b(app.as_str()))
                .bind(b(owner.as_str()))
                .execute(&pool)
                .await
                .map_err(map_err)
            })
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        let found = self
            .read(|pool| async move {
                sqlx::query(queries::UNREAD)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        found
            .iter()
            .map(|row| {
                let kind: u8 = rows::get(row, "conv_kind")?;
                let kind = ConversationKind::from_u8(kind).map_err(|e| {
                    Error::internal(format!("mysql: stored conv_kind: {}", e.message()))
                })?;
                let n: i64 = rows::get(row, "n")?;
                Ok(UnreadCount {
                    conversation: Conversation::from_parts(kind, &rows::text(row, "conv_id")?),
                    count: n as u64,
                })
            })
            .collect()
    }

    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        self.read(|pool| async move {
            let mut conn = pool.acquire().await.map_err(map_err)?;
            find_sent_on(&mut conn, app, sender, client_msg_id).await
        })
        .await
    }

    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        let found = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT o.id AS outbox_id, o.app AS outbox_app, o.owners, ",
                    inbox_columns!(),
                    " FROM inbox_index_outbox o \
             JOIN inbox i ON i.app = o.app AND i.owner = o.owner AND i.version = o.version \
             JOIN messages m ON m.id = i.message_id \
             ORDER BY o.id LIMIT ?",
                ))
                .bind(limit as u64)
                .fetch_all(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        found
            .iter()
            .map(|row| {
                // One outbox row per delivery, naming its first entry and
                // every owner; rows written before migration 3 name one
                // owner's entry and no list (NULL).
                let entry = rows::inbox_entry(row)?;
                let owners: Option<Vec<u8>> = rows::get(row, "owners")?;
                let owners = match owners {
                    Some(raw) => decode_owners(&raw)?,
                    None => vec![entry.owner.clone()],
                };
                Ok(IndexTask {
                    id: rows::get(row, "outbox_id")?,
                    app: AppId::from(rows::text(row, "outbox_app")?),
                    owners,
                    entry,
                })
            })
            .collect()
    }

    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        for chunk in ids.chunks(OWNER_CHUNK) {
            let sql = format!(
                "DELETE FROM inbox_index_outbox WHERE id IN {}",
                rows::row_placeholders(chunk.len())
            );
            let sql = &sql;
            self.write(|pool| async move {
                let mut q = sqlx::query(dynamic(sql.clone()));
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&pool).await.map_err(map_err)
            })
            .await?;
        }
        Ok(())
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        // The oldest keys first (ix_inbox_sent_time); one bounded delete.
        let done = self
            .write(|pool| async move {
                sqlx::query(
                    "DELETE FROM inbox_sent WHERE server_time < ? ORDER BY server_time LIMIT ?",
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
