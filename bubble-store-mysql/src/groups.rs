//! `GroupStore`: groups and their members.
//!
//! Membership changes (adds, removes, roles, mutes, a transfer of
//! ownership) lock the group's row first (`SELECT … FOR UPDATE`), so they
//! apply one after another per group on every node, the counts they return
//! are exact, and a transfer's checks hold until it commits.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnection;

use bubble_core::ports::GroupStore;
use bubble_core::{
    AppId, Error, ErrorKind, Group, GroupId, GroupKind, Member, Result, Role, UserId,
};

use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::rows::{self, b, dynamic};

const MEMBER_CHUNK: usize = 1000;

fn missing(id: &GroupId) -> Error {
    Error::not_found(format!("group {id} does not exist"))
}

pub(crate) fn group_from(row: &impl rows::Columns) -> Result<Group> {
    Ok(Group {
        id: GroupId::from(rows::text(row, "id")?),
        name: rows::get(row, "name")?,
        kind: rows::code(row, "kind", GroupKind::from_u8)?,
        owner: UserId::from(rows::text(row, "owner")?),
        created_at: rows::get(row, "created_at")?,
        avatar_url: rows::text(row, "avatar_url")?,
        announcement: rows::text(row, "announcement")?,
        muted: rows::get::<u8>(row, "muted")? != 0,
    })
}

pub(crate) fn member_from(row: &impl rows::Columns) -> Result<Member> {
    Ok(Member {
        user: UserId::from(rows::text(row, "user_id")?),
        role: rows::code(row, "role", Role::from_u8)?,
        joined_at: rows::get(row, "joined_at")?,
        muted_until: rows::get(row, "muted_until")?,
    })
}

/// The columns [`group_from`] reads, of `chat_groups` aliased `g`.
macro_rules! group_columns {
    () => {
        "g.id, g.name, g.kind, g.owner, g.created_at, g.avatar_url, g.announcement, g.muted"
    };
}
pub(crate) use group_columns;

/// The columns [`member_from`] reads, of `group_members` aliased `m`.
macro_rules! member_columns {
    () => {
        "m.user_id, m.role, m.joined_at, m.muted_until"
    };
}
pub(crate) use member_columns;

/// Locks the group's row and reads its owner; `NotFound` if there is none.
async fn lock_owner(conn: &mut MySqlConnection, app: &AppId, id: &GroupId) -> Result<UserId> {
    let owner: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT owner FROM chat_groups WHERE app = ? AND id = ? FOR UPDATE")
            .bind(b(app.as_str()))
            .bind(b(id.as_str()))
            .fetch_optional(conn)
            .await
            .map_err(map_err)?;
    let owner = owner.ok_or_else(|| missing(id))?;
    String::from_utf8(owner)
        .map(UserId::from)
        .map_err(|_| Error::internal("mysql: column owner holds bytes that are not UTF-8"))
}

/// Sets one column of one member, the group's row locked first: false if
/// `user` is not a member, `NotFound` if there is no group.
async fn change_member(
    store: &MysqlStore,
    app: &AppId,
    id: &GroupId,
    user: &UserId,
    change: MemberChange,
) -> Result<bool> {
    let (sql, value) = match change {
        MemberChange::Role(role) => (
            "UPDATE group_members SET role = ? WHERE app = ? AND group_id = ? AND user_id = ?",
            i64::from(role as u8),
        ),
        MemberChange::MutedUntil(until) => (
            "UPDATE group_members SET muted_until = ? \
             WHERE app = ? AND group_id = ? AND user_id = ?",
            until,
        ),
    };
    store
        .write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            lock_group(&mut tx, app, id).await?;
            // FOUND_ROWS: matched rows, so setting the value it has is true.
            let matched = sqlx::query(sql)
                .bind(value)
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .bind(b(user.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            tx.commit().await.map_err(commit_err)?;
            Ok(matched > 0)
        })
        .await
}

/// What [`change_member`] sets.
#[derive(Clone, Copy)]
enum MemberChange {
    Role(Role),
    MutedUntil(i64),
}

/// Locks the group's row for the rest of the transaction; `NotFound` if there is none.
async fn lock_group(conn: &mut MySqlConnection, app: &AppId, id: &GroupId) -> Result<()> {
    let found: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT id FROM chat_groups WHERE app = ? AND id = ? FOR UPDATE")
            .bind(b(app.as_str()))
            .bind(b(id.as_str()))
            .fetch_optional(conn)
            .await
            .map_err(map_err)?;
    found.map(|_| ()).ok_or_else(|| missing(id))
}

/// Inserts members that are known to be new (input deduplicated, existing ones left out).
async fn insert_members(
    conn: &mut MySqlConnection,
    app: &AppId,
    id: &GroupId,
    members: &[&Member],
) -> Result<()> {
    for chunk in members.chunks(MEMBER_CHUNK) {
        let sql = format!(
            "INSERT INTO group_members (app, group_id, user_id, role, joined_at, muted_until) \
             VALUES {}",
            rows::values(chunk.len(), 6)
        );
        let mut q = sqlx::query(dynamic(sql));
        for m in chunk {
            q = q
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .bind(b(m.user.as_str()))
                .bind(m.role as u8)
                .bind(m.joined_at)
                .bind(m.muted_until);
        }
        q.execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl GroupStore for MysqlStore {
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()> {
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            let created = sqlx::query(
                "INSERT INTO chat_groups (app, id, name, kind, owner, created_at, avatar_url, \
                 announcement, muted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b(app.as_str()))
            .bind(b(group.id.as_str()))
            .bind(&group.name)
            .bind(group.kind as u8)
            .bind(b(group.owner.as_str()))
            .bind(group.created_at)
            .bind(b(&group.avatar_url))
            .bind(b(&group.announcement))
            .bind(u8::from(group.muted))
            .execute(&mut *tx)
            .await;
            match created.map_err(map_err) {
                Ok(_) => {}
                // The id is the key: say which group, not which index.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("group {} exists already", group.id),
                    ));
                }
                Err(e) => return Err(e),
            }
            // The same user twice: the last one wins, as in a map.
            let unique: BTreeMap<&UserId, &Member> = members.iter().map(|m| (&m.user, m)).collect();
            let unique: Vec<&Member> = unique.into_values().collect();
            insert_members(&mut tx, app, &group.id, &unique).await?;
            tx.commit().await.map_err(commit_err)
        })
        .await
    }

    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
        let row = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT ",
                    group_columns!(),
                    " FROM chat_groups g WHERE g.app = ? AND g.id = ?"
                ))
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .fetch_optional(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        row.as_ref().map(group_from).transpose()
    }

    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()> {
        // The client flag FOUND_ROWS makes this count matched rows, so 0 means no group.
        let matched = self
            .write(|pool| async move {
                sqlx::query("UPDATE chat_groups SET kind = ? WHERE app = ? AND id = ?")
                    .bind(kind as u8)
                    .bind(b(app.as_str()))
                    .bind(b(id.as_str()))
                    .execute(&pool)
                    .await
                    .map_err(map_err)
            })
            .await?
            .rows_affected();
        if matched == 0 {
            return Err(missing(id));
        }
        Ok(())
    }

    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64> {
        self.write(|pool| async move {
        let mut tx = pool.begin().await.map_err(map_err)?;
        lock_group(&mut tx, app, id).await?;
        // Keep the first of each user, and only users not yet members.
        let mut wanted: BTreeMap<&UserId, &Member> = BTreeMap::new();
        for m in members {
            wanted.entry(&m.user).or_insert(m);
        }
        let users: Vec<&UserId> = wanted.keys().copied().collect();
        for chunk in users.chunks(MEMBER_CHUNK) {
            let sql = format!(
                "SELECT user_id FROM group_members WHERE app = ? AND group_id = ? AND user_id IN {}",
                rows::row_placeholders(chunk.len())
            );
            let mut q = sqlx::query(dynamic(sql))
                .bind(b(app.as_str()))
                .bind(b(id.as_str()));
            for u in chunk {
                q = q.bind(b(u.as_str()));
            }
            for row in q.fetch_all(&mut *tx).await.map_err(map_err)? {
                wanted.remove(&UserId::from(rows::text(&row, "user_id")?));
            }
        }
        let new: Vec<&Member> = wanted.into_values().collect();
        insert_members(&mut tx, app, id, &new).await?;
        tx.commit().await.map_err(commit_err)?;
        Ok(new.len() as u64)
        })
        .await
    }

    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64> {
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            lock_group(&mut tx, app, id).await?;
            let mut removed = 0;
            for chunk in users.chunks(MEMBER_CHUNK) {
                let sql = format!(
                    "DELETE FROM group_members WHERE app = ? AND group_id = ? AND user_id IN {}",
                    rows::row_placeholders(chunk.len())
                );
                let mut q = sqlx::query(dynamic(sql))
                    .bind(b(app.as_str()))
                    .bind(b(id.as_str()));
                for u in chunk {
                    q = q.bind(b(u.as_str()));
                }
                removed += q.execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            }
            tx.commit().await.map_err(commit_err)?;
            Ok(removed)
        })
        .await
    }

    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
        // The roster's read: the group row tells "no group" from "no members".
        match self.roster(app, id).await? {
            Some((_, members)) => Ok(members),
            None => Err(missing(id)),
        }
    }

    async fn roster(&self, app: &AppId, id: &GroupId) -> Result<Option<(Group, Vec<Member>)>> {
        self.inner.roster_reads.get((app.clone(), id.clone())).await
    }

    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        let row = self
            .read(|pool| async move {
                sqlx::query(concat!(
                    "SELECT ",
                    member_columns!(),
                    " FROM group_members m \
                     WHERE m.app = ? AND m.group_id = ? AND m.user_id = ?"
                ))
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .bind(b(user.as_str()))
                .fetch_optional(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        row.as_ref().map(member_from).transpose()
    }

    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64> {
        let n: Option<i64> = self.read(|pool| async move { sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM group_members m WHERE m.app = g.app AND m.group_id = g.id) \
             FROM chat_groups g WHERE g.app = ? AND g.id = ?",
        )
        .bind(b(app.as_str()))
        .bind(b(id.as_str()))
        .fetch_optional(&pool).await.map_err(map_err) }).await?;
        n.map(|n| n as u64).ok_or_else(|| missing(id))
    }

    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        let found = self
            .read(|pool| async move {
                sqlx::query(
            "SELECT group_id FROM group_members WHERE app = ? AND user_id = ? ORDER BY group_id",
        )
        .bind(b(app.as_str()))
        .bind(b(user.as_str()))
        .fetch_all(&pool).await.map_err(map_err)
            })
            .await?;
        found
            .iter()
            .map(|row| Ok(GroupId::from(rows::text(row, "group_id")?)))
            .collect()
    }

    async fn update_group(&self, app: &AppId, group: &Group) -> Result<()> {
        // FOUND_ROWS: matched rows, so 0 means no group (not "no change").
        let matched = self
            .write(|pool| async move {
                sqlx::query(
                    "UPDATE chat_groups SET name = ?, avatar_url = ?, announcement = ?, \
                     muted = ? WHERE app = ? AND id = ?",
                )
                .bind(&group.name)
                .bind(b(&group.avatar_url))
                .bind(b(&group.announcement))
                .bind(u8::from(group.muted))
                .bind(b(app.as_str()))
                .bind(b(group.id.as_str()))
                .execute(&pool)
                .await
                .map_err(map_err)
            })
            .await?
            .rows_affected();
        if matched == 0 {
            return Err(missing(&group.id));
        }
        Ok(())
    }

    async fn set_role(&self, app: &AppId, id: &GroupId, user: &UserId, role: Role) -> Result<bool> {
        change_member(self, app, id, user, MemberChange::Role(role)).await
    }

    async fn mute_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool> {
        change_member(self, app, id, user, MemberChange::MutedUntil(until)).await
    }

    async fn transfer_owner(
        &self,
        app: &AppId,
        id: &GroupId,
        from: &UserId,
        to: &UserId,
    ) -> Result<()> {
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            // The group's lock holds the owner and `to`'s membership (every
            // membership change takes it first) until the commit.
            let owner = lock_owner(&mut tx, app, id).await?;
            if owner != *from {
                return Err(Error::invalid(format!("{from} does not own group {id}")));
            }
            let is_member: Option<u8> = sqlx::query_scalar(
                "SELECT role FROM group_members WHERE app = ? AND group_id = ? AND user_id = ?",
            )
            .bind(b(app.as_str()))
            .bind(b(id.as_str()))
            .bind(b(to.as_str()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            if is_member.is_none() {
                // Dropping the transaction rolls it back: nothing changed.
                return Err(Error::invalid(format!(
                    "{to} is not a member of group {id}"
                )));
            }
            // Both roles in one statement (`to` wins when it is `from`).
            sqlx::query(
                "UPDATE group_members SET role = IF(user_id = ?, ?, ?) \
                 WHERE app = ? AND group_id = ? AND user_id IN (?, ?)",
            )
            .bind(b(to.as_str()))
            .bind(Role::Owner as u8)
            .bind(Role::Admin as u8)
            .bind(b(app.as_str()))
            .bind(b(id.as_str()))
            .bind(b(from.as_str()))
            .bind(b(to.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            sqlx::query("UPDATE chat_groups SET owner = ? WHERE app = ? AND id = ?")
                .bind(b(to.as_str()))
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(commit_err)
        })
        .await
    }

    async fn delete_group(&self, app: &AppId, id: &GroupId) -> Result<bool> {
        self.write(|pool| async move {
            let mut tx = pool.begin().await.map_err(map_err)?;
            // The group's row first, as every membership change locks it:
            // one waiting on it finds no group once this commits.
            let deleted = sqlx::query("DELETE FROM chat_groups WHERE app = ? AND id = ?")
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if deleted == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM group_members WHERE app = ? AND group_id = ?")
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(commit_err)?;
            Ok(true)
        })
        .await
    }
}
