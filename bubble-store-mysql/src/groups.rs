//! `GroupStore`: groups and their members.
//!
//! Membership changes lock the group's row first (`SELECT … FOR UPDATE`), so
//! adds and removes of one group apply one after another on every node and
//! the counts they return are exact.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnection;

use bubble_core::ports::GroupStore;
use bubble_core::{
    AppId, Error, ErrorKind, Group, GroupId, GroupKind, Member, Result, Role, UserId,
};

use crate::client::MysqlStore;
use crate::error::{commit_err, map_err};
use crate::rows::{self, dynamic};

const MEMBER_CHUNK: usize = 1000;

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

fn missing(id: &GroupId) -> Error {
    Error::not_found(format!("group {id} does not exist"))
}

fn corrupt(e: Error) -> Error {
    Error::internal(format!(
        "mysql: a stored group value is out of range: {}",
        e.message()
    ))
}

fn group_from(row: &sqlx::mysql::MySqlRow) -> Result<Group> {
    Ok(Group {
        id: GroupId::from(rows::text(row, "id")?),
        name: rows::get(row, "name")?,
        kind: GroupKind::from_u8(rows::get(row, "kind")?).map_err(corrupt)?,
        owner: UserId::from(rows::text(row, "owner")?),
        created_at: rows::get(row, "created_at")?,
    })
}

fn member_from(row: &sqlx::mysql::MySqlRow) -> Result<Member> {
    Ok(Member {
        user: UserId::from(rows::text(row, "user_id")?),
        role: Role::from_u8(rows::get(row, "role")?).map_err(corrupt)?,
        joined_at: rows::get(row, "joined_at")?,
    })
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
            "INSERT INTO group_members (app, group_id, user_id, role, joined_at) VALUES {}",
            rows::values(chunk.len(), 5)
        );
        let mut q = sqlx::query(dynamic(sql));
        for m in chunk {
            q = q
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .bind(b(m.user.as_str()))
                .bind(m.role as u8)
                .bind(m.joined_at);
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
                "INSERT INTO chat_groups (app, id, name, kind, owner, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(b(app.as_str()))
            .bind(b(group.id.as_str()))
            .bind(&group.name)
            .bind(group.kind as u8)
            .bind(b(group.owner.as_str()))
            .bind(group.created_at)
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
                sqlx::query(
            "SELECT id, name, kind, owner, created_at FROM chat_groups WHERE app = ? AND id = ?",
        )
        .bind(b(app.as_str()))
        .bind(b(id.as_str()))
        .fetch_optional(&pool).await.map_err(map_err)
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
        // One round trip: the group row tells "no group" from "no members".
        let found = self
            .read(|pool| async move {
                sqlx::query(
                    "SELECT m.user_id, m.role, m.joined_at FROM chat_groups g \
             LEFT JOIN group_members m ON m.app = g.app AND m.group_id = g.id \
             WHERE g.app = ? AND g.id = ? ORDER BY m.user_id",
                )
                .bind(b(app.as_str()))
                .bind(b(id.as_str()))
                .fetch_all(&pool)
                .await
                .map_err(map_err)
            })
            .await?;
        if found.is_empty() {
            return Err(missing(id));
        }
        let mut members = Vec::with_capacity(found.len());
        for row in &found {
            let user: Option<Vec<u8>> = rows::get(row, "user_id")?;
            if user.is_some() {
                members.push(member_from(row)?);
            }
        }
        Ok(members)
    }

    async fn roster(&self, app: &AppId, id: &GroupId) -> Result<Option<(Group, Vec<Member>)>> {
        // One round trip: the group's columns repeat on every member row.
        let found = self
            .read(|pool| async move {
                sqlx::query(
            "SELECT g.id, g.name, g.kind, g.owner, g.created_at, m.user_id, m.role, m.joined_at \
             FROM chat_groups g LEFT JOIN group_members m ON m.app = g.app AND m.group_id = g.id \
             WHERE g.app = ? AND g.id = ? ORDER BY m.user_id",
        )
        .bind(b(app.as_str()))
        .bind(b(id.as_str()))
        .fetch_all(&pool).await.map_err(map_err)
            })
            .await?;
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let group = group_from(first)?;
        let mut members = Vec::with_capacity(found.len());
        for row in &found {
            let user: Option<Vec<u8>> = rows::get(row, "user_id")?;
            if user.is_some() {
                members.push(member_from(row)?);
            }
        }
        Ok(Some((group, members)))
    }

    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        let row = self
            .read(|pool| async move {
                sqlx::query(
                    "SELECT user_id, role, joined_at FROM group_members \
             WHERE app = ? AND group_id = ? AND user_id = ?",
                )
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
}
