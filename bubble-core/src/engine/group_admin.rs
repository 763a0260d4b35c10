//! Running a group: its info (name, avatar, announcement), roles, muting a
//! member or the whole group, handing ownership on, dismissing it, and
//! the list of a user's groups. Every change is announced to the members
//! by a notice in the group (a SYSTEM_NOTICE entry of custom type
//! [`GROUP_NOTICE_TYPE`]), so every device learns it by the version sync.

use bubble_proto::pb;

use super::{Engine, Session, SystemTarget};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

/// The custom content type of a group change notice: a JSON object with
/// `event`, `group` and `by`, and the event's own fields.
pub const GROUP_NOTICE_TYPE: &str = "bubble.group";

/// The longest announcement, in bytes.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 4096;

/// The longest group name or avatar URL, in bytes.
pub const MAX_GROUP_FIELD_BYTES: usize = 512;

/// Which parts of a group's info to change; `None` keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChange {
    /// Display name.
    pub name: Option<String>,
    /// Picture URL ("" removes it).
    pub avatar_url: Option<String>,
    /// Announcement ("" removes it).
    pub announcement: Option<String>,
    /// Only the owner and admins may write.
    pub muted: Option<bool>,
}

/// A group with its member count, as a list of groups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group.
    pub group: Group,
    /// How many members it has.
    pub members: u64,
}

fn too_long(what: &str, max: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        format!("a group's {what} is at most {max} bytes"),
    )
}

impl Engine {
    /// The groups the caller is a member of, in id order, each with its
    /// member count.
    pub async fn my_groups(&self, session: &Session) -> Result<Vec<GroupSummary>> {
        let (app, groups) = (&session.app, &self.inner.groups);
        let mut out = Vec::new();
        for id in groups.groups_of(app, &session.user).await? {
            // A group dismissed between the two reads is left out.
            if let Some(group) = groups.group(app, &id).await? {
                let members = groups.member_count(app, &id).await?;
                out.push(GroupSummary { group, members });
            }
        }
        Ok(out)
    }

    /// Changes a group's name, avatar, announcement or group-wide mute:
    /// the owner and admins only. Members get a notice (`"info"`).
    pub async fn change_group(
        &self,
        session: &Session,
        id: &GroupId,
        change: &GroupChange,
    ) -> Result<Group> {
        let app = &session.app;
        let mut group = self.group_for_member(app, id, &session.user).await?;
        self.require_manager(app, id, &session.user).await?;
        if let Some(name) = &change.name {
            if name.len() > MAX_GROUP_FIELD_BYTES {
                return Err(too_long("name", MAX_GROUP_FIELD_BYTES));
            }
            group.name = name.clone();
        }
        if let Some(url) = &change.avatar_url {
            if url.len() > MAX_GROUP_FIELD_BYTES {
                return Err(too_long("avatar URL", MAX_GROUP_FIELD_BYTES));
            }
            let web = url.starts_with("https://") || url.starts_with("http://");
            if !url.is_empty() && !web {
                return Err(Error::invalid("a group's avatar URL is an http(s) URL"));
            }
            group.avatar_url = url.clone();
        }
        if let Some(text) = &change.announcement {
            if text.len() > MAX_ANNOUNCEMENT_BYTES {
                return Err(too_long("announcement", MAX_ANNOUNCEMENT_BYTES));
            }
            group.announcement = text.clone();
        }
        if let Some(muted) = change.muted {
            group.muted = muted;
        }
        self.inner.groups.update_group(app, &group).await?;
        self.group_notice(
            session,
            id,
            "info",
            serde_json::json!({
                "name": group.name,
                "avatar_url": group.avatar_url,
                "announcement": group.announcement,
                "muted": group.muted,
            }),
        )
        .await?;
        Ok(group)
    }

    /// Makes a member an admin or a plain member again: the owner only.
    /// Members get a notice (`"role"`).
    pub async fn set_member_role(
        &self,
        session: &Session,
        id: &GroupId,
        user: &UserId,
        role: Role,
    ) -> Result<()> {
        let app = &session.app;
        let group = self.group_for_member(app, id, &session.user).await?;
        if group.owner != session.user {
            return Err(Error::denied(format!(
                "only the owner of group {id} names admins"
            )));
        }
        if role == Role::Owner || *user == group.owner {
            return Err(Error::invalid(
                "ownership moves by a transfer, not by a role change",
            ));
        }
        if !self.inner.groups.set_role(app, id, user, role).await? {
            return Err(Error::not_found(format!(
                "{user} is not a member of group {id}"
            )));
        }
        let role_name = if role == Role::Admin {
            "admin"
        } else {
            "member"
        };
        self.group_notice(
            session,
            id,
            "role",
            serde_json::json!({"user": user.as_str(), "role": role_name}),
        )
        .await
    }

    /// Hands the group to another member: the owner only; the old owner
    /// becomes an admin. Members get a notice (`"owner"`).
    pub async fn transfer_group(&self, session: &Session, id: &GroupId, to: &UserId) -> Result<()> {
        let app = &session.app;
        let group = self.group_for_member(app, id, &session.user).await?;
        if group.owner != session.user {
            return Err(Error::denied(format!(
                "only the owner of group {id} hands it on"
            )));
        }
        self.inner
            .groups
            .transfer_owner(app, id, &session.user, to)
            .await?;
        self.group_notice(
            session,
            id,
            "owner",
            serde_json::json!({"user": to.as_str()}),
        )
        .await
    }

    /// Mutes a member until `until` (ms; 0 lifts it): the owner and admins,
    /// of members below their own role. Members get a notice (`"mute"`).
    pub async fn mute_member(
        &self,
        session: &Session,
        id: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<()> {
        let app = &session.app;
        self.group_for_member(app, id, &session.user).await?;
        let actor = self
            .inner
            .groups
            .member(app, id, &session.user)
            .await?
            .map_or(Role::Member, |m| m.role);
        let target = self
            .inner
            .groups
            .member(app, id, user)
            .await?
            .ok_or_else(|| Error::not_found(format!("{user} is not a member of group {id}")))?;
        if actor < Role::Admin || target.role >= actor {
            return Err(Error::denied(format!(
                "{} may not mute {user} in group {id}: only the owner and admins mute, and only members below them",
                session.user
            )));
        }
        self.inner.groups.mute_member(app, id, user, until).await?;
        self.group_notice(
            session,
            id,
            "mute",
            serde_json::json!({"user": user.as_str(), "until": until}),
        )
        .await
    }

    /// Dismisses a group: the owner only. Members get a last notice
    /// (`"dismissed"`); then the group and its memberships are gone (what
    /// was said stays in everyone's history).
    pub async fn dismiss_group(&self, session: &Session, id: &GroupId) -> Result<()> {
        let app = &session.app;
        let group = self.group_for_member(app, id, &session.user).await?;
        if group.owner != session.user {
            return Err(Error::denied(format!(
                "only the owner of group {id} dismisses it"
            )));
        }
        self.group_notice(session, id, "dismissed", serde_json::json!({}))
            .await?;
        self.inner.groups.delete_group(app, id).await?;
        Ok(())
    }

    /// Adds members on a member's behalf: the owner and admins only.
    /// Members (the new ones included) get a notice (`"joined"`).
    pub async fn add_group_members(
        &self,
        session: &Session,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        let added = self
            .add_members(&session.app, Some(&session.user), id, users)
            .await?;
        let names: Vec<&str> = users.iter().map(UserId::as_str).collect();
        self.group_notice(session, id, "joined", serde_json::json!({"users": names}))
            .await?;
        Ok(added)
    }

    /// Removes members on a member's behalf: the owner and admins only,
    /// never the owner. Those left get a notice (`"removed"`).
    pub async fn remove_group_members(
        &self,
        session: &Session,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        let group = self
            .group_for_member(&session.app, id, &session.user)
            .await?;
        if users.contains(&group.owner) {
            return Err(Error::denied(format!(
                "the owner of group {id} cannot be removed; hand the group on first"
            )));
        }
        let removed = self
            .remove_members(&session.app, Some(&session.user), id, users)
            .await?;
        let names: Vec<&str> = users.iter().map(UserId::as_str).collect();
        self.group_notice(session, id, "removed", serde_json::json!({"users": names}))
            .await?;
        Ok(removed)
    }

    /// Refuses a message from a member the group's mute (or their own)
    /// silences.
    pub(super) fn check_may_write(group: &Group, member: &Member, now: i64) -> Result<()> {
        if group.muted && member.role < Role::Admin {
            return Err(Error::denied(format!(
                "group {} is muted: only its owner and admins write",
                group.id
            )));
        }
        if member.muted_until > now {
            return Err(Error::denied(format!(
                "{} is muted in group {} for {} more seconds",
                member.user,
                group.id,
                (member.muted_until - now + 999) / 1000
            )));
        }
        Ok(())
    }

    /// Tells the group's members of a change made by the caller: a notice
    /// in the group, custom JSON of type [`GROUP_NOTICE_TYPE`].
    async fn group_notice(
        &self,
        session: &Session,
        id: &GroupId,
        event: &str,
        mut fields: serde_json::Value,
    ) -> Result<()> {
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), event.into());
            map.insert("group".into(), id.as_str().into());
            map.insert("by".into(), session.user.as_str().into());
        }
        let content = Content::custom(&pb::Custom {
            format: pb::CustomFormat::Json as i32,
            r#type: GROUP_NOTICE_TYPE.into(),
            body: fields.to_string().into_bytes().into(),
        });
        self.system_push(&session.app, SystemTarget::Group(id.clone()), content, &[])
            .await?;
        Ok(())
    }
}
