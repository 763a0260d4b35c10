//! What a chat app's screens ask beyond sending and syncing: replies,
//! forwards and mentions, edits, reactions, per-conversation settings and
//! the block list, and who in a group read a message.

use bytes::Bytes;

use bubble_core::wire::{content_to_pb, conversation_to_pb, receipt_from_pb};
use bubble_core::{
    Content, Conversation, ConversationSettings, GroupId, MessageRefs, MsgId, ReadState,
    SendReceipt, SettingsChange, UserId,
};
use bubble_proto::{Command, pb};

use crate::{Client, ClientError, new_client_msg_id};

/// Settings from the wire (absent: the defaults).
pub(crate) fn settings_from_pb(s: Option<&pb::ConversationSettings>) -> ConversationSettings {
    s.map(ConversationSettings::from_pb).unwrap_or_default()
}

fn protocol(e: bubble_core::Error) -> ClientError {
    ClientError::Protocol(e.to_string())
}

impl Client {
    /// Sends a reply, a forward or a message with mentions: `refs` names
    /// the message answered (`reply_to`), the original forwarded
    /// (`forward_of`; empty `content` takes the original's), and who is
    /// mentioned. The server checks each and fills in what the receivers
    /// see (`Entry.meta`). Retried like [`Client::send`].
    pub async fn send_with(
        &self,
        to: Conversation,
        content: Content,
        refs: &MessageRefs,
    ) -> Result<SendReceipt, ClientError> {
        let client_seq = self.next_client_seq(&to);
        let id = |m: &Option<MsgId>| m.map_or_else(Bytes::new, |m| Bytes::copy_from_slice(&m.0));
        let req = pb::SendRequest {
            to: Some(conversation_to_pb(&to)),
            client_msg_id: new_client_msg_id(),
            client_seq,
            create_time: bubble_core::now_millis(),
            content: (content.kind != bubble_core::ContentType::None)
                .then(|| content_to_pb(&content)),
            reply_to: id(&refs.reply_to),
            forward_of: id(&refs.forward_of),
            forward_from: refs.forward_from.as_ref().map(conversation_to_pb),
            mentions: refs.mentions.iter().map(|u| u.to_string()).collect(),
            mention_all: refs.mention_all,
        };
        self.send_request(to, req).await
    }

    /// Replaces the content of a message this user sent (within the app's
    /// edit window). Every holder's devices get an EDIT entry.
    pub async fn edit(
        &self,
        conversation: &Conversation,
        id: &MsgId,
        content: Content,
    ) -> Result<SendReceipt, ClientError> {
        let ack: pb::SendAck = self
            .call(
                Command::Edit,
                &pb::EditRequest {
                    conversation: Some(conversation_to_pb(conversation)),
                    server_msg_id: Bytes::copy_from_slice(&id.0),
                    content: Some(content_to_pb(&content)),
                },
            )
            .await?;
        let receipt = receipt_from_pb(&ack).map_err(protocol)?;
        self.skip_own_entry(&receipt);
        Ok(receipt)
    }

    /// Adds (or with `remove`, takes off) this user's reaction on a
    /// message. A receipt marked duplicate means nothing changed.
    pub async fn react(
        &self,
        conversation: &Conversation,
        id: &MsgId,
        emoji: &str,
        remove: bool,
    ) -> Result<SendReceipt, ClientError> {
        let ack: pb::SendAck = self
            .call(
                Command::React,
                &pb::ReactRequest {
                    conversation: Some(conversation_to_pb(conversation)),
                    server_msg_id: Bytes::copy_from_slice(&id.0),
                    emoji: emoji.to_owned(),
                    remove,
                },
            )
            .await?;
        let receipt = receipt_from_pb(&ack).map_err(protocol)?;
        if !receipt.duplicate {
            self.skip_own_entry(&receipt);
        }
        Ok(receipt)
    }

    /// Changes some of this user's settings of a conversation (pin, mute,
    /// archive, draft, block); returns all of them after the change. The
    /// user's other devices get a SETTINGS entry.
    pub async fn change_settings(
        &self,
        conversation: &Conversation,
        change: &SettingsChange,
    ) -> Result<ConversationSettings, ClientError> {
        let ack: pb::SettingsAck = self
            .call(
                Command::Settings,
                &pb::SettingsRequest {
                    conversation: Some(conversation_to_pb(conversation)),
                    pinned: change.pinned,
                    muted: change.muted,
                    archived: change.archived,
                    draft: change.draft.clone(),
                    blocked: change.blocked,
                },
            )
            .await?;
        if ack.version > 0 {
            self.skip_own_entry(&SendReceipt {
                server_msg_id: MsgId([0; 16]),
                version: ack.version,
                seq: 0,
                server_time: 0,
                duplicate: false,
                prev_version: ack.prev_version,
            });
        }
        Ok(settings_from_pb(ack.settings.as_ref()))
    }

    /// The users this user blocked.
    pub async fn blocked(&self) -> Result<Vec<UserId>, ClientError> {
        let list: pb::BlockedList = self.call(Command::Blocked, &pb::BlockedRequest {}).await?;
        Ok(list.user_ids.iter().map(UserId::new).collect())
    }

    /// Who of a normal group's members has read a message.
    pub async fn read_state(&self, group: &GroupId, id: &MsgId) -> Result<ReadState, ClientError> {
        let state: pb::ReadState = self
            .call(
                Command::ReadStateQuery,
                &pb::ReadStateRequest {
                    group_id: group.to_string(),
                    server_msg_id: Bytes::copy_from_slice(&id.0),
                },
            )
            .await?;
        Ok(ReadState {
            members: state.member_count,
            readers: state.readers.iter().map(UserId::new).collect(),
        })
    }
}
