//! [`InboxStore`] on SQLite: appends go to the writer (the batched append
//! is in `append`), reads to the read connections; the SQL of the reads and
//! read marks is here (what the search index reads: `search_source`).

use async_trait::async_trait;
use bubble_core::ports::{
    AppendOutcome, Delivery, Expired, InboxStore, IndexTask, MarkedRead, MessageReaders,
    ReactionLimits, StoredMessage,
};
use bubble_core::{
    AppId, Conversation, ConversationKind, ConversationPage, ConversationSettings,
    ConversationSummary, InboxEntry, InboxPage, MsgId, ReactionCount, Result, SendReceipt,
    UnreadCount, UserId, page_before,
};
use rusqlite::{Connection, params};

use crate::append::{self, FIND_SENT, LAST_VERSION};
use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::extras;
use crate::names::{id_of, in_conversation, name_of};
use crate::rows::{self, bound, from_stored, inbox_columns_with};
use crate::search_source::{CompleteIndex, pending_index, scan_messages};
use crate::writer::WriteOp;

#[async_trait]
impl InboxStore for SqliteStore {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        self.append_to_inbox(app, delivery).await
    }

    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let app = app.clone();
        let owner = owner.clone();
        self.read(move |conn| pull(conn, &app, &owner, after_version, limit))
            .await
    }

    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
        let app = app.clone();
        let owner = owner.clone();
        self.read(move |conn| last_version(conn, &app, &owner))
            .await
    }

    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        let app = app.clone();
        let owner = owner.clone();
        let id = *id;
        self.read(move |conn| get(conn, &app, &owner, &id)).await
    }

    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        self.write(MarkRead {
            app: app.clone(),
            owner: owner.clone(),
            conversation: conversation.clone(),
            up_to,
        })
        .await
    }

    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        self.write(MarkMessageRead {
            app: app.clone(),
            owner: owner.clone(),
            id: *id,
        })
        .await
    }

    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        let app = app.clone();
        let owner = owner.clone();
        self.read(move |conn| unread(conn, &app, &owner)).await
    }

    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        let app = app.clone();
        let sender = sender.clone();
        let client_msg_id = client_msg_id.to_owned();
        self.read(move |conn| find_sent(conn, &app, &sender, &client_msg_id))
            .await
    }

    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        self.read(move |conn| pending_index(conn, limit)).await
    }

    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(CompleteIndex { ids: ids.to_vec() }).await
    }

    async fn history(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        before_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let app = app.clone();
        let owner = owner.clone();
        let conversation = conversation.clone();
        self.read(move |conn| history(conn, &app, &owner, &conversation, before_version, limit))
            .await
    }

    async fn conversations(
        &self,
        app: &AppId,
        owner: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<ConversationPage> {
        let app = app.clone();
        let owner = owner.clone();
        self.read(move |conn| conversations(conn, &app, &owner, before, limit))
            .await
    }

    async fn settings(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        let app = app.clone();
        let owner = owner.clone();
        let conversation = conversation.clone();
        self.read_point(move |conn| extras::settings(conn, &app, &owner, &conversation))
            .await
    }

    async fn blocked(&self, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
        let app = app.clone();
        let owner = owner.clone();
        self.read(move |conn| extras::blocked(conn, &app, &owner))
            .await
    }

    async fn readers(
        &self,
        app: &AppId,
        conversation: &Conversation,
        id: &MsgId,
        members: &[UserId],
    ) -> Result<MessageReaders> {
        let app = app.clone();
        let conversation = conversation.clone();
        let id = *id;
        let members = members.to_vec();
        self.read(move |conn| extras::readers(conn, &app, &conversation, &id, &members))
            .await
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
        self.write(extras::React {
            app: app.clone(),
            id: *id,
            user: user.clone(),
            emoji: emoji.to_owned(),
            add,
            limits,
        })
        .await
    }

    async fn reactions(
        &self,
        app: &AppId,
        ids: &[MsgId],
        viewer: &UserId,
    ) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
        let app = app.clone();
        let ids = ids.to_vec();
        let viewer = viewer.clone();
        self.read(move |conn| extras::reactions(conn, &app, &ids, &viewer))
            .await
    }

    async fn scan_messages(
        &self,
        app: &AppId,
        after: Option<MsgId>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let app = app.clone();
        self.read(move |conn| scan_messages(conn, &app, after, limit))
            .await
    }

    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        self.write(crate::retention::Expire {
            app: app.clone(),
            sent_before,
            limit,
        })
        .await
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        self.write(PruneSent {
            sql: PRUNE_INBOX_SENT,
            sent_before,
            limit,
        })
        .await
    }
}

/// Sync: one range scan of the inbox key, each row joined to its message
/// by rowid.
pub(crate) const PULL: &str = concat!(
    "SELECT ",
    inbox_columns_with!("?2", name_of!("i.peer")),
    " FROM inbox i JOIN messages m ON m.id = i.message \
     WHERE i.owner = ",
    id_of!("?1", "?2"),
    " AND i.version > ?3 ORDER BY i.version LIMIT ?4"
);

/// History: one backwards range of `inbox_history` (owner, conversation,
/// version < before), each row joined to its message by rowid. Named
/// (`INDEXED BY`): without statistics SQLite prefers the key's owner range,
/// which reads the owner's whole inbox backwards to fill a page of a quiet
/// conversation.
pub(crate) const HISTORY: &str = concat!(
    "SELECT ",
    inbox_columns_with!("?2", "?4"),
    " FROM inbox i INDEXED BY inbox_history JOIN messages m ON m.id = i.message WHERE ",
    in_conversation!("i."),
    " AND i.version < ?5 ORDER BY i.version DESC LIMIT ?6"
);

/// A message by id: its message rows (`messages_by_id`), then the owner's
/// entry of each (`inbox_by_msg`). Message rows of one id come back in
/// rowid (= written) order without an ORDER BY, so the first is the oldest;
/// CROSS JOIN keeps the planner on that order. Named: without statistics
/// the planner takes the key's owner range (every entry of the owner).
pub(crate) const GET: &str = concat!(
    "SELECT ",
    inbox_columns_with!("?2", name_of!("i.peer")),
    " FROM messages m CROSS JOIN inbox i INDEXED BY inbox_by_msg \
     WHERE m.app = ?1 AND m.server_msg_id = ?3 AND m.kind IN (1, 6) \
     AND i.message = m.id AND i.owner = ",
    id_of!("?1", "?2"),
    " LIMIT 1"
);

/// Unread per conversation: the owner's list rows that count any (the
/// conversations key), in conversation order (kind, then the peer's name:
/// a sort of the rows with unread only). The count is kept on the row
/// by the append and the marks (migration 8); a row is "mentioned" while its
/// mention is above its read mark.
pub(crate) const UNREAD: &str = concat!(
    "SELECT conv_kind, ",
    name_of!("peer"),
    ", unread, mention_version > read_up_to FROM conversations WHERE owner = ",
    id_of!("?1", "?2"),
    " AND unread > 0 ORDER BY conv_kind, 2"
);

/// A read mark reads the conversation's entries from its unread floor (the
/// list row: no entry below it is unread) up to the mark, in
/// `inbox_history`, and marks the unread ones read: what arrived since the
/// previous mark, not the whole conversation. No list row, nothing unread.
/// Named: without statistics the planner takes the key's (owner,
/// version) range instead, every entry of the owner below the mark.
pub(crate) const MARK_READ: &str = concat!(
    "UPDATE inbox INDEXED BY inbox_history SET status = 1 WHERE ",
    in_conversation!(""),
    " AND version <= ?5 AND version >= (SELECT unread_floor FROM conversations WHERE ",
    in_conversation!(""),
    ") AND status = 0"
);

/// The newest received message a read mark covers, read before or just
/// now: run right after [`MARK_READ`] with the same arguments, when every
/// such entry is read (status 1). Read backwards in `inbox_history` from
/// the lower of the mark and the list row's newest received entry, so a
/// mark at or past that entry (the usual one: "read up to the end") is one
/// seek, and a conversation with nothing received reads nothing. Named for
/// the reason given at [`MARK_READ`].
pub(crate) const LAST_READ: &str = concat!(
    "SELECT ",
    inbox_columns_with!("?2", "?4"),
    " FROM inbox i INDEXED BY inbox_history JOIN messages m ON m.id = i.message \
     WHERE ",
    in_conversation!("i."),
    " AND i.version <= MIN(?5, (SELECT c.last_received FROM conversations c WHERE ",
    in_conversation!("c."),
    ")) AND i.status = 1 ORDER BY i.version DESC LIMIT 1"
);

/// One message stops counting: its message rows (`messages_by_id`), then
/// the owner's entry of each (`inbox_by_msg`). A recall naming the same id
/// has a row of its own, whose entries have no status to change. Named for
/// the reason given at [`MARK_READ`] (here the key's range would be every
/// entry of the owner).
pub(crate) const MARK_MESSAGE_READ: &str = concat!(
    "UPDATE inbox INDEXED BY inbox_by_msg SET status = 1 \
     WHERE message IN (SELECT id FROM messages WHERE app = ?1 AND server_msg_id = ?3) \
     AND owner = ",
    id_of!("?1", "?2"),
    " AND status = 0 RETURNING owner, conv_kind, peer"
);

/// What a read mark did to its list row: took what it marked off the
/// unread count, and raised the unread floor past the mark. A mark that
/// changes neither (a second device marking the same place) writes nothing.
const MARKED_IN_CONVERSATION: &str = concat!(
    "UPDATE conversations SET unread = MAX(unread - ?5, 0), unread_floor = MAX(unread_floor, ?6) \
     WHERE ",
    in_conversation!(""),
    " AND (?5 > 0 OR unread_floor < ?6)"
);

/// What marking one message read took off its conversation's unread count.
/// Owner and peer by number, as [`MARK_MESSAGE_READ`] returns them.
const UNREAD_IN_CONVERSATION: &str = "UPDATE conversations SET unread = MAX(unread - 1, 0) \
     WHERE owner = ?1 AND conv_kind = ?2 AND peer = ?3";

/// A page of the conversation list: `conversations_by_activity` backwards
/// from `before`, each row joined to the entry it shows (the inbox key) and
/// its message (rowid).
pub(crate) const CONVERSATIONS: &str = concat!(
    "SELECT c.activity, c.unread, c.read_up_to, c.peer_read_up_to, c.flags, c.draft, \
     c.mention_version, ",
    inbox_columns_with!("?2", name_of!("i.peer")),
    " FROM conversations c INDEXED BY conversations_by_activity \
     JOIN inbox i ON i.owner = c.owner AND i.version = c.last_version \
     JOIN messages m ON m.id = i.message WHERE c.owner = ",
    id_of!("?1", "?2"),
    " AND c.activity > 0 AND c.activity < ?3 ORDER BY c.activity DESC LIMIT ?4"
);

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

/// The owner's entries of `conversation` before `before_version` (0: from
/// the newest), newest first.
pub(crate) fn history(
    conn: &Connection,
    app: &AppId,
    owner: &UserId,
    conversation: &Conversation,
    before_version: u64,
    limit: usize,
) -> Result<InboxPage> {
    let before = bound(page_before(before_version));
    let mut stmt = conn.prepare_cached(HISTORY).map_err(map_sqlite)?;
    let (entries, has_more) = rows::page(
        &mut stmt,
        params![
            app.as_str(),
            owner.as_str(),
            conversation.kind as u8 as i64,
            conversation.id(),
            before,
            bound(limit as u64).saturating_add(1)
        ],
        limit,
        |row| rows::inbox_entry(row, 0),
    )?;
    Ok(InboxPage { entries, has_more })
}

/// A page of the owner's conversation list, newest activity first.
pub(crate) fn conversations(
    conn: &Connection,
    app: &AppId,
    owner: &UserId,
    before: u64,
    limit: usize,
) -> Result<ConversationPage> {
    let before = bound(page_before(before));
    let mut stmt = conn.prepare_cached(CONVERSATIONS).map_err(map_sqlite)?;
    let (conversations, has_more) = rows::page(
        &mut stmt,
        params![
            app.as_str(),
            owner.as_str(),
            before,
            bound(limit as u64).saturating_add(1)
        ],
        limit,
        |row| {
            let last = rows::inbox_entry(row, 7)?;
            let read_up_to = from_stored(rows::get(row, 2)?);
            let flags: i64 = rows::get(row, 4)?;
            Ok(ConversationSummary {
                conversation: last.conversation.clone(),
                activity: from_stored(rows::get(row, 0)?),
                unread: from_stored(rows::get(row, 1)?),
                read_up_to,
                peer_read_up_to: from_stored(rows::get(row, 3)?),
                settings: ConversationSettings::from_flags(flags as u8, rows::get(row, 5)?),
                mentioned: from_stored(rows::get(row, 6)?) > read_up_to,
                last,
            })
        },
    )?;
    Ok(ConversationPage {
        conversations,
        has_more,
    })
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

/// Unread received messages per conversation, from the list's rows.
pub(crate) fn unread(conn: &Connection, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
    let mut stmt = conn.prepare_cached(UNREAD).map_err(map_sqlite)?;
    rows::all(&mut stmt, params![app.as_str(), owner.as_str()], |row| {
        let kind = rows::code(row, 0, "conversation kind", ConversationKind::from_u8)?;
        Ok(UnreadCount {
            conversation: Conversation::from_parts(kind, &rows::text(row, 1)?),
            count: from_stored(rows::int(row, 2)?),
            mentioned: rows::int(row, 3)? != 0,
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
        append::receipt,
    )
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
        // LAST_READ relies on this running first: afterwards every entry
        // the mark covers is read.
        let marked = conn
            .prepare_cached(MARK_READ)
            .and_then(|mut s| s.execute(args))
            .map_err(map_sqlite)?;
        let mut last = conn.prepare_cached(LAST_READ).map_err(map_sqlite)?;
        let last_read = rows::first(&mut last, args, |row| rows::inbox_entry(row, 0))?;
        conn.prepare_cached(MARKED_IN_CONVERSATION)
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    self.owner.as_str(),
                    kind,
                    self.conversation.id(),
                    marked as i64,
                    bound(self.up_to.saturating_add(1)),
                ])
            })
            .map_err(map_sqlite)?;
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
        let mut mark = conn.prepare_cached(MARK_MESSAGE_READ).map_err(map_sqlite)?;
        let marked: Vec<(i64, i64, i64)> = mark
            .query_map(
                params![self.app.as_str(), self.owner.as_str(), &self.id.0[..]],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .and_then(|rows| rows.collect())
            .map_err(map_sqlite)?;
        let mut unread = conn
            .prepare_cached(UNREAD_IN_CONVERSATION)
            .map_err(map_sqlite)?;
        for (owner, kind, peer) in &marked {
            unread
                .execute(params![owner, kind, peer])
                .map_err(map_sqlite)?;
        }
        Ok(!marked.is_empty())
    }
}

/// The oldest dedup keys before a time (`inbox_sent_by_time`): one seek,
/// then at most `limit` rows.
const PRUNE_INBOX_SENT: &str = "DELETE FROM inbox_sent WHERE (sender, client_msg_id) IN \
     (SELECT sender, client_msg_id FROM inbox_sent WHERE server_time < ? \
     ORDER BY server_time LIMIT ?)";

/// [`InboxStore::prune_sent`](bubble_core::ports::InboxStore::prune_sent) and
/// its channel twin: one bounded delete, so the writer's other work waits
/// for at most `limit` rows.
pub(crate) struct PruneSent {
    pub sql: &'static str,
    pub sent_before: i64,
    pub limit: usize,
}

impl WriteOp for PruneSent {
    type Output = u64;

    fn apply(&self, conn: &Connection) -> Result<u64> {
        let deleted = conn
            .prepare_cached(self.sql)
            .and_then(|mut s| s.execute(params![self.sent_before, bound(self.limit as u64)]))
            .map_err(map_sqlite)?;
        Ok(deleted as u64)
    }
}
