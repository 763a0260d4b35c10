//! Engine pushes as frames (seq 0, no `RESPONSE` flag).

use bubble_core::AppId;
use bubble_core::push::PushEvent;
use bubble_core::wire::{channel_entry_to_pb, content_to_pb, conversation_to_pb, entry_to_pb};
use bubble_proto::{Command, Frame, pb};

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
