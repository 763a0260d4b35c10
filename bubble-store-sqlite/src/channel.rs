//! [`ChannelLog`] on SQLite: super-group logs, the append with per-group
//! seq and dedup, ranges, read seqs.

use async_trait::async_trait;
use bubble_core::ports::{ChannelAppend, ChannelLog, Expired};
use bubble_core::{
    AppId, ChannelEntry, ChannelPage, EntryKind, GroupId, MsgId, Result, SendReceipt, UserId,
    page_before,
};
use rusqlite::{Connection, params};

use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::inbox::PruneSent;
use crate::rows::{self, bound, channel_columns, stored};
use crate::writer::WriteOp;

#[async_trait]
impl ChannelLog for SqliteStore {
    async fn append(&self, app: &AppId, entry: &ChannelEntry) -> Result<ChannelAppend> {
        self.write(Append {
            app: app.clone(),
            entry: entry.clone(),
        })
        .await
    }

    async fn range(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let app = app.clone();
        let group = group.clone();
        self.read(move |conn| range(conn, &app, &group, after_seq, limit))
            .await
    }

    async fn range_before(
        &self,
        app: &AppId,
        group: &GroupId,
        before_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let app = app.clone();
        let group = group.clone();
        self.read(move |conn| range_before(conn, &app, &group, before_seq, limit))
            .await
    }

    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        self.read(move |conn| last_seq(conn, &app, &group)).await
    }

    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>> {
        let app = app.clone();
        let group = group.clone();
        let id = *id;
        self.read(move |conn| get(conn, &app, &group, &id)).await
    }

    async fn count_messages_after(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
    ) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        self.read(move |conn| count_messages_after(conn, &app, &group, after_seq))
            .await
    }

    async fn set_read_seq(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        seq: u64,
    ) -> Result<()> {
        self.write(SetReadSeq {
            app: app.clone(),
            group: group.clone(),
            user: user.clone(),
            seq,
        })
        .await
    }

    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64> {
        let app = app.clone();
        let group = group.clone();
        let user = user.clone();
        self.read(move |conn| read_seq(conn, &app, &group, &user))
            .await
    }

    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        self.write(crate::retention::ExpireChannels {
            app: app.clone(),
            sent_before,
            limit,
        })
        .await
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        self.write(PruneSent {
            sql: PRUNE_CHANNEL_SENT,
            sent_before,
            limit,
        })
        .await
    }
}

/// The oldest channel dedup keys before a time (`channel_sent_by_time`).
const PRUNE_CHANNEL_SENT: &str = "DELETE FROM channel_sent WHERE \
     (app, group_id, sender, client_msg_id) IN (SELECT app, group_id, sender, client_msg_id \
     FROM channel_sent WHERE server_time < ? ORDER BY server_time LIMIT ?)";

/// A page of the log: one range scan of `channel_log_range`.
pub(crate) const RANGE: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channel_log WHERE app = ? AND group_id = ? AND seq > ? ORDER BY seq LIMIT ?"
);

/// History: `channel_log_range` backwards from a seq.
pub(crate) const RANGE_BEFORE: &str = concat!(
    "SELECT ",
    channel_columns!(),
    " FROM channel_log WHERE app = ? AND group_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
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
            let mut stmt = conn
                .prepare_cached(
                    "SELECT server_msg_id, seq, server_time FROM channel_sent \
                     WHERE app = ? AND group_id = ? AND sender = ? AND client_msg_id = ?",
                )
                .map_err(map_sqlite)?;
            let first = rows::first(
                &mut stmt,
                params![
                    self.app.as_str(),
                    e.group.as_str(),
                    e.sender.as_str(),
                    e.client_msg_id.as_str()
                ],
                |row| {
                    Ok(SendReceipt {
                        server_msg_id: rows::msg_id(row, 0)?,
                        version: 0,
                        seq: rows::from_stored(rows::int(row, 1)?),
                        server_time: rows::int(row, 2)?,
                        duplicate: true,
                        prev_version: 0,
                    })
                },
            )?;
            if let Some(receipt) = first {
                return Ok(ChannelAppend::Duplicate(receipt));
            }
        }
        // The writer is the only writer, and this runs in its transaction:
        // the newest seq plus one cannot be taken by anyone else.
        let seq = bound(last_seq(conn, &self.app, &e.group)? + 1);
        conn.prepare_cached(
            "INSERT INTO channel_log (app, group_id, seq, kind, server_msg_id, sender, \
             sender_device, client_msg_id, client_seq, create_time, server_time, content_type, \
             content, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                rows::meta_value(&e.meta),
            ])
        })
        .map_err(map_sqlite)?;
        if e.kind == EntryKind::Edit {
            // `channel_log_by_msg`: the message's own entry takes the edit.
            conn.prepare_cached(
                "UPDATE channel_log SET content_type = ?4, content = ?5, meta = ?6 \
                 WHERE app = ?1 AND group_id = ?2 AND server_msg_id = ?3 AND kind = 1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    e.group.as_str(),
                    &e.server_msg_id.0[..],
                    e.content.kind as u8 as i64,
                    &e.content.body[..],
                    rows::meta_value(&e.meta),
                ])
            })
            .map_err(map_sqlite)?;
        }
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

/// The group's newest seq: `channel_log_range`'s last key, or the floor
/// retention left (`channel_floors`, nearly always empty), the higher. An
/// append takes the one after it.
pub(crate) const LAST_SEQ: &str = "SELECT MAX(s) FROM (\
     SELECT MAX(seq) AS s FROM channel_log WHERE app = ?1 AND group_id = ?2 \
     UNION ALL SELECT seq FROM channel_floors WHERE app = ?1 AND group_id = ?2)";

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
pub(crate) fn range(
    conn: &Connection,
    app: &AppId,
    group: &GroupId,
    after_seq: u64,
    limit: usize,
) -> Result<ChannelPage> {
    if limit == 0 {
        let more = last_seq(conn, app, group)? > after_seq;
        return Ok(ChannelPage {
            entries: Vec::new(),
            has_more: more,
        });
    }
    let mut stmt = conn.prepare_cached(RANGE).map_err(map_sqlite)?;
    let (entries, has_more) = rows::page(
        &mut stmt,
        params![
            app.as_str(),
            group.as_str(),
            bound(after_seq),
            bound(limit as u64).saturating_add(1)
        ],
        limit,
        rows::channel_entry,
    )?;
    Ok(ChannelPage { entries, has_more })
}

/// The group's entries before `before_seq` (0: from the newest), newest first.
pub(crate) fn range_before(
    conn: &Connection,
    app: &AppId,
    group: &GroupId,
    before_seq: u64,
    limit: usize,
) -> Result<ChannelPage> {
    let before = bound(page_before(before_seq));
    let mut stmt = conn.prepare_cached(RANGE_BEFORE).map_err(map_sqlite)?;
    let (entries, has_more) = rows::page(
        &mut stmt,
        params![
            app.as_str(),
            group.as_str(),
            before,
            bound(limit as u64).saturating_add(1)
        ],
        limit,
        rows::channel_entry,
    )?;
    Ok(ChannelPage { entries, has_more })
}

/// One number a statement answers about a group (NULL reads as 0).
fn number(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let v = rows::first(&mut stmt, args, |row| rows::get::<Option<i64>>(row, 0))?;
    Ok(v.flatten().map_or(0, rows::from_stored))
}

/// The group's newest seq.
pub(crate) fn last_seq(conn: &Connection, app: &AppId, group: &GroupId) -> Result<u64> {
    number(conn, LAST_SEQ, params![app.as_str(), group.as_str()])
}

/// The message or notice with this id.
pub(crate) fn get(
    conn: &Connection,
    app: &AppId,
    group: &GroupId,
    id: &MsgId,
) -> Result<Option<ChannelEntry>> {
    let mut stmt = conn.prepare_cached(GET).map_err(map_sqlite)?;
    rows::first(
        &mut stmt,
        params![app.as_str(), group.as_str(), &id.0[..]],
        rows::channel_entry,
    )
}

/// Messages and notices after `after_seq`.
pub(crate) fn count_messages_after(
    conn: &Connection,
    app: &AppId,
    group: &GroupId,
    after_seq: u64,
) -> Result<u64> {
    number(
        conn,
        "SELECT COUNT(*) FROM channel_log WHERE app = ? AND group_id = ? AND seq > ? \
         AND kind IN (1, 6)",
        params![app.as_str(), group.as_str(), bound(after_seq)],
    )
}

/// A member's read seq.
pub(crate) fn read_seq(
    conn: &Connection,
    app: &AppId,
    group: &GroupId,
    user: &UserId,
) -> Result<u64> {
    number(
        conn,
        "SELECT read_seq FROM channel_reads WHERE app = ? AND group_id = ? AND user = ?",
        params![app.as_str(), group.as_str(), user.as_str()],
    )
}
