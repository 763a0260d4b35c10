//! GroupCreate (32) -> GroupInfo, GroupJoin (34) and GroupLeave (35) -> Ok,
//! GroupMembersQuery (36) -> GroupMembers.

use bubble_core::{CreateGroup, Engine, Group, GroupId, GroupKind, Result, Session, UserId};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode, user_ids};

fn group_info(g: &Group, member_count: u64) -> pb::GroupInfo {
    pb::GroupInfo {
        group_id: g.id.to_string(),
        name: g.name.clone(),
        kind: match g.kind {
            GroupKind::Normal => pb::GroupKind::Normal as i32,
            GroupKind::Super => pb::GroupKind::Super as i32,
        },
        owner: g.owner.to_string(),
        member_count,
        created_at: g.created_at,
    }
}

/// `GroupCreateRequest` -> `GroupInfo`; the caller owns the group.
#[derive(Debug)]
pub struct Create {
    id: Option<GroupId>,
    name: String,
    members: Vec<UserId>,
    super_group: bool,
}

impl Create {
    /// Decodes a `GroupCreateRequest`; an empty id lets the server pick.
    pub fn parse(frame: &Frame) -> Result<Create> {
        let req: pb::GroupCreateRequest = decode(frame)?;
        Ok(Create {
            id: (!req.group_id.is_empty()).then(|| GroupId::new(&req.group_id)),
            name: req.name,
            members: user_ids(&req.members)?,
            super_group: req.super_group,
        })
    }

    /// Creates the group and counts its members.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let group = engine
            .create_group(
                &session.app,
                &session.user,
                CreateGroup {
                    id: self.id,
                    name: self.name,
                    members: self.members,
                    super_group: self.super_group,
                },
            )
            .await?;
        let count = engine.members(&session.app, &group.id, None).await?.len() as u64;
        Ok(Reply::message(
            Command::GroupInfo,
            &group_info(&group, count),
        ))
    }
}

/// `GroupJoinRequest` -> `Ok`.
#[derive(Debug)]
pub struct Join {
    group: GroupId,
}

impl Join {
    /// Decodes a `GroupJoinRequest`.
    pub fn parse(frame: &Frame) -> Result<Join> {
        let req: pb::GroupJoinRequest = decode(frame)?;
        Ok(Join {
            group: GroupId::new(&req.group_id),
        })
    }

    /// Joins the caller to the group.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        engine.join_group(session, &self.group).await?;
        Ok(Reply::message(Command::Ok, &pb::Ok {}))
    }
}

/// `GroupLeaveRequest` -> `Ok`.
#[derive(Debug)]
pub struct Leave {
    group: GroupId,
}

impl Leave {
    /// Decodes a `GroupLeaveRequest`.
    pub fn parse(frame: &Frame) -> Result<Leave> {
        let req: pb::GroupLeaveRequest = decode(frame)?;
        Ok(Leave {
            group: GroupId::new(&req.group_id),
        })
    }

    /// Takes the caller out of the group.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        engine.leave_group(session, &self.group).await?;
        Ok(Reply::message(Command::Ok, &pb::Ok {}))
    }
}

/// `GroupMembersRequest` -> `GroupMembers` (members only).
#[derive(Debug)]
pub struct Members {
    group: String,
}

impl Members {
    /// Decodes a `GroupMembersRequest`.
    pub fn parse(frame: &Frame) -> Result<Members> {
        let req: pb::GroupMembersRequest = decode(frame)?;
        Ok(Members {
            group: req.group_id,
        })
    }

    /// The members, if the caller is one.
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let members = engine
            .members(
                &session.app,
                &GroupId::new(&self.group),
                Some(&session.user),
            )
            .await?;
        let body = pb::GroupMembers {
            group_id: self.group,
            members: members
                .iter()
                .map(|m| pb::Member {
                    user_id: m.user.to_string(),
                    role: m.role as i32,
                    joined_at: m.joined_at,
                })
                .collect(),
        };
        Ok(Reply::message(Command::GroupMembers, &body))
    }
}
