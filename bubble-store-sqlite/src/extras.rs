//! The SQL of what the inbox keeps beyond messages and read state: a
//! user's settings of a conversation and their block list (columns of the
//! list row), who of a group read a message (from the list rows' read
//! marks), and reactions (a table of their own).

use std::collections::HashSet;

use bubble_core::ports::{MessageReaders, ReactionLimits};
use bubble_core::{
    AppId, Conversation, ConversationSettings, MsgId, ReactionCount, Result, UserId, now_millis,
};
use rusqlite::{Connection, params, params_from_iter};

use crate::error::map_sqlite;
use crate::names::{id_of, in_conversation, name_of};
use crate::rows::{self, from_stored};
use crate::writer::WriteOp;

/// The owner's settings of a conversation: one seek of the list row's key.
pub(crate) const SETTINGS: &str = concat!(
    "SELECT flags, draft FROM conversations WHERE ",
    in_conversation!("")
);

/// The owner's blocked peers: the owner's 1:1 rows of the key (the flags
/// are in the row), in the order of the peers' names.
pub(crate) const BLOCKED: &str = concat!(
    "SELECT ",
    name_of!("peer"),
    " FROM conversations WHERE owner = ",
    id_of!("?1", "?2"),
    " AND conv_kind = 1 AND (flags & 8) != 0 ORDER BY 1"
);

/// Everyone who received a group message, with their copy's version and
/// their read mark there: the message rows (`messages_by_id`), each one's
/// entries (`inbox_by_msg`), each entry's list row (its key).
pub(crate) const READERS: &str = concat!(
    "SELECT ",
    name_of!("i.owner"),
    ", i.version, COALESCE(c.read_up_to, 0) \
     FROM messages m CROSS JOIN inbox i \
     LEFT JOIN conversations c ON c.owner = i.owner \
     AND c.conv_kind = i.conv_kind AND c.peer = i.peer \
     WHERE m.app = ?1 AND m.server_msg_id = ?2 AND m.kind = 1 AND i.message = m.id \
     AND i.conv_kind = ?3 AND i.peer = ",
    id_of!("?1", "?4"),
    " AND i.direction = -1"
);

/// Reaction counts of one message, in emoji order, with the viewer's
/// (`reactions_by_emoji`, covering).
pub(crate) const REACTIONS: &str = "SELECT emoji, COUNT(*), MAX(user = ?3) FROM reactions \
     WHERE app = ?1 AND server_msg_id = ?2 GROUP BY emoji ORDER BY emoji";

/// Whether one user's emoji is on a message (the key).
const HAS_REACTION: &str = "SELECT 1 FROM reactions \
     WHERE app = ? AND server_msg_id = ? AND user = ? AND emoji = ?";

/// Whether an emoji is on a message at all (`reactions_by_emoji`).
const HAS_EMOJI: &str = "SELECT 1 FROM reactions WHERE app = ? AND server_msg_id = ? AND emoji = ? \
     LIMIT 1";

/// How many different emoji a message has (`reactions_by_emoji`).
const DISTINCT_EMOJI: &str =
    "SELECT COUNT(DISTINCT emoji) FROM reactions WHERE app = ? AND server_msg_id = ?";

/// How many emoji one user put on a message (the key).
const USER_EMOJI: &str =
    "SELECT COUNT(*) FROM reactions WHERE app = ? AND server_msg_id = ? AND user = ?";

pub(crate) fn settings(
    conn: &Connection,
    app: &AppId,
    owner: &UserId,
    conversation: &Conversation,
) -> Result<ConversationSettings> {
    let mut stmt = conn.prepare_cached(SETTINGS).map_err(map_sqlite)?;
    let found = rows::first(
        &mut stmt,
        params![
            app.as_str(),
            owner.as_str(),
            conversation.kind as u8 as i64,
            conversation.id()
        ],
        |row| {
            Ok(ConversationSettings::from_flags(
                rows::int(row, 0)? as u8,
                rows::text(row, 1)?,
            ))
        },
    )?;
    Ok(found.unwrap_or_default())
}

pub(crate) fn blocked(conn: &Connection, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(BLOCKED).map_err(map_sqlite)?;
    rows::all(&mut stmt, params![app.as_str(), owner.as_str()], |row| {
        Ok(UserId::from(rows::text(row, 0)?))
    })
}

pub(crate) fn readers(
    conn: &Connection,
    app: &AppId,
    conversation: &Conversation,
    id: &MsgId,
    members: &[UserId],
) -> Result<MessageReaders> {
    let members: HashSet<&str> = members.iter().map(|m| m.as_str()).collect();
    let mut stmt = conn.prepare_cached(READERS).map_err(map_sqlite)?;
    let copies = rows::all(
        &mut stmt,
        params![
            app.as_str(),
            &id.0[..],
            conversation.kind as u8 as i64,
            conversation.id()
        ],
        |row| {
            Ok((
                rows::text(row, 0)?,
                from_stored(rows::int(row, 1)?),
                from_stored(rows::int(row, 2)?),
            ))
        },
    )?;
    let mut found = MessageReaders::default();
    for (owner, version, read_up_to) in copies {
        if !members.contains(owner.as_str()) {
            continue;
        }
        found.received += 1;
        if read_up_to >= version {
            found.readers.push(UserId::from(owner));
        }
    }
    found.readers.sort();
    Ok(found)
}

pub(crate) fn reactions(
    conn: &Connection,
    app: &AppId,
    ids: &[MsgId],
    viewer: &UserId,
) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
    let mut stmt = conn.prepare_cached(REACTIONS).map_err(map_sqlite)?;
    let mut out = Vec::new();
    for id in ids {
        let counts = rows::all(
            &mut stmt,
            params![app.as_str(), &id.0[..], viewer.as_str()],
            |row| {
                Ok(ReactionCount {
                    emoji: rows::text(row, 0)?,
                    count: from_stored(rows::int(row, 1)?),
                    mine: rows::int(row, 2)? != 0,
                })
            },
        )?;
        if !counts.is_empty() {
            out.push((*id, counts));
        }
    }
    Ok(out)
}

/// [`InboxStore::react`](bubble_core::ports::InboxStore::react): on the
/// writer, so the cap checks and the write see the same rows.
pub(crate) struct React {
    pub app: AppId,
    pub id: MsgId,
    pub user: UserId,
    pub emoji: String,
    pub add: bool,
    pub limits: ReactionLimits,
}

impl WriteOp for React {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        let key = params![
            self.app.as_str(),
            &self.id.0[..],
            self.user.as_str(),
            self.emoji.as_str()
        ];
        if !self.add {
            let removed = conn
                .prepare_cached(
                    "DELETE FROM reactions \
                     WHERE app = ? AND server_msg_id = ? AND user = ? AND emoji = ?",
                )
                .and_then(|mut s| s.execute(key))
                .map_err(map_sqlite)?;
            return Ok(removed > 0);
        }
        let exists = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<bool> {
            let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
            Ok(rows::first(&mut stmt, params_from_iter(args), |_| Ok(()))?.is_some())
        };
        let count = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<usize> {
            let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
            let n = rows::first(&mut stmt, params_from_iter(args), |row| rows::int(row, 0))?;
            Ok(n.unwrap_or(0) as usize)
        };
        let (app, id, user, emoji) = (
            self.app.as_str(),
            &self.id.0[..],
            self.user.as_str(),
            self.emoji.as_str(),
        );
        if exists(HAS_REACTION, &[&app, &id, &user, &emoji])? {
            return Ok(false);
        }
        let new_emoji = !exists(HAS_EMOJI, &[&app, &id, &emoji])?;
        let distinct = if new_emoji {
            count(DISTINCT_EMOJI, &[&app, &id])? + 1
        } else {
            0
        };
        let mine = count(USER_EMOJI, &[&app, &id, &user])? + 1;
        self.limits.check(distinct, mine)?;
        conn.prepare_cached(
            "INSERT INTO reactions (app, server_msg_id, user, emoji, created) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .and_then(|mut s| s.execute(params![app, id, user, emoji, now_millis()]))
        .map_err(map_sqlite)?;
        Ok(true)
    }
}
