//! Requests to engine calls, and engine pushes to frames.

use bytes::Bytes;

use bubble_core::engine::HistoryQuery;
use bubble_core::push::PushEvent;
use bubble_core::wire::*;
use bubble_core::*;
use bubble_proto::{Command, Frame, pb};

/// An error answer to request `seq`.
pub fn error_frame(seq: u32, error: &Error) -> Frame {
    Frame::from_message(Command::Error, seq, &error_to_pb(error)).into_response()
}

/// An error frame with an explicit code (protocol-level failures).
pub fn protocol_error(
    seq: u32,
    code: pb::ErrorCode,
    message: impl Into<String>,
    retryable: bool,
) -> Frame {
    let body = pb::Error {
        code: code as i32,
        message: message.into(),
        retryable,
    };
    Frame::from_message(Command::Error, seq, &body).into_response()
}

fn decode<M: prost::Message + Default>(frame: &Frame) -> Result<M> {
    frame
        .decode_body::<M>()
        .map_err(|e| Error::invalid(e.to_string()))
}

fn reply(command: Command, seq: u32, message: &impl prost::Message) -> Frame {
    Frame::from_message(command, seq, message).into_response()
}

fn ids(list: &[String]) -> Result<Vec<UserId>> {
    list.iter()
        .map(|u| validate_id("user id", u).map(|_| UserId::new(u)))
        .collect()
}

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

fn opt_time(t: i64) -> Option<i64> {
    (t != 0).then_some(t)
}

/// Runs one request and returns its answer (an error frame on failure).
pub async fn dispatch(engine: &Engine, session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    match handle(engine, session, frame).await {
        Ok(answer) => answer,
        Err(e) => error_frame(seq, &e),
    }
}

async fn handle(engine: &Engine, s: &Session, frame: Frame) -> Result<Frame> {
    let seq = frame.seq;
    Ok(match frame.command {
        Command::Send => {
            let req: pb::SendRequest = decode(&frame)?;
            let request = SendRequest {
                to: conversation_from_pb(req.to.as_ref())?,
                client_msg_id: req.client_msg_id,
                client_seq: req.client_seq,
                create_time: req.create_time,
                content: content_from_pb(req.content.as_ref())?,
            };
            let receipt = engine.send(s, request).await?;
            reply(Command::SendAck, seq, &receipt_to_pb(&receipt))
        }
        Command::Sync => {
            let req: pb::SyncRequest = decode(&frame)?;
            let page = engine
                .sync(s, req.after_version, req.limit.max(1) as usize)
                .await?;
            let body = pb::SyncPage {
                entries: page.entries.iter().map(entry_to_pb).collect(),
                has_more: page.has_more,
                max_version: page.max_version,
            };
            reply(Command::SyncPage, seq, &body)
        }
        Command::MarkRead => {
            let req: pb::MarkReadRequest = decode(&frame)?;
            let conversation = conversation_from_pb(req.conversation.as_ref())?;
            let marked = engine.mark_read(s, &conversation, req.up_to).await?;
            reply(Command::MarkReadAck, seq, &pb::MarkReadAck { marked })
        }
        Command::Unread => {
            let counts = engine.unread(s).await?;
            let body = pb::UnreadCounts {
                counts: counts
                    .iter()
                    .map(|c| pb::UnreadCount {
                        conversation: Some(conversation_to_pb(&c.conversation)),
                        count: c.count,
                    })
                    .collect(),
            };
            reply(Command::UnreadCounts, seq, &body)
        }
        Command::Recall => {
            let req: pb::RecallRequest = decode(&frame)?;
            let conversation = conversation_from_pb(req.conversation.as_ref())?;
            let id = MsgId::from_slice(&req.server_msg_id)?;
            let receipt = engine.recall(s, &conversation, &id).await?;
            reply(Command::SendAck, seq, &receipt_to_pb(&receipt))
        }
        Command::Delete => {
            let req: pb::DeleteRequest = decode(&frame)?;
            let id = MsgId::from_slice(&req.server_msg_id)?;
            let version = engine.delete_for_me(s, &id).await?;
            let ack = pb::SendAck {
                server_msg_id: req.server_msg_id,
                version,
                seq: 0,
                server_time: now_millis(),
                duplicate: false,
            };
            reply(Command::SendAck, seq, &ack)
        }
        Command::GroupCreate => {
            let req: pb::GroupCreateRequest = decode(&frame)?;
            let group = engine
                .create_group(
                    &s.app,
                    &s.user,
                    CreateGroup {
                        id: (!req.group_id.is_empty()).then(|| GroupId::new(&req.group_id)),
                        name: req.name,
                        members: ids(&req.members)?,
                        super_group: req.super_group,
                    },
                )
                .await?;
            let count = engine.members(&s.app, &group.id, None).await?.len() as u64;
            reply(Command::GroupInfo, seq, &group_info(&group, count))
        }
        Command::GroupJoin => {
            let req: pb::GroupJoinRequest = decode(&frame)?;
            engine.join_group(s, &GroupId::new(&req.group_id)).await?;
            reply(Command::Ok, seq, &pb::Ok {})
        }
        Command::GroupLeave => {
            let req: pb::GroupLeaveRequest = decode(&frame)?;
            engine.leave_group(s, &GroupId::new(&req.group_id)).await?;
            reply(Command::Ok, seq, &pb::Ok {})
        }
        Command::GroupMembersQuery => {
            let req: pb::GroupMembersRequest = decode(&frame)?;
            let gid = GroupId::new(&req.group_id);
            let members = engine.members(&s.app, &gid, Some(&s.user)).await?;
            let body = pb::GroupMembers {
                group_id: req.group_id,
                members: members
                    .iter()
                    .map(|m| pb::Member {
                        user_id: m.user.to_string(),
                        role: m.role as i32,
                        joined_at: m.joined_at,
                    })
                    .collect(),
            };
            reply(Command::GroupMembers, seq, &body)
        }
        Command::ChannelPull => {
            let req: pb::ChannelPullRequest = decode(&frame)?;
            let gid = GroupId::new(&req.group_id);
            let (page, last_seq) = engine
                .pull_channel(s, &gid, req.after_seq, req.limit.max(1) as usize)
                .await?;
            let body = pb::ChannelPage {
                group_id: req.group_id,
                entries: page.entries.iter().map(channel_entry_to_pb).collect(),
                has_more: page.has_more,
                last_seq,
            };
            reply(Command::ChannelPage, seq, &body)
        }
        Command::PresenceQuery => {
            let req: pb::PresenceQuery = decode(&frame)?;
            if req.user_ids.len() > 500 {
                return Err(Error::invalid("ask about at most 500 users at once"));
            }
            let users = engine.presence(&s.app, &ids(&req.user_ids)?).await?;
            let body = pb::PresenceResult {
                users: users
                    .iter()
                    .map(|u| pb::UserPresence {
                        user_id: u.user.to_string(),
                        online: !u.devices.is_empty(),
                        devices: u
                            .devices
                            .iter()
                            .map(|r| pb::DevicePresence {
                                device_id: r.device.to_string(),
                                platform: r.platform.clone(),
                                since: r.since,
                            })
                            .collect(),
                    })
                    .collect(),
            };
            reply(Command::PresenceResult, seq, &body)
        }
        Command::Search => {
            let req: pb::SearchRequest = decode(&frame)?;
            let conversation = match req.conversation.as_ref() {
                Some(c) => Some(conversation_from_pb(Some(c))?),
                None => None,
            };
            let results = engine
                .search(
                    s,
                    HistoryQuery {
                        words: req.words,
                        conversation,
                        from_time: opt_time(req.from_time),
                        to_time: opt_time(req.to_time),
                        offset: req.offset as usize,
                        limit: req.limit.max(1) as usize,
                    },
                )
                .await?;
            let body = pb::SearchResults {
                hits: results
                    .hits
                    .iter()
                    .map(|h| pb::SearchHit {
                        server_msg_id: Bytes::copy_from_slice(&h.doc.server_msg_id.0),
                        conversation: Some(conversation_to_pb(&h.doc.conversation)),
                        sender: h.doc.sender.to_string(),
                        server_time: h.doc.server_time,
                        text: h.doc.text.clone(),
                        score: h.score,
                    })
                    .collect(),
                total: results.total,
            };
            reply(Command::SearchResults, seq, &body)
        }
        Command::Typing => {
            let req: pb::Typing = decode(&frame)?;
            let conversation = conversation_from_pb(req.conversation.as_ref())?;
            engine.typing(s, &conversation).await?;
            reply(Command::Ok, seq, &pb::Ok {})
        }
        Command::Business(code) => {
            let body = engine.handle_business(s, code, frame.body.clone()).await?;
            Frame::new(Command::Business(code), seq, body).into_response()
        }
        other => {
            return Err(Error::invalid(format!(
                "{other} is not a request a client may send after the handshake"
            )));
        }
    })
}

/// The frame for a push, and whether the connection must close after it.
pub fn push_frame(app: &AppId, event: PushEvent) -> (Frame, bool) {
    match event {
        PushEvent::Entry {
            entry,
            prev_version,
        } => {
            let body = pb::Push {
                entry: Some(entry_to_pb(&entry)),
                prev_version,
            };
            (Frame::from_message(Command::Push, 0, &body), false)
        }
        PushEvent::Channel { entry, prev_seq } => {
            let body = pb::ChannelNotify {
                group_id: entry.group.to_string(),
                seq: entry.seq,
                prev_seq,
                entry: Some(channel_entry_to_pb(&entry)),
            };
            (Frame::from_message(Command::ChannelNotify, 0, &body), false)
        }
        PushEvent::Broadcast { entry, prev_seq } => {
            let body = pb::SystemPush {
                scope: "APP".into(),
                target: app.to_string(),
                content: Some(content_to_pb(&entry.content)),
                server_time: entry.server_time,
                seq: entry.seq,
                prev_seq,
                entry: Some(channel_entry_to_pb(&entry)),
            };
            (Frame::from_message(Command::SystemPush, 0, &body), false)
        }
        PushEvent::Typing { conversation, from } => {
            let body = pb::Typing {
                conversation: Some(conversation_to_pb(&conversation)),
                user_id: from.to_string(),
            };
            (Frame::from_message(Command::Typing, 0, &body), false)
        }
        PushEvent::Kick { reason } => (
            Frame::from_message(Command::Kick, 0, &pb::Kick { reason }),
            true,
        ),
        PushEvent::Business { command, body } => {
            (Frame::new(Command::Business(command), 0, body), false)
        }
    }
}
