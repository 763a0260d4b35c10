//! [`InboxStore`] on MySQL: appends go through the batch writers (or, with
//! `batch_max = 1`, straight into one transaction, see `append`); reads,
//! read marks, settings, group read state and reactions are here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;

use sqlx::mysql::MySqlConnection;

use bubble_core::ports::{
    AppendOutcome, Delivery, Expired, InboxStore, IndexTask, MarkedRead, MessageReaders,
    ReactionLimits, StoredMessage,
};
use bubble_core::{
    AppId, Conversation, ConversationKind, ConversationPage, ConversationSettings,
    ConversationSummary, EntryKind, Error, ErrorKind, InboxEntry, InboxPage, MsgId, ReactionCount,
    Result, SendReceipt, UnreadCount, UserId, page_before,
};

use crate::append::{Job, OWNER_CHUNK, decode_owners, find_sent_on, replay, write_batch};
use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::point_reads::SettingsKey;
use crate::queries;
use crate::retry;
use crate::rows::{self, Sql, b, dynamic, inbox_columns};

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

/// One row of the conversation list ([`queries::CONVERSATIONS`]): the
/// list's columns and the entry it shows, whose conversation keys the row.
pub(crate) fn conversation_from(row: &impl rows::Columns) -> Result<ConversationSummary> {
    let last = rows::inbox_entry(row)?;
    Ok(ConversationSummary {
        conversation: last.conversation.clone(),
        activity: rows::get(row, "list_activity")?,
        unread: rows::get(row, "list_unread")?,
        read_up_to: rows::get(row, "list_read_up_to")?,
        peer_read_up_to: rows::get(row, "list_peer_read_up_to")?,
        settings: ConversationSettings::from_flags(
            rows::get(row, "list_flags")?,
            rows::text_or_empty(row, "list_draft")?,
        ),
        mentioned: rows::get(row, "list_mentioned")?,
        last,
    })
}

#[async_trait]
impl InboxStore for MysqlStore {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        if let Some(batcher) = &self.inner.batcher {
            return batcher.append(app, delivery).await;
        }
        let job = [Job { app, delivery }];
        let ids = self.inner.message_ids;
        let galera = self.inner.galera;
        let mut outcomes = retry::run(
            &self.inner.nodes,
            self.inner.config.deadlock_retries,
            replay(&job),
            |pool| {
                let job = &job;
                async move { write_batch(&pool, ids, galera, job).await }
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
        let (conversations, has_more) = rows::page(&found, limit, conversation_from)?;
        Ok(ConversationPage {
            conversations,
            has_more,
        })
    }

    async fn settings(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        let key = SettingsKey::new(app, owner, conversation);
        Ok(self
            .inner
            .settings_reads
            .get(key)
            .await?
            .unwrap_or_default())
    }

    async fn blocked(&self, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
        let found: Vec<Vec<u8>> = self
            .read(|pool| async move {
                sqlx::query_scalar(queries::BLOCKED)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .fetch_all(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?;
        found
            .into_iter()
            .map(|raw| {
                String::from_utf8(raw).map(UserId::from).map_err(|_| {
                    Error::internal("mysql: column conv_id holds bytes that are not UTF-8")
                })
            })
            .collect()
    }

    async fn readers(
        &self,
        app: &AppId,
        conversation: &Conversation,
        id: &MsgId,
        members: &[UserId],
    ) -> Result<MessageReaders> {
        // Per member, the first copy (lowest version) as the in-memory
        // store takes it; a member holds one nearly always.
        let mut copies: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for chunk in members.chunks(OWNER_CHUNK) {
            let sql = queries::readers(chunk.len());
            let sql = &sql;
            let found: Vec<(Vec<u8>, u64, u64)> = self
                .read(|pool| async move {
                    let mut q = sqlx::query_as(dynamic(sql.clone()))
                        .bind(b(app.as_str()))
                        .bind(&id.0[..])
                        .bind(conversation.kind as u8)
                        .bind(b(conversation.id()));
                    for m in chunk {
                        q = q.bind(b(m.as_str()));
                    }
                    q.fetch_all(&pool).await.map_err(map_err)
                })
                .await?;
            for (owner, version, read_up_to) in found {
                let owner = String::from_utf8(owner).map_err(|_| {
                    Error::internal("mysql: column owner holds bytes that are not UTF-8")
                })?;
                let copy = copies.entry(owner).or_insert((version, read_up_to));
                if version < copy.0 {
                    *copy = (version, read_up_to);
                }
            }
        }
        Ok(MessageReaders {
            received: copies.len() as u64,
            readers: copies
                .into_iter()
                .filter(|(_, (version, read_up_to))| read_up_to >= version)
                .map(|(owner, _)| UserId::from(owner))
                .collect(),
        })
    }

    async fn react(
        &self,
        app: &AppId,
        id: &MsgId,
        user: &UserId,
        emoji: &str,
        add: bool,
        limits: ReactionLimits,
    ) -> Result<bool> {
        let (a, m, e, u) = (b(app.as_str()), &id.0[..], b(emoji), b(user.as_str()));
        if !add {
            // A remove only lowers the counts an add checks: no lock needed.
            let done = self
                .write(|pool| async move {
                    sqlx::query(
                        "DELETE FROM reactions \
                         WHERE app = ? AND server_msg_id = ? AND emoji = ? AND user_id = ?",
                    )
                    .bind(a)
                    .bind(m)
                    .bind(e)
                    .bind(u)
                    .execute(&pool)
                    .await
                    .map_err(map_err)
                })
                .await?;
            return Ok(done.rows_affected() > 0);
        }
        let galera = self.inner.galera;
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            // The message's head row lock, held to commit: adds on one
            // message check and insert one after another, on every node.
            // READ COMMITTED takes no gap locks, so without it two first
            // adds of different emoji could both see room for one more.
            sqlx::query(
                "INSERT INTO reaction_heads (app, server_msg_id, adds) VALUES (?, ?, 1) \
                 ON DUPLICATE KEY UPDATE adds = adds + 1",
            )
            .bind(a)
            .bind(m)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            type Caps = (Option<i64>, Option<bool>, Option<i64>, Option<bool>);
            let caps: Caps = sqlx::query_as(queries::REACTION_CAPS)
                .bind(a)
                .bind(m)
                .bind(a)
                .bind(m)
                .bind(e)
                .bind(a)
                .bind(m)
                .bind(u)
                .bind(a)
                .bind(m)
                .bind(e)
                .bind(u)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
            // A subquery a Galera node cut short, aborting the transaction,
            // reads as NULL (see `galera`): that is a conflict, retried.
            let (Some(emojis), Some(present), Some(mine), Some(already)) = caps else {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "mysql: the Galera node aborted the reaction's transaction while it read \
                     the caps (retried)",
                ));
            };
            if already {
                // No change: the raise of `adds` is taken back too.
                tx.rollback().await.map_err(map_err)?;
                return Ok(false);
            }
            let distinct = emojis as usize + usize::from(!present);
            if let Err(refused) = limits.check(distinct, mine as usize + 1) {
                tx.rollback().await.map_err(map_err)?;
                return Err(refused);
            }
            // The caps were read under the head row's lock: on Galera,
            // insert only while that lock is held (see `galera`).
            let mut insert =
                Sql::new("INSERT INTO reactions (app, server_msg_id, emoji, user_id) VALUES ");
            insert.row(0);
            insert.bytes(a).sep().bytes(m).sep().bytes(e).sep().bytes(u);
            insert.end_row();
            sqlx::raw_sql(dynamic(galera.guarded(insert.into_string())))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(commit_err)?;
            if galera.0 {
                // A node can abort the transaction in its last moment with
                // no error, and the COMMIT then commits nothing: the row
                // tells (see `galera`).
                let stored: Option<(Vec<u8>,)> = sqlx::query_as(
                    "SELECT emoji FROM reactions \
                     WHERE app = ? AND server_msg_id = ? AND emoji = ? AND user_id = ?",
                )
                .bind(a)
                .bind(m)
                .bind(e)
                .bind(u)
                .fetch_optional(&pool)
                .await
                .map_err(map_err)?;
                if stored.is_none() {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        "mysql: the Galera node aborted the reaction's transaction as it \
                         committed; nothing was written (retried)",
                    ));
                }
            }
            Ok(true)
        })
        .await
    }

    async fn reactions(
        &self,
        app: &AppId,
        ids: &[MsgId],
        viewer: &UserId,
    ) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
        let mut counts: HashMap<MsgId, Vec<ReactionCount>> = HashMap::new();
        // Each id asked once, however often it is named.
        let unique: Vec<MsgId> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in unique.chunks(OWNER_CHUNK) {
            let sql = queries::reactions(chunk.len());
            let sql = &sql;
            let found = self
                .read(|pool| async move {
                    let mut q = sqlx::query(dynamic(sql.clone()))
                        .bind(b(viewer.as_str()))
                        .bind(b(app.as_str()));
                    for id in chunk {
                        q = q.bind(&id.0[..]);
                    }
                    q.fetch_all(&pool).await.map_err(map_err)
                })
                .await?;
            // Rows come per message in emoji order.
            for row in &found {
                let n: i64 = rows::get(row, "n")?;
                counts
                    .entry(rows::msg_id(row, "server_msg_id")?)
                    .or_default()
                    .push(ReactionCount {
                        emoji: rows::text(row, "emoji")?,
                        count: n as u64,
                        mine: rows::get(row, "mine")?,
                    });
            }
        }
        // In the order asked, as the in-memory store answers.
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, counts.get(id)?.clone())))
            .collect())
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
        let row = self
            .read(|pool| async move {
                sqlx::query(queries::GET)
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
        let kind = conversation.kind as u8;
        let id = b(conversation.id());
        // The list row is locked first (appends of the conversation update
        // it too), then the unread entries from its floor to the mark are
        // flipped, and what they take off the count and the raised floor
        // commit with them, so the two counts never disagree.
        let (marked, last_received) = self
            .write(|pool| async move {
                let mut tx = pool.begin().await.map_err(map_err)?;
                let row: Option<(u64, u64)> = sqlx::query_as(queries::LOCK_CONVERSATION)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(kind)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                // No row: nothing of the conversation was ever received.
                let Some((floor, last_received)) = row else {
                    return Ok((0, 0));
                };
                let versions: Vec<u64> = if floor > up_to {
                    Vec::new()
                } else {
                    sqlx::query_scalar(queries::UNREAD_VERSIONS)
                        .bind(b(app.as_str()))
                        .bind(b(owner.as_str()))
                        .bind(kind)
                        .bind(id)
                        .bind(floor)
                        .bind(up_to)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(map_err)?
                };
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
                if marked > 0 || floor <= up_to {
                    sqlx::query(queries::MARKED_ON_CONVERSATION)
                        .bind(marked)
                        .bind(up_to.saturating_add(1))
                        .bind(b(app.as_str()))
                        .bind(b(owner.as_str()))
                        .bind(kind)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(commit_err)?;
                Ok((marked, last_received))
            })
            .await?;
        let last = if last_received == 0 {
            None
        } else {
            self.read(|pool| async move {
                sqlx::query(queries::LAST_READ)
                    .bind(b(app.as_str()))
                    .bind(b(owner.as_str()))
                    .bind(kind)
                    .bind(id)
                    .bind(up_to.min(last_received))
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?
        };
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
                let unread: Vec<(u64, u8, Vec<u8>)> = sqlx::query_as(queries::UNREAD_OF_MESSAGE)
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
                let kind = rows::code(row, "conv_kind", ConversationKind::from_u8)?;
                let n: u64 = rows::get(row, "n")?;
                let mentioned: bool = rows::get(row, "mentioned")?;
                Ok(UnreadCount {
                    conversation: Conversation::from_parts(kind, &rows::text(row, "conv_id")?),
                    count: n,
                    mentioned,
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
        self.delete_ids("inbox_index_outbox", ids).await
    }

    /// Pages of message ids ([`queries::SCAN_IDS`]), each page's owners,
    /// recalls and deletes ([`queries::SCAN_OWNERS`]), then one owner's
    /// entry per listed message ([`queries::scan_entries`]): three indexed
    /// reads per page, none of them a scan of the inbox or the messages.
    /// A page whose ids were all recalled or deleted reads on past them, so
    /// only the end of the app's messages gives an empty answer (a rebuild
    /// stops at the first).
    async fn scan_messages(
        &self,
        app: &AppId,
        after: Option<MsgId>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let mut out: Vec<StoredMessage> = Vec::new();
        let mut cursor: Vec<u8> = after.map(|id| id.0.to_vec()).unwrap_or_default();
        while out.len() < limit {
            let want = limit - out.len();
            let ids: Vec<Vec<u8>> = {
                let cursor = &cursor;
                self.read(|pool| async move {
                    sqlx::query_scalar(queries::SCAN_IDS)
                        .bind(b(app.as_str()))
                        .bind(&cursor[..])
                        .bind(want as u64)
                        .fetch_all(&pool)
                        .await
                        .map_err(map_err)
                })
                .await?
            };
            let Some(last) = ids.last().cloned() else {
                break;
            };
            // Every row of every id in (cursor, last]: at most `want` ids,
            // each listed whole even where the first step saw only some of
            // its rows.
            let found: Vec<(Vec<u8>, u8, Vec<u8>, u64)> = {
                let (cursor, last) = (&cursor, &last);
                self.read(|pool| async move {
                    sqlx::query_as(queries::SCAN_OWNERS)
                        .bind(b(app.as_str()))
                        .bind(&cursor[..])
                        .bind(&last[..])
                        .fetch_all(&pool)
                        .await
                        .map_err(map_err)
                })
                .await?
            };
            let page = scan_page(found)?;
            let mut entries = scan_entries(self, app, &page).await?;
            for (id, owners, chosen) in page {
                // The store never deletes inbox rows; should a chosen one
                // go between the reads, its message is left out.
                let Some(entry) = entries.remove(&chosen) else {
                    continue;
                };
                debug_assert_eq!(entry.server_msg_id, id);
                out.push(StoredMessage { entry, owners });
            }
            if ids.len() < want {
                // The first step ran out of rows: nothing after `last`.
                break;
            }
            cursor = last;
        }
        Ok(out)
    }

    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        self.expire_batch(crate::retention::Expiring::Inboxes, app, sent_before, limit)
            .await
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

/// One message a scan lists: its id, its remaining owners (in user id
/// order) and the (owner, version) of the entry that stands for it: the
/// first owner's first copy.
type Listed = (MsgId, Vec<UserId>, (Vec<u8>, u64));

/// What [`queries::SCAN_OWNERS`] found, grouped per message in id order:
/// messages with a recall row, and those every owner deleted, left out;
/// each owner once, without those who deleted it for themselves.
fn scan_page(found: Vec<(Vec<u8>, u8, Vec<u8>, u64)>) -> Result<Vec<Listed>> {
    #[derive(Default)]
    struct Seen {
        recalled: bool,
        deleted: BTreeSet<Vec<u8>>,
        /// Owner (bytes sort as the ids do) to its lowest version.
        held: BTreeMap<Vec<u8>, u64>,
    }
    let mut per: BTreeMap<Vec<u8>, Seen> = BTreeMap::new();
    for (id, kind, owner, version) in found {
        let seen = per.entry(id).or_default();
        match EntryKind::from_u8(kind) {
            Ok(EntryKind::Message | EntryKind::SystemNotice) => {
                let v = seen.held.entry(owner).or_insert(version);
                *v = (*v).min(version);
            }
            Ok(EntryKind::Recall) => seen.recalled = true,
            Ok(EntryKind::Delete) => {
                seen.deleted.insert(owner);
            }
            _ => {}
        }
    }
    let mut page = Vec::with_capacity(per.len());
    for (id, seen) in per {
        if seen.recalled {
            continue;
        }
        let mut chosen = None;
        let mut owners = Vec::with_capacity(seen.held.len());
        for (owner, version) in seen.held {
            if seen.deleted.contains(&owner) {
                continue;
            }
            let user = String::from_utf8(owner.clone()).map_err(|_| {
                Error::internal("mysql: column owner holds bytes that are not UTF-8")
            })?;
            owners.push(UserId::from(user));
            chosen.get_or_insert((owner, version));
        }
        let Some(chosen) = chosen else {
            continue;
        };
        let id = MsgId::from_slice(&id).map_err(|e| {
            Error::internal(format!("mysql: column server_msg_id: {}", e.message()))
        })?;
        page.push((id, owners, chosen));
    }
    Ok(page)
}

/// The entries [`scan_page`] chose, by (owner, version):
/// [`queries::scan_entries`] in chunks of [`OWNER_CHUNK`] pairs.
async fn scan_entries(
    store: &MysqlStore,
    app: &AppId,
    page: &[Listed],
) -> Result<HashMap<(Vec<u8>, u64), InboxEntry>> {
    let mut entries = HashMap::with_capacity(page.len());
    for chunk in page.chunks(OWNER_CHUNK) {
        let sql = queries::scan_entries(chunk.len());
        let sql = &sql;
        let found = store
            .read(|pool| async move {
                let mut q = sqlx::query(dynamic(sql.clone())).bind(b(app.as_str()));
                for (_, _, (owner, version)) in chunk {
                    q = q.bind(&owner[..]).bind(*version);
                }
                q.fetch_all(&pool).await.map_err(map_err)
            })
            .await?;
        for row in &found {
            let entry = rows::inbox_entry(row)?;
            entries.insert(
                (entry.owner.as_str().as_bytes().to_vec(), entry.version),
                entry,
            );
        }
    }
    Ok(entries)
}
