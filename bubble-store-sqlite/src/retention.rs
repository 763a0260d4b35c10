//! Retention ([`InboxStore::expire`](bubble_core::ports::InboxStore::expire),
//! [`ChannelLog::expire`](bubble_core::ports::ChannelLog::expire)): an app's
//! oldest messages deleted with every owner's entry of them, and its oldest
//! super-group log entries, one bounded batch per writer job.

use std::collections::BTreeMap;

use bubble_core::ports::Expired;
use bubble_core::{AppId, GroupId, MsgId, Result, UserId};
use rusqlite::{Connection, params, params_from_iter};

use crate::channel::last_seq;
use crate::error::map_sqlite;
use crate::inbox::last_version;
use crate::names::name_of;
use crate::rows::{self, bound, from_stored};
use crate::writer::WriteOp;

/// The app's oldest messages before a time: a range of `messages_by_time`.
/// One more than the batch is asked for, to tell whether more remain.
pub(crate) const OLDEST: &str = "SELECT id, server_msg_id FROM messages \
     WHERE app = ?1 AND server_time < ?2 ORDER BY server_time, id LIMIT ?3";

/// A message's entries, by `inbox_by_msg` (message, owner): the owner by
/// number and by name (the version floors keep names).
pub(crate) const ENTRIES: &str = concat!(
    "SELECT owner, ",
    name_of!("owner"),
    ", version, conv_kind, peer, status FROM inbox WHERE message = ?1"
);

const DELETE_ENTRIES: &str = "DELETE FROM inbox WHERE message = ?1";
const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE id = ?1";
const DELETE_REACTIONS: &str = "DELETE FROM reactions WHERE app = ?1 AND server_msg_id = ?2";

/// What a row loses: the unread its deleted entries counted. A row whose
/// shown entry went leaves the list (`activity` 0, as a row with settings
/// only) until its next message; a mention that went stops marking it.
const SHRINK_ROW: &str = "UPDATE conversations SET unread = MAX(unread - ?4, 0), \
     activity = CASE WHEN EXISTS (SELECT 1 FROM inbox i \
         WHERE i.owner = ?1 AND i.version = conversations.last_version) \
         THEN activity ELSE 0 END, \
     mention_version = CASE WHEN mention_version <= ?5 THEN 0 ELSE mention_version END \
     WHERE owner = ?1 AND conv_kind = ?2 AND peer = ?3";

/// Keeps the highest deleted version of an owner whose newest entries went.
const RAISE_FLOOR: &str = "INSERT INTO version_floors (app, owner, version) VALUES (?1, ?2, ?3) \
     ON CONFLICT (app, owner) DO UPDATE SET version = MAX(version, excluded.version)";

/// Entries one batch deletes at most (and then finishes the message it is
/// on): 200 messages to a group of 100 are 20,000 rows, which held the
/// writer for ~65 ms (`benches/append.rs`, "SQLite retention batch"); at
/// 2,000 it stays a few milliseconds, as a batch of appends does.
const ENTRY_BUDGET: usize = 2_000;

/// One batch of [`InboxStore::expire`](bubble_core::ports::InboxStore::expire):
/// at most `limit` messages and about [`ENTRY_BUDGET`] entries, so the
/// writer's other work waits for one short batch, not for the backlog.
pub(crate) struct Expire {
    pub app: AppId,
    pub sent_before: i64,
    pub limit: usize,
}

/// The app's oldest rows of `sql` (`OLDEST` or `CHANNEL_OLDEST`), decoded
/// by `map`: at most `limit`, and whether more are due.
fn due<T>(
    conn: &Connection,
    sql: &str,
    app: &str,
    sent_before: i64,
    limit: usize,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<(Vec<T>, bool)> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let asked = bound(limit as u64).saturating_add(1);
    let mut found = rows::all(&mut stmt, params![app, sent_before, asked], map)?;
    let more = found.len() > limit;
    found.truncate(limit);
    Ok((found, more))
}

/// Records in a floor table (`raise`: [`RAISE_FLOOR`] or
/// [`RAISE_CHANNEL_FLOOR`]) the highest number deleted of each key (an
/// owner's version, a group's seq) that no longer holds a higher one, as
/// `newest_held` reads it, so the number is never given again.
fn raise_floors<K: AsRef<str>>(
    conn: &Connection,
    raise: &str,
    app: &str,
    deleted: &BTreeMap<K, u64>,
    newest_held: impl Fn(&str) -> Result<u64>,
) -> Result<()> {
    let mut raise = conn.prepare_cached(raise).map_err(map_sqlite)?;
    for (key, &top) in deleted {
        if newest_held(key.as_ref())? <= top {
            raise
                .execute(params![app, key.as_ref(), bound(top)])
                .map_err(map_sqlite)?;
        }
    }
    Ok(())
}

/// A conversation row, as `(owner, conv_kind, peer)` by number.
type RowKey = (i64, i64, i64);

impl WriteOp for Expire {
    type Output = Expired;

    fn apply(&self, conn: &Connection) -> Result<Expired> {
        let app = self.app.as_str();
        let (mut found, mut more) = due(conn, OLDEST, app, self.sent_before, self.limit, |row| {
            let id: i64 = rows::get(row, 0)?;
            let msg: Vec<u8> = rows::get(row, 1)?;
            Ok((id, MsgId::from_slice(&msg)?))
        })?;

        let mut entries = conn.prepare_cached(ENTRIES).map_err(map_sqlite)?;
        let mut delete_entries = conn.prepare_cached(DELETE_ENTRIES).map_err(map_sqlite)?;
        let mut delete_message = conn.prepare_cached(DELETE_MESSAGE).map_err(map_sqlite)?;
        let mut delete_reactions = conn.prepare_cached(DELETE_REACTIONS).map_err(map_sqlite)?;
        // Each owner's highest deleted version.
        let mut newest: BTreeMap<String, u64> = BTreeMap::new();
        // Each row's deleted unread entries and highest deleted version.
        let mut rows_hit: BTreeMap<RowKey, (u64, u64)> = BTreeMap::new();
        let mut deleted = 0;
        let mut taken = 0;
        for (id, msg) in &found {
            if deleted >= ENTRY_BUDGET {
                more = true;
                break;
            }
            taken += 1;
            let held = rows::all(&mut entries, params![id], |row| {
                let status: Option<i64> = rows::get(row, 5)?;
                Ok((
                    rows::get::<i64>(row, 0)?,
                    rows::get::<String>(row, 1)?,
                    from_stored(rows::get(row, 2)?),
                    rows::get::<i64>(row, 3)?,
                    rows::get::<i64>(row, 4)?,
                    status == Some(0),
                ))
            })?;
            deleted += held.len();
            for (owner, name, version, kind, peer, unread) in held {
                let top = newest.entry(name).or_default();
                *top = (*top).max(version);
                let hit = rows_hit.entry((owner, kind, peer)).or_default();
                hit.0 += u64::from(unread);
                hit.1 = hit.1.max(version);
            }
            delete_entries.execute(params![id]).map_err(map_sqlite)?;
            delete_message.execute(params![id]).map_err(map_sqlite)?;
            delete_reactions
                .execute(params![app, &msg.0[..]])
                .map_err(map_sqlite)?;
        }
        found.truncate(taken);
        if !found.is_empty() {
            // The outbox has no index on `message` (it is drained as it
            // fills): one pass over it for the whole batch.
            let marks = vec!["?"; found.len()].join(", ");
            conn.execute(
                &format!("DELETE FROM index_outbox WHERE message IN ({marks})"),
                params_from_iter(found.iter().map(|(id, _)| *id)),
            )
            .map_err(map_sqlite)?;
        }

        let mut shrink = conn.prepare_cached(SHRINK_ROW).map_err(map_sqlite)?;
        for ((owner, kind, peer), (unread, top)) in &rows_hit {
            shrink
                .execute(params![owner, kind, peer, bound(*unread), bound(*top)])
                .map_err(map_sqlite)?;
        }
        raise_floors(conn, RAISE_FLOOR, app, &newest, |owner| {
            last_version(conn, &self.app, &UserId::new(owner))
        })?;
        Ok(Expired {
            messages: found.into_iter().map(|(_, msg)| msg).collect(),
            more,
        })
    }
}

/// The app's oldest super-group log entries before a time: a range of
/// `channel_log_by_time`, one more than the batch.
pub(crate) const CHANNEL_OLDEST: &str = "SELECT id, group_id, seq, server_msg_id FROM channel_log \
     WHERE app = ?1 AND server_time < ?2 ORDER BY server_time, id LIMIT ?3";

const DELETE_CHANNEL_ENTRY: &str = "DELETE FROM channel_log WHERE id = ?1";

/// Keeps the highest deleted seq of a group whose newest entries went.
const RAISE_CHANNEL_FLOOR: &str = "INSERT INTO channel_floors (app, group_id, seq) \
     VALUES (?1, ?2, ?3) ON CONFLICT (app, group_id) DO UPDATE SET seq = MAX(seq, excluded.seq)";

/// One batch of [`ChannelLog::expire`](bubble_core::ports::ChannelLog::expire).
pub(crate) struct ExpireChannels {
    pub app: AppId,
    pub sent_before: i64,
    pub limit: usize,
}

impl WriteOp for ExpireChannels {
    type Output = Expired;

    fn apply(&self, conn: &Connection) -> Result<Expired> {
        let app = self.app.as_str();
        let (found, more) = due(
            conn,
            CHANNEL_OLDEST,
            app,
            self.sent_before,
            self.limit,
            |row| {
                let msg: Vec<u8> = rows::get(row, 3)?;
                Ok((
                    rows::get::<i64>(row, 0)?,
                    rows::get::<String>(row, 1)?,
                    from_stored(rows::get(row, 2)?),
                    MsgId::from_slice(&msg)?,
                ))
            },
        )?;
        let mut delete = conn
            .prepare_cached(DELETE_CHANNEL_ENTRY)
            .map_err(map_sqlite)?;
        let mut delete_reactions = conn.prepare_cached(DELETE_REACTIONS).map_err(map_sqlite)?;
        // Each group's highest deleted seq.
        let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, group, seq, msg) in &found {
            delete.execute(params![id]).map_err(map_sqlite)?;
            delete_reactions
                .execute(params![app, &msg.0[..]])
                .map_err(map_sqlite)?;
            let top = newest.entry(group).or_default();
            *top = (*top).max(*seq);
        }
        raise_floors(conn, RAISE_CHANNEL_FLOOR, app, &newest, |group| {
            last_seq(conn, &self.app, &GroupId::new(group))
        })?;
        Ok(Expired {
            messages: found.into_iter().map(|(_, _, _, msg)| msg).collect(),
            more,
        })
    }
}
