//! Running a group from a member's device: the list of the user's groups,
//! the group's info, roles, mutes, ownership, members, dismissal. The
//! server checks who may do what (the owner and admins; some the owner
//! only) and tells every member by a group notice.

use bubble_core::GroupChange;
use bubble_proto::{Command, pb};

use crate::{Client, ClientError};

impl Client {
    /// The groups this user is a member of, each with its member count.
    pub async fn my_groups(&self) -> Result<Vec<pb::GroupInfo>, ClientError> {
        let list: pb::GroupList = self
            .call(Command::GroupsQuery, &pb::GroupsRequest {})
            .await?;
        Ok(list.groups)
    }

    /// Changes a group's name, avatar, announcement or group-wide mute
    /// (the owner and admins); the group's info after the change.
    pub async fn update_group(
        &self,
        id: &str,
        change: &GroupChange,
    ) -> Result<pb::GroupInfo, ClientError> {
        self.call(
            Command::GroupUpdate,
            &pb::GroupUpdateRequest {
                group_id: id.to_owned(),
                name: change.name.clone(),
                avatar_url: change.avatar_url.clone(),
                announcement: change.announcement.clone(),
                muted: change.muted,
            },
        )
        .await
    }

    /// Makes a member an admin (`admin`) or a plain member again: the owner only.
    pub async fn set_group_role(
        &self,
        id: &str,
        user: &str,
        admin: bool,
    ) -> Result<(), ClientError> {
        let role = if admin {
            pb::MemberRole::Admin
        } else {
            pb::MemberRole::Member
        };
        self.ok(
            Command::GroupSetRole,
            &pb::GroupRoleRequest {
                group_id: id.to_owned(),
                user_id: user.to_owned(),
                role: role as i32,
            },
        )
        .await
    }

    /// Hands the group to another member: the owner only.
    pub async fn transfer_group(&self, id: &str, to: &str) -> Result<(), ClientError> {
        self.ok(
            Command::GroupTransfer,
            &pb::GroupTransferRequest {
                group_id: id.to_owned(),
                user_id: to.to_owned(),
            },
        )
        .await
    }

    /// Mutes a member until `until` (ms since the epoch; 0 lifts it).
    pub async fn mute_group_member(
        &self,
        id: &str,
        user: &str,
        until: i64,
    ) -> Result<(), ClientError> {
        self.ok(
            Command::GroupMute,
            &pb::GroupMuteRequest {
                group_id: id.to_owned(),
                user_id: user.to_owned(),
                until,
            },
        )
        .await
    }

    /// Dismisses the group: the owner only.
    pub async fn dismiss_group(&self, id: &str) -> Result<(), ClientError> {
        self.ok(
            Command::GroupDismiss,
            &pb::GroupDismissRequest {
                group_id: id.to_owned(),
            },
        )
        .await
    }

    /// Adds members (the owner and admins).
    pub async fn add_group_members(&self, id: &str, users: &[&str]) -> Result<(), ClientError> {
        self.members_change(Command::GroupAddMembers, id, users)
            .await
    }

    /// Removes members (the owner and admins; never the owner).
    pub async fn remove_group_members(&self, id: &str, users: &[&str]) -> Result<(), ClientError> {
        self.members_change(Command::GroupRemoveMembers, id, users)
            .await
    }

    async fn members_change(
        &self,
        command: Command,
        id: &str,
        users: &[&str],
    ) -> Result<(), ClientError> {
        self.ok(
            command,
            &pb::GroupMembersChangeRequest {
                group_id: id.to_owned(),
                user_ids: users.iter().map(|u| u.to_string()).collect(),
            },
        )
        .await
    }

    /// A request answered with `Ok`.
    async fn ok(&self, command: Command, body: &impl prost::Message) -> Result<(), ClientError> {
        self.call::<pb::Ok>(command, body).await.map(|_| ())
    }
}
