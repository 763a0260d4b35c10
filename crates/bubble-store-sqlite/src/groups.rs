//! Groups and members: the writes the writer applies, and the reads.

use bubble_core::{
    AppId, Error, ErrorKind, Group, GroupId, GroupKind, Member, Result, Role, UserId,
};
use rusqlite::{Connection, params};
use sqlx::Executor;
use sqlx::sqlite::{Sqlite, SqlitePool, SqliteRow};

use crate::error::{map_err, map_sqlite};
use crate::rows;
use crate::writer::WriteOp;

fn missing(id: &GroupId) -> Error {
    Error::not_found(format!("group {id} does not exist"))
}

async fn exists<'e, E>(db: E, app: &AppId, id: &GroupId) -> Result<bool>
where
    E: Executor<'e, Database = Sqlite>,
{
    let found: Option<i64> = sqlx::query_scalar(GROUP_EXISTS)
        .bind(app.as_str())
        .bind(id.as_str())
        .fetch_optional(db)
        .await
        .map_err(map_err)?;
    Ok(found.is_some())
}

fn member_of(row: &SqliteRow) -> Result<Member> {
    Ok(Member {
        user: UserId::from(rows::text(row, 0)?),
        role: Role::from_u8(rows::int(row, 1)? as u8)?,
        joined_at: rows::int(row, 2)?,
    })
}

/// Whether the group exists, inside the writer's transaction.
fn exists_in(conn: &Connection, app: &AppId, id: &GroupId) -> Result<bool> {
    conn.prepare_cached(GROUP_EXISTS)
        .and_then(|mut s| s.exists(params![app.as_str(), id.as_str()]))
        .map_err(map_sqlite)
}

const GROUP_EXISTS: &str = "SELECT 1 FROM chat_groups WHERE app = ? AND id = ?";

/// [`GroupStore::create_group`](bubble_core::ports::GroupStore::create_group).
pub(crate) struct Create {
    pub app: AppId,
    pub group: Group,
    pub members: Vec<Member>,
}

impl WriteOp for Create {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let g = &self.group;
        let inserted = conn
            .prepare_cached(
                "INSERT INTO chat_groups (app, id, name, kind, owner, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app, id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    g.id.as_str(),
                    g.name.as_str(),
                    g.kind as u8 as i64,
                    g.owner.as_str(),
                    g.created_at
                ])
            })
            .map_err(map_sqlite)?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("group {} exists already", g.id),
            ));
        }
        // A user listed twice keeps the last listing, as a map would.
        let mut put = conn
            .prepare_cached(
                "INSERT INTO group_members (app, group_id, user, role, joined_at) \
                 VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (app, group_id, user) DO UPDATE SET role = excluded.role, \
                 joined_at = excluded.joined_at",
            )
            .map_err(map_sqlite)?;
        for m in &self.members {
            put.execute(params![
                self.app.as_str(),
                g.id.as_str(),
                m.user.as_str(),
                m.role as u8 as i64,
                m.joined_at
            ])
            .map_err(map_sqlite)?;
        }
        Ok(())
    }
}

/// [`GroupStore::set_kind`](bubble_core::ports::GroupStore::set_kind).
pub(crate) struct SetKind {
    pub app: AppId,
    pub id: GroupId,
    pub kind: GroupKind,
}

impl WriteOp for SetKind {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let changed = conn
            .prepare_cached("UPDATE chat_groups SET kind = ? WHERE app = ? AND id = ?")
            .and_then(|mut s| {
                s.execute(params![
                    self.kind as u8 as i64,
                    self.app.as_str(),
                    self.id.as_str()
                ])
            })
            .map_err(map_sqlite)?;
        if changed == 0 {
            return Err(missing(&self.id));
        }
        Ok(())
    }
}

/// [`GroupStore::add_members`](bubble_core::ports::GroupStore::add_members).
pub(crate) struct AddMembers {
    pub app: AppId,
    pub id: GroupId,
    pub members: Vec<Member>,
}

impl WriteOp for AddMembers {
    type Output = u64;

    fn apply(&self, conn: &Connection) -> Result<u64> {
        if !exists_in(conn, &self.app, &self.id)? {
            return Err(missing(&self.id));
        }
        // Existing members keep their role and join time.
        let mut add = conn
            .prepare_cached(
                "INSERT INTO group_members (app, group_id, user, role, joined_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (app, group_id, user) DO NOTHING",
            )
            .map_err(map_sqlite)?;
        let mut added = 0;
        for m in &self.members {
            added += add
                .execute(params![
                    self.app.as_str(),
                    self.id.as_str(),
                    m.user.as_str(),
                    m.role as u8 as i64,
                    m.joined_at
                ])
                .map_err(map_sqlite)? as u64;
        }
        Ok(added)
    }
}

/// [`GroupStore::remove_members`](bubble_core::ports::GroupStore::remove_members).
pub(crate) struct RemoveMembers {
    pub app: AppId,
    pub id: GroupId,
    pub users: Vec<UserId>,
}

impl WriteOp for RemoveMembers {
    type Output = u64;

    fn apply(&self, conn: &Connection) -> Result<u64> {
        if !exists_in(conn, &self.app, &self.id)? {
            return Err(missing(&self.id));
        }
        let mut remove = conn
            .prepare_cached("DELETE FROM group_members WHERE app = ? AND group_id = ? AND user = ?")
            .map_err(map_sqlite)?;
        let mut removed = 0;
        for u in &self.users {
            removed += remove
                .execute(params![self.app.as_str(), self.id.as_str(), u.as_str()])
                .map_err(map_sqlite)? as u64;
        }
        Ok(removed)
    }
}

// ------------------------------------------------------------------ reads

/// One group.
pub(crate) async fn group(pool: &SqlitePool, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
    let row = sqlx::query(
        "SELECT id, name, kind, owner, created_at FROM chat_groups WHERE app = ? AND id = ?",
    )
    .bind(app.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    row.map(|row| {
        Ok(Group {
            id: GroupId::from(rows::text(&row, 0)?),
            name: rows::text(&row, 1)?,
            kind: GroupKind::from_u8(rows::int(&row, 2)? as u8)?,
            owner: UserId::from(rows::text(&row, 3)?),
            created_at: rows::int(&row, 4)?,
        })
    })
    .transpose()
}

/// Every member, in user order.
pub(crate) async fn members(pool: &SqlitePool, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
    // One read transaction, so "the group exists" and "these are its
    // members" describe the same moment.
    let mut tx = pool.begin().await.map_err(map_err)?;
    if !exists(&mut *tx, app, id).await? {
        return Err(missing(id));
    }
    let found = sqlx::query(
        "SELECT user, role, joined_at FROM group_members WHERE app = ? AND group_id = ? \
         ORDER BY user",
    )
    .bind(app.as_str())
    .bind(id.as_str())
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    found.iter().map(member_of).collect()
}

/// One member.
pub(crate) async fn member(
    pool: &SqlitePool,
    app: &AppId,
    id: &GroupId,
    user: &UserId,
) -> Result<Option<Member>> {
    let row = sqlx::query(
        "SELECT user, role, joined_at FROM group_members \
         WHERE app = ? AND group_id = ? AND user = ?",
    )
    .bind(app.as_str())
    .bind(id.as_str())
    .bind(user.as_str())
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    row.map(|r| member_of(&r)).transpose()
}

/// How many members.
pub(crate) async fn member_count(pool: &SqlitePool, app: &AppId, id: &GroupId) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    if !exists(&mut *tx, app, id).await? {
        return Err(missing(id));
    }
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE app = ? AND group_id = ?")
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(rows::from_stored(n))
}

/// The groups a user is in, in id order.
pub(crate) async fn groups_of(
    pool: &SqlitePool,
    app: &AppId,
    user: &UserId,
) -> Result<Vec<GroupId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT group_id FROM group_members WHERE app = ? AND user = ? ORDER BY group_id",
    )
    .bind(app.as_str())
    .bind(user.as_str())
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    Ok(ids.into_iter().map(GroupId::from).collect())
}
