//! Running a group: GroupsQuery (120) -> GroupList (121), GroupUpdate (122)
//! -> GroupInfo, and GroupSetRole (123), GroupTransfer (124), GroupMute
//! (125), GroupDismiss (126), GroupAddMembers (127), GroupRemoveMembers
//! (128) -> Ok.

use bubble_core::{
    Engine, Error, GroupChange, GroupId, Result, Role, Session, UserId, validate_id,
};
use bubble_proto::{Command, Frame, pb};

use super::groups::group_info;
use super::{PageBytes, Reply, decode, user_ids};

fn group_id(raw: &str) -> Result<GroupId> {
    validate_id("group id", raw)?;
    Ok(GroupId::new(raw))
}

fn user_id(raw: &str) -> Result<UserId> {
    validate_id("user id", raw)?;
    Ok(UserId::new(raw))
}

fn ok() -> Reply {
    Reply::message(Command::Ok, &pb::Ok {})
}

/// `GroupsRequest` -> `GroupList`.
#[derive(Debug)]
pub struct Groups;

impl Groups {
    /// Decodes a `GroupsRequest`.
    pub fn parse(frame: &Frame) -> Result<Groups> {
        let _: pb::GroupsRequest = decode(frame)?;
        Ok(Groups)
    }

    /// The caller's groups, at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let mut groups: Vec<pb::GroupInfo> = engine
            .my_groups(session)
            .await?
            .iter()
            .map(|g| group_info(&g.group, g.members))
            .collect();
        page.fit(&mut groups);
        Ok(Reply::message(
            Command::GroupList,
            &pb::GroupList { groups },
        ))
    }
}

/// `GroupUpdateRequest` -> `GroupInfo`.
#[derive(Debug)]
pub struct Update {
    group: GroupId,
    change: GroupChange,
}

impl Update {
    /// Decodes a `GroupUpdateRequest`.
    pub fn parse(frame: &Frame) -> Result<Update> {
        let req: pb::GroupUpdateRequest = decode(frame)?;
        Ok(Update {
            group: group_id(&req.group_id)?,
            change: GroupChange {
                name: req.name,
                avatar_url: req.avatar_url,
                announcement: req.announcement,
                muted: req.muted,
            },
        })
    }

    /// Changes the group; its info after the change.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let group = engine
            .change_group(session, &self.group, &self.change)
            .await?;
        let members = engine
            .members(&session.app, &group.id, Some(&session.user))
            .await?
            .len() as u64;
        Ok(Reply::message(
            Command::GroupInfo,
            &group_info(&group, members),
        ))
    }
}

/// What one of the `Ok`-answered group requests asks.
#[derive(Debug)]
pub enum Admin {
    /// GroupSetRole (123).
    SetRole(GroupId, UserId, Role),
    /// GroupTransfer (124).
    Transfer(GroupId, UserId),
    /// GroupMute (125).
    Mute(GroupId, UserId, i64),
    /// GroupDismiss (126).
    Dismiss(GroupId),
    /// GroupAddMembers (127).
    Add(GroupId, Vec<UserId>),
    /// GroupRemoveMembers (128).
    Remove(GroupId, Vec<UserId>),
}

impl Admin {
    /// Decodes the body of `frame`'s command.
    pub fn parse(frame: &Frame) -> Result<Admin> {
        Ok(match frame.command {
            Command::GroupSetRole => {
                let req: pb::GroupRoleRequest = decode(frame)?;
                let role = match pb::MemberRole::try_from(req.role) {
                    Ok(pb::MemberRole::Member) => Role::Member,
                    Ok(pb::MemberRole::Admin) => Role::Admin,
                    _ => {
                        return Err(Error::invalid(
                            "role is MEMBER or ADMIN; ownership moves by GroupTransfer",
                        ));
                    }
                };
                Admin::SetRole(group_id(&req.group_id)?, user_id(&req.user_id)?, role)
            }
            Command::GroupTransfer => {
                let req: pb::GroupTransferRequest = decode(frame)?;
                Admin::Transfer(group_id(&req.group_id)?, user_id(&req.user_id)?)
            }
            Command::GroupMute => {
                let req: pb::GroupMuteRequest = decode(frame)?;
                if req.until < 0 {
                    return Err(Error::invalid(
                        "until is a time in ms since the epoch, or 0",
                    ));
                }
                Admin::Mute(group_id(&req.group_id)?, user_id(&req.user_id)?, req.until)
            }
            Command::GroupDismiss => {
                let req: pb::GroupDismissRequest = decode(frame)?;
                Admin::Dismiss(group_id(&req.group_id)?)
            }
            Command::GroupAddMembers | Command::GroupRemoveMembers => {
                let req: pb::GroupMembersChangeRequest = decode(frame)?;
                let (id, users) = (group_id(&req.group_id)?, user_ids(&req.user_ids)?);
                if frame.command == Command::GroupAddMembers {
                    Admin::Add(id, users)
                } else {
                    Admin::Remove(id, users)
                }
            }
            other => return Err(Error::internal(format!("{other} is not a group request"))),
        })
    }

    /// Runs it; `Ok` when done.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        match self {
            Admin::SetRole(id, user, role) => {
                engine.set_member_role(session, &id, &user, role).await?
            }
            Admin::Transfer(id, user) => engine.transfer_group(session, &id, &user).await?,
            Admin::Mute(id, user, until) => engine.mute_member(session, &id, &user, until).await?,
            Admin::Dismiss(id) => engine.dismiss_group(session, &id).await?,
            Admin::Add(id, users) => {
                engine.add_group_members(session, &id, &users).await?;
            }
            Admin::Remove(id, users) => {
                engine.remove_group_members(session, &id, &users).await?;
            }
        }
        Ok(ok())
    }
}
