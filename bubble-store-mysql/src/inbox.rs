//! [`InboxStore`] on MySQL: appends go through the batch writers (or, with
//! `batch_max = 1`, straight into one transaction, see `append`); reads and
//! read marks are here.

use async_trait::async_trait;

use sqlx::mysql::MySqlConnection;

use bubble_core::ports::{AppendOutcome, Delivery, InboxStore, IndexTask, MarkedRead};
use bubble_core::{
    AppId, Conversation, ConversationKind, ConversationPage, ConversationSummary, Error,
    InboxEntry, InboxPage, MsgId, Result, SendReceipt, UnreadCount, UserId, page_before,
};

use crate::append::{Job, OWNER_CHUNK, decode_owners, find_sent_on, replay, write_batch};
use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::queries;
use crate::retry;
use crate::rows::{self, dynamic, inbox_columns, inbox_join};

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

/// Takes what a read mark flipped off its conversation's unread count in
/// the list: `marked`, `app`, `owner`, `conv_kind`, `conv_id`. Never below
/// 0 (`unread` is unsigned: a plain subtraction past 0 would be an error).
const TAKE_OFF_UNREAD: &str = "UPDATE conversations SET unread = unread - LEAST(unread, ?) \
     WHERE app = ? AND owner = ? AND conv_kind = ? AND conv_id = ?";

/// [`TAKE_OFF_UNREAD`] on `conn`, in the transaction that flipped the rows.
async fn take_off_unread(
    conn: &mut MySqlConnection,
    app: &AppId,
    owner: &UserId,
    conv_kind: u8,
    conv_id: &[u8],
    marked: u64,
) -> Result<()> {
    sqlx::query(TAKE_OFF_UNREAD)
        .bind(marked)
        .bind(b(app.as_str()))
        .bind(b(owner.as_str()))
        .bind(conv_kind)
        .bind(conv_id)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
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
        let before = page_before(before_version);
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

    async fn conversations(
        &self,
        app: &AppId,
        owner: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<ConversationPage> {
        let before = page_before(before);
        let found = self
            .read(|pool| async move {
                sqlx::query(queries::CONVERSATIONS)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(before)
                    .bind((limit as u64).saturating_add(1))
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        let (conversations, has_more) = rows::page(&found, limit, |row| {
            // The row is keyed by the conversation of the entry it shows.
            let last = rows::inbox_entry(row)?;
            Ok(ConversationSummary {
                conversation: last.conversation.clone(),
                activity: rows::get(row, "list_activity")?,
                unread: rows::get(row, "list_unread")?,
                read_up_to: rows::get(row, "list_read_up_to")?,
                peer_read_up_to: rows::get(row, "list_peer_read_up_to")?,
                last,
            })
        })?;
        Ok(ConversationPage {
            conversations,
            has_more,
        })
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
        let versions = &versions;
        // The flips and what they take off the list's unread count commit
        // together, so the two counts never disagree.
        let marked = if versions.is_empty() {
            0
        } else {
            self.write(|pool| async move {
                let mut tx = pool.begin().await.map_err(map_err)?;
                let mut marked = 0;
                for chunk in versions.chunks(OWNER_CHUNK) {
                    // `status = 0` again: of two concurrent marks, one flips
                    // each row.
                    let sql = format!(
                        "UPDATE inbox SET status = 1 WHERE app = ? AND owner = ? AND status = 0 \
                         AND version IN {}",
                        rows::row_placeholders(chunk.len())
                    );
                    let mut q = sqlx::query(dynamic(sql))
                        .bind(b(app.as_str()))
                        .bind(b(owner.as_str()));
                    for v in chunk {
                        q = q.bind(*v);
                    }
                    marked += q.execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                }
                if marked > 0 {
                    let id = b(conversation.id());
                    let kind = conversation.kind as u8;
                    take_off_unread(&mut tx, app, owner, kind, id, marked).await?;
                }
                tx.commit().await.map_err(commit_err)?;
                Ok(marked)
            })
            .await?
        };
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
        // The owner's unread entries of the message (only unread received
        // messages have status 0, so nothing else), with their conversations:
        // each one flipped is taken off its conversation's count in the list,
        // in the same transaction. Nearly always one entry, often none (read
        // before it was recalled): then no transaction is begun.
        let changed = self
            .write(|pool| async move {
                let unread: Vec<(u64, u8, Vec<u8>)> = sqlx::query_as(
                    "SELECT i.version, i.conv_kind, i.conv_id \
                     FROM inbox i JOIN messages m ON m.id = i.message_id \
                     WHERE m.app = ? AND m.server_msg_id = ? \
                     AND i.app = ? AND i.owner = ? AND i.status = 0",
                )
                .bind(b(app.as_str()))
                .bind(&id.0[..])
                .bind(b(app.as_str()))
                .bind(b(owner.as_str()))
                .fetch_all(&pool)
                .await
                .map_err(map_err)?;
                if unread.is_empty() {
                    return Ok(false);
                }
                let mut tx = pool.begin().await.map_err(map_err)?;
                let mut changed = false;
                for (version, conv_kind, conv_id) in unread {
                    // `status = 0` again: a concurrent mark may have flipped it.
                    let flipped = sqlx::query(
                        "UPDATE inbox SET status = 1 \
                         WHERE app = ? AND owner = ? AND version = ? AND status = 0",
                    )
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                    if flipped > 0 {
                        take_off_unread(&mut tx, app, owner, conv_kind, &conv_id, flipped).await?;
                        changed = true;
                    }
                }
                tx.commit().await.map_err(commit_err)?;
                Ok(changed)
            })
            .await?;
        Ok(changed)
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
