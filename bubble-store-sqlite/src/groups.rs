//! [`GroupStore`] on SQLite: groups and members, the writes the writer
//! applies and the reads.

use async_trait::async_trait;
use bubble_core::ports::GroupStore;
use bubble_core::{
    AppId, Error, ErrorKind, Group, GroupId, GroupKind, Member, Result, Role, UserId,
};
use rusqlite::{Connection, params};

use crate::client::SqliteStore;
use crate::error::map_sqlite;
use crate::rows;
use crate::writer::WriteOp;

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()> {
        self.write(Create {
            app: app.clone(),
            group: group.clone(),
            members: members.to_vec(),
        })
        .await
    }

    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
        let app = app.clone();
        let id = id.clone();
        self.read(move |conn| group(conn, &app, &id)).await
    }

    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()> {
        self.write(SetKind {
            app: app.clone(),
            id: id.clone(),
            kind,
        })
        .await
    }

    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64> {
        self.write(AddMembers {
            app: app.clone(),
            id: id.clone(),
            members: members.to_vec(),
        })
        .await
    }

    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64> {
        self.write(RemoveMembers {
            app: app.clone(),
            id: id.clone(),
            users: users.to_vec(),
        })
        .await
    }

    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
        let app = app.clone();
        let id = id.clone();
        self.read(move |conn| members(conn, &app, &id)).await
    }

    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        let app = app.clone();
        let id = id.clone();
        let user = user.clone();
        self.read(move |conn| member(conn, &app, &id, &user)).await
    }

    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64> {
        let app = app.clone();
        let id = id.clone();
        self.read(move |conn| member_count(conn, &app, &id)).await
    }

    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        let app = app.clone();
        let user = user.clone();
        self.read(move |conn| groups_of(conn, &app, &user)).await
    }

    async fn update_group(&self, app: &AppId, group: &Group) -> Result<()> {
        self.write(UpdateGroup {
            app: app.clone(),
            group: group.clone(),
        })
        .await
    }

    async fn set_role(&self, app: &AppId, id: &GroupId, user: &UserId, role: Role) -> Result<bool> {
        self.write(ChangeMember {
            app: app.clone(),
            id: id.clone(),
            user: user.clone(),
            change: MemberChange::Role(role),
        })
        .await
    }

    async fn mute_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool> {
        self.write(ChangeMember {
            app: app.clone(),
            id: id.clone(),
            user: user.clone(),
            change: MemberChange::MutedUntil(until),
        })
        .await
    }

    async fn transfer_owner(
        &self,
        app: &AppId,
        id: &GroupId,
        from: &UserId,
        to: &UserId,
    ) -> Result<()> {
        self.write(TransferOwner {
            app: app.clone(),
            id: id.clone(),
            from: from.clone(),
            to: to.clone(),
        })
        .await
    }

    async fn delete_group(&self, app: &AppId, id: &GroupId) -> Result<bool> {
        self.write(DeleteGroup {
            app: app.clone(),
            id: id.clone(),
        })
        .await
    }
}

fn missing(id: &GroupId) -> Error {
    Error::not_found(format!("group {id} does not exist"))
}

/// A member from `user, role, joined_at, muted_until`.
pub(crate) fn member_of(row: &rusqlite::Row<'_>) -> Result<Member> {
    Ok(Member {
        user: UserId::from(rows::text(row, 0)?),
        role: rows::code(row, 1, "member role", Role::from_u8)?,
        joined_at: rows::int(row, 2)?,
        muted_until: rows::int(row, 3)?,
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
                "INSERT INTO chat_groups (app, id, name, kind, owner, created_at, avatar_url, \
                 announcement, muted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (app, id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.app.as_str(),
                    g.id.as_str(),
                    g.name.as_str(),
                    g.kind as u8 as i64,
                    g.owner.as_str(),
                    g.created_at,
                    g.avatar_url.as_str(),
                    g.announcement.as_str(),
                    i64::from(g.muted),
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
                "INSERT INTO group_members (app, group_id, user, role, joined_at, muted_until) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (app, group_id, user) DO UPDATE SET role = excluded.role, \
                 joined_at = excluded.joined_at, muted_until = excluded.muted_until",
            )
            .map_err(map_sqlite)?;
        for m in &self.members {
            put.execute(params![
                self.app.as_str(),
                g.id.as_str(),
                m.user.as_str(),
                m.role as u8 as i64,
                m.joined_at,
                m.muted_until
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
                "INSERT INTO group_members (app, group_id, user, role, joined_at, muted_until) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app, group_id, user) DO NOTHING",
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
                    m.joined_at,
                    m.muted_until
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

/// [`GroupStore::update_group`](bubble_core::ports::GroupStore::update_group).
pub(crate) struct UpdateGroup {
    pub app: AppId,
    pub group: Group,
}

impl WriteOp for UpdateGroup {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let g = &self.group;
        let changed = conn
            .prepare_cached(
                "UPDATE chat_groups SET name = ?, avatar_url = ?, announcement = ?, muted = ? \
                 WHERE app = ? AND id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    g.name.as_str(),
                    g.avatar_url.as_str(),
                    g.announcement.as_str(),
                    i64::from(g.muted),
                    self.app.as_str(),
                    g.id.as_str()
                ])
            })
            .map_err(map_sqlite)?;
        if changed == 0 {
            return Err(missing(&g.id));
        }
        Ok(())
    }
}

/// One member's role or mute.
pub(crate) enum MemberChange {
    Role(Role),
    MutedUntil(i64),
}

/// [`GroupStore::set_role`](bubble_core::ports::GroupStore::set_role) and
/// [`GroupStore::mute_member`](bubble_core::ports::GroupStore::mute_member).
pub(crate) struct ChangeMember {
    pub app: AppId,
    pub id: GroupId,
    pub user: UserId,
    pub change: MemberChange,
}

impl WriteOp for ChangeMember {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        if !exists_in(conn, &self.app, &self.id)? {
            return Err(missing(&self.id));
        }
        let (sql, value) = match self.change {
            MemberChange::Role(role) => (
                "UPDATE group_members SET role = ? WHERE app = ? AND group_id = ? AND user = ?",
                role as u8 as i64,
            ),
            MemberChange::MutedUntil(until) => (
                "UPDATE group_members SET muted_until = ? \
                 WHERE app = ? AND group_id = ? AND user = ?",
                until,
            ),
        };
        let changed = conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.execute(params![
                    value,
                    self.app.as_str(),
                    self.id.as_str(),
                    self.user.as_str()
                ])
            })
            .map_err(map_sqlite)?;
        Ok(changed > 0)
    }
}

/// [`GroupStore::transfer_owner`](bubble_core::ports::GroupStore::transfer_owner).
pub(crate) struct TransferOwner {
    pub app: AppId,
    pub id: GroupId,
    pub from: UserId,
    pub to: UserId,
}

impl WriteOp for TransferOwner {
    type Output = ();

    fn apply(&self, conn: &Connection) -> Result<()> {
        let g = group(conn, &self.app, &self.id)?.ok_or_else(|| missing(&self.id))?;
        if g.owner != self.from {
            return Err(Error::invalid(format!(
                "{} does not own group {}",
                self.from, self.id
            )));
        }
        if member(conn, &self.app, &self.id, &self.to)?.is_none() {
            return Err(Error::invalid(format!(
                "{} is not a member of group {}",
                self.to, self.id
            )));
        }
        let set_role = |user: &UserId, role: Role| {
            conn.prepare_cached(
                "UPDATE group_members SET role = ? WHERE app = ? AND group_id = ? AND user = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    role as u8 as i64,
                    self.app.as_str(),
                    self.id.as_str(),
                    user.as_str()
                ])
            })
            .map_err(map_sqlite)
        };
        set_role(&self.from, Role::Admin)?;
        set_role(&self.to, Role::Owner)?;
        conn.prepare_cached("UPDATE chat_groups SET owner = ? WHERE app = ? AND id = ?")
            .and_then(|mut s| {
                s.execute(params![
                    self.to.as_str(),
                    self.app.as_str(),
                    self.id.as_str()
                ])
            })
            .map_err(map_sqlite)?;
        Ok(())
    }
}

/// [`GroupStore::delete_group`](bubble_core::ports::GroupStore::delete_group).
pub(crate) struct DeleteGroup {
    pub app: AppId,
    pub id: GroupId,
}

impl WriteOp for DeleteGroup {
    type Output = bool;

    fn apply(&self, conn: &Connection) -> Result<bool> {
        let args = params![self.app.as_str(), self.id.as_str()];
        conn.prepare_cached("DELETE FROM group_members WHERE app = ? AND group_id = ?")
            .and_then(|mut s| s.execute(args))
            .map_err(map_sqlite)?;
        let deleted = conn
            .prepare_cached("DELETE FROM chat_groups WHERE app = ? AND id = ?")
            .and_then(|mut s| s.execute(args))
            .map_err(map_sqlite)?;
        Ok(deleted > 0)
    }
}

// ------------------------------------------------------------------ reads

/// One group.
pub(crate) fn group(conn: &Connection, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, kind, owner, created_at, avatar_url, announcement, muted \
             FROM chat_groups WHERE app = ? AND id = ?",
        )
        .map_err(map_sqlite)?;
    rows::first(&mut stmt, params![app.as_str(), id.as_str()], group_of)
}

/// A group from `id, name, kind, owner, created_at, avatar_url,
/// announcement, muted`.
pub(crate) fn group_of(row: &rusqlite::Row<'_>) -> Result<Group> {
    Ok(Group {
        id: GroupId::from(rows::text(row, 0)?),
        name: rows::text(row, 1)?,
        kind: rows::code(row, 2, "group kind", GroupKind::from_u8)?,
        owner: UserId::from(rows::text(row, 3)?),
        created_at: rows::int(row, 4)?,
        avatar_url: rows::text(row, 5)?,
        announcement: rows::text(row, 6)?,
        muted: rows::int(row, 7)? != 0,
    })
}

/// Runs `read` in one read transaction after checking the group exists, so
/// "the group exists" and what `read` finds describe the same moment.
fn in_existing_group<T>(
    conn: &Connection,
    app: &AppId,
    id: &GroupId,
    read: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
    if !exists_in(conn, app, id)? {
        return Err(missing(id));
    }
    let found = read()?;
    tx.commit().map_err(map_sqlite)?;
    Ok(found)
}

/// Every member, in user order.
pub(crate) fn members(conn: &Connection, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
    in_existing_group(conn, app, id, || {
        let mut stmt = conn
            .prepare_cached(
                "SELECT user, role, joined_at, muted_until FROM group_members \
                 WHERE app = ? AND group_id = ? ORDER BY user",
            )
            .map_err(map_sqlite)?;
        rows::all(&mut stmt, params![app.as_str(), id.as_str()], member_of)
    })
}

/// One member.
pub(crate) fn member(
    conn: &Connection,
    app: &AppId,
    id: &GroupId,
    user: &UserId,
) -> Result<Option<Member>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT user, role, joined_at, muted_until FROM group_members \
             WHERE app = ? AND group_id = ? AND user = ?",
        )
        .map_err(map_sqlite)?;
    rows::first(
        &mut stmt,
        params![app.as_str(), id.as_str(), user.as_str()],
        member_of,
    )
}

/// How many members.
pub(crate) fn member_count(conn: &Connection, app: &AppId, id: &GroupId) -> Result<u64> {
    in_existing_group(conn, app, id, || {
        let mut stmt = conn
            .prepare_cached("SELECT COUNT(*) FROM group_members WHERE app = ? AND group_id = ?")
            .map_err(map_sqlite)?;
        let n = rows::first(&mut stmt, params![app.as_str(), id.as_str()], |row| {
            rows::int(row, 0)
        })?;
        Ok(n.map_or(0, rows::from_stored))
    })
}

/// The groups a user is in, in id order.
pub(crate) fn groups_of(conn: &Connection, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT group_id FROM group_members WHERE app = ? AND user = ? ORDER BY group_id",
        )
        .map_err(map_sqlite)?;
    rows::all(&mut stmt, params![app.as_str(), user.as_str()], |row| {
        Ok(GroupId::from(rows::text(row, 0)?))
    })
}
