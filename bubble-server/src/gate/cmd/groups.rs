//! GroupCreate (32) -> GroupInfo, GroupJoin (34) and GroupLeave (35) -> Ok,
//! GroupMembersQuery (36) -> GroupMembers.

use bubble_core::{CreateGroup, Engine, Group, GroupId, GroupKind, Result, Session, UserId};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit, user_ids};

pub(super) fn group_info(g: &Group, member_count: u64) -> pb::GroupInfo {
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
        avatar_url: g.avatar_url.clone(),
        announcement: g.announcement.clone(),
        muted: g.muted,
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

/// The page a members query with `limit = 0` gets.
pub const DEFAULT_MEMBERS_PAGE: usize = 500;

/// The largest members page.
pub const MAX_MEMBERS_PAGE: usize = 1000;

/// `GroupMembersRequest` -> `GroupMembers` (members only), a page at a time
/// in user id order.
#[derive(Debug)]
pub struct Members {
    group: String,
    after_user: String,
    limit: usize,
}

impl Members {
    /// Decodes a `GroupMembersRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<Members> {
        let req: pb::GroupMembersRequest = decode(frame)?;
        Ok(Members {
            group: req.group_id,
            after_user: req.after_user_id,
            limit: page_limit(req.limit, DEFAULT_MEMBERS_PAGE).min(MAX_MEMBERS_PAGE),
        })
    }

    /// The members after `after_user`, if the caller is one: at most
    /// `limit` and at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let mut all = engine
            .members(
                &session.app,
                &GroupId::new(&self.group),
                Some(&session.user),
            )
            .await?;
        all.sort_unstable_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
        let after: Vec<_> = all
            .iter()
            .filter(|m| m.user.as_str() > self.after_user.as_str())
            .collect();
        let mut members: Vec<_> = after
            .iter()
            .take(self.limit)
            .map(|m| pb::Member {
                user_id: m.user.to_string(),
                role: m.role as i32,
                joined_at: m.joined_at,
                muted_until: m.muted_until,
            })
            .collect();
        let cut = page.fit(&mut members);
        let body = pb::GroupMembers {
            group_id: self.group,
            has_more: cut || after.len() > members.len(),
            members,
        };
        Ok(Reply::message(Command::GroupMembers, &body))
    }
}
