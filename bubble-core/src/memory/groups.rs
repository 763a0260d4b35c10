use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::ports::GroupStore;
use crate::types::*;

struct Entry {
    group: Group,
    members: BTreeMap<UserId, Member>,
}

/// [`GroupStore`] in memory.
#[derive(Default)]
pub struct MemoryGroups {
    groups: Mutex<HashMap<(AppId, GroupId), Entry>>,
}

impl MemoryGroups {
    /// An empty store.
    pub fn new() -> MemoryGroups {
        MemoryGroups::default()
    }

    /// Applies `change` to a member; false if `user` is not one.
    fn change_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        change: impl FnOnce(&mut Member),
    ) -> Result<bool> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        Ok(entry.members.get_mut(user).map(change).is_some())
    }
}

/// Refuses a transfer from anyone but the owner, or to a non-member.
fn check_transfer(group: &Group, from: &UserId, to_is_member: bool, to: &UserId) -> Result<()> {
    if group.owner != *from {
        return Err(Error::invalid(format!(
            "{from} does not own group {}",
            group.id
        )));
    }
    if !to_is_member {
        return Err(Error::invalid(format!(
            "{to} is not a member of group {}",
            group.id
        )));
    }
    Ok(())
}

fn missing(id: &GroupId) -> Error {
    Error::not_found(format!("group {id} does not exist"))
}

#[async_trait]
impl GroupStore for MemoryGroups {
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()> {
        let mut groups = self.groups.lock();
        let key = (app.clone(), group.id.clone());
        if groups.contains_key(&key) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("group {} exists already", group.id),
            ));
        }
        let members = members
            .iter()
            .map(|m| (m.user.clone(), m.clone()))
            .collect();
        groups.insert(
            key,
            Entry {
                group: group.clone(),
                members,
            },
        );
        Ok(())
    }

    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>> {
        Ok(self
            .groups
            .lock()
            .get(&(app.clone(), id.clone()))
            .map(|e| e.group.clone()))
    }

    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        entry.group.kind = kind;
        Ok(())
    }

    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        let mut added = 0;
        for m in members {
            if !entry.members.contains_key(&m.user) {
                entry.members.insert(m.user.clone(), m.clone());
                added += 1;
            }
        }
        Ok(added)
    }

    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        Ok(users
            .iter()
            .filter(|u| entry.members.remove(*u).is_some())
            .count() as u64)
    }

    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>> {
        let groups = self.groups.lock();
        let entry = groups
            .get(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        Ok(entry.members.values().cloned().collect())
    }

    async fn roster(&self, app: &AppId, id: &GroupId) -> Result<Option<(Group, Vec<Member>)>> {
        Ok(self
            .groups
            .lock()
            .get(&(app.clone(), id.clone()))
            .map(|e| (e.group.clone(), e.members.values().cloned().collect())))
    }

    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>> {
        Ok(self
            .groups
            .lock()
            .get(&(app.clone(), id.clone()))
            .and_then(|e| e.members.get(user).cloned()))
    }

    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64> {
        let groups = self.groups.lock();
        let entry = groups
            .get(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        Ok(entry.members.len() as u64)
    }

    async fn update_group(&self, app: &AppId, group: &Group) -> Result<()> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), group.id.clone()))
            .ok_or_else(|| missing(&group.id))?;
        entry.group.name = group.name.clone();
        entry.group.avatar_url = group.avatar_url.clone();
        entry.group.announcement = group.announcement.clone();
        entry.group.muted = group.muted;
        Ok(())
    }

    async fn set_role(&self, app: &AppId, id: &GroupId, user: &UserId, role: Role) -> Result<bool> {
        self.change_member(app, id, user, |m| m.role = role)
    }

    async fn mute_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool> {
        self.change_member(app, id, user, |m| m.muted_until = until)
    }

    async fn transfer_owner(
        &self,
        app: &AppId,
        id: &GroupId,
        from: &UserId,
        to: &UserId,
    ) -> Result<()> {
        let mut groups = self.groups.lock();
        let entry = groups
            .get_mut(&(app.clone(), id.clone()))
            .ok_or_else(|| missing(id))?;
        check_transfer(&entry.group, from, entry.members.contains_key(to), to)?;
        if let Some(m) = entry.members.get_mut(from) {
            m.role = Role::Admin;
        }
        if let Some(m) = entry.members.get_mut(to) {
            m.role = Role::Owner;
        }
        entry.group.owner = to.clone();
        Ok(())
    }

    async fn delete_group(&self, app: &AppId, id: &GroupId) -> Result<bool> {
        Ok(self
            .groups
            .lock()
            .remove(&(app.clone(), id.clone()))
            .is_some())
    }

    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>> {
        let groups = self.groups.lock();
        let mut ids: Vec<GroupId> = groups
            .iter()
            .filter(|((a, _), e)| a == app && e.members.contains_key(user))
            .map(|((_, g), _)| g.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }
}
