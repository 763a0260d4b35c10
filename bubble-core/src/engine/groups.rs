//! Groups: creation (a super group above the app's threshold), members
//! and roles, and the membership checks other use cases rely on.

use super::{CreateGroup, Engine, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::types::*;

impl Engine {
    /// Creates a group owned by `owner`. Groups above the app's threshold
    /// (or asked for as such) are super groups.
    pub async fn create_group(
        &self,
        app: &AppId,
        owner: &UserId,
        req: CreateGroup,
    ) -> Result<Group> {
        let settings = self.settings(app).await?;
        let id = match req.id {
            Some(id) => {
                validate_id("group id", id.as_str())?;
                if id.as_str().starts_with('~') {
                    return Err(Error::invalid("group ids starting with ~ are reserved"));
                }
                id
            }
            // The id's hash part: 80 bits that say nothing of when.
            None => GroupId::new(format!(
                "g{}",
                &self
                    .inner
                    .ids
                    .next(app, owner, &Conversation::system("group"), now_millis())
                    .to_hex()[2 * crate::ids::TIME_BYTES..]
            )),
        };
        let mut members: Vec<Member> = vec![Member::new(owner.clone(), Role::Owner)];
        for user in req.members {
            validate_id("member id", user.as_str())?;
            if !members.iter().any(|m| m.user == user) {
                members.push(Member::new(user, Role::Member));
            }
        }
        if members.len() as u64 > settings.max_group_members {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "{} members exceed this app's maximum of {}",
                    members.len(),
                    settings.max_group_members
                ),
            ));
        }
        let kind = if req.super_group || members.len() as u64 > settings.super_group_threshold {
            GroupKind::Super
        } else {
            GroupKind::Normal
        };
        let group = Group::new(id, req.name, kind, owner.clone());
        self.inner
            .groups
            .create_group(app, &group, &members)
            .await?;
        Ok(group)
    }

    /// A group's info.
    pub async fn group(&self, app: &AppId, id: &GroupId) -> Result<Group> {
        self.inner
            .groups
            .group(app, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("group {id} does not exist")))
    }

    /// Adds members. `actor` None means an administrator (admin API);
    /// otherwise the actor must be the group's owner or an admin. A group
    /// that grows past the app's threshold becomes a super group.
    pub async fn add_members(
        &self,
        app: &AppId,
        actor: Option<&UserId>,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        let settings = self.settings(app).await?;
        let group = self.group(app, id).await?;
        if let Some(actor) = actor {
            self.require_manager(app, id, actor).await?;
        }
        for u in users {
            validate_id("member id", u.as_str())?;
        }
        let count = self.inner.groups.member_count(app, id).await?;
        if count + users.len() as u64 > settings.max_group_members {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "group {id} would exceed this app's maximum of {} members",
                    settings.max_group_members
                ),
            ));
        }
        let members: Vec<Member> = users
            .iter()
            .map(|u| Member::new(u.clone(), Role::Member))
            .collect();
        let added = self.inner.groups.add_members(app, id, &members).await?;
        if group.kind == GroupKind::Normal
            && self.inner.groups.member_count(app, id).await? > settings.super_group_threshold
        {
            self.inner
                .groups
                .set_kind(app, id, GroupKind::Super)
                .await?;
        }
        Ok(added)
    }

    /// The caller joins a group.
    pub async fn join_group(&self, session: &Session, id: &GroupId) -> Result<()> {
        self.add_members(&session.app, None, id, std::slice::from_ref(&session.user))
            .await
            .map(|_| ())
    }

    /// The caller leaves a group.
    pub async fn leave_group(&self, session: &Session, id: &GroupId) -> Result<()> {
        let removed = self
            .inner
            .groups
            .remove_members(&session.app, id, std::slice::from_ref(&session.user))
            .await?;
        if removed == 0 {
            return Err(Error::not_found(format!(
                "{} is not a member of group {id}",
                session.user
            )));
        }
        Ok(())
    }

    /// Removes members (`actor` None: an administrator).
    pub async fn remove_members(
        &self,
        app: &AppId,
        actor: Option<&UserId>,
        id: &GroupId,
        users: &[UserId],
    ) -> Result<u64> {
        if let Some(actor) = actor {
            self.require_manager(app, id, actor).await?;
        }
        self.inner.groups.remove_members(app, id, users).await
    }

    pub(super) async fn require_manager(
        &self,
        app: &AppId,
        id: &GroupId,
        actor: &UserId,
    ) -> Result<()> {
        match self.inner.groups.member(app, id, actor).await? {
            Some(m) if m.role >= Role::Admin => Ok(()),
            _ => Err(Error::denied(format!(
                "{actor} is not an owner or admin of group {id}"
            ))),
        }
    }

    /// Members of a group (`asker` None: an administrator; otherwise members only).
    pub async fn members(
        &self,
        app: &AppId,
        id: &GroupId,
        asker: Option<&UserId>,
    ) -> Result<Vec<Member>> {
        match asker {
            Some(user) => {
                self.group_for_member(app, id, user).await?;
            }
            None => {
                self.group(app, id).await?;
            }
        }
        self.inner.groups.members(app, id).await
    }

    /// The group, if `user` is a member (`NotFound`, `PermissionDenied`
    /// otherwise).
    pub(super) async fn group_for_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
    ) -> Result<Group> {
        let group = self
            .inner
            .groups
            .group(app, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("group {id} does not exist")))?;
        if self.inner.groups.member(app, id, user).await?.is_none() {
            return Err(Error::denied(format!(
                "{user} is not a member of group {id}"
            )));
        }
        Ok(group)
    }
}
