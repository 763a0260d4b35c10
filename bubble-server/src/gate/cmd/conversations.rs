//! Conversations (30) -> ConversationList (31): the home screen.

use bubble_core::wire::{channel_entry_to_pb, conversation_to_pb, entry_to_pb};
use bubble_core::{Conversation, ConversationItem, Engine, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit};

/// The page a list request with `limit = 0` gets: a screen or two.
pub const DEFAULT_CONVERSATIONS_PAGE: usize = 50;

/// `ConversationsRequest` -> `ConversationList`.
#[derive(Debug)]
pub struct Conversations {
    before: u64,
    limit: usize,
}

impl Conversations {
    /// Decodes a `ConversationsRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<Conversations> {
        let req: pb::ConversationsRequest = decode(frame)?;
        Ok(Conversations {
            before: req.before,
            limit: page_limit(req.limit, DEFAULT_CONVERSATIONS_PAGE),
        })
    }

    /// The caller's conversations before `before`, newest activity first, at
    /// most `limit` (the engine caps it) and at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let found = engine
            .conversations(session, self.before, self.limit)
            .await?;
        let mut conversations: Vec<_> = found.items.iter().map(summary_to_pb).collect();
        let cut = page.fit(&mut conversations);
        let body = pb::ConversationList {
            conversations,
            has_more: found.has_more || cut,
            max_version: found.max_version,
        };
        Ok(Reply::message(Command::ConversationList, &body))
    }
}

fn summary_to_pb(item: &ConversationItem) -> pb::ConversationSummary {
    match item {
        ConversationItem::Inbox(s) => pb::ConversationSummary {
            conversation: Some(conversation_to_pb(&s.conversation)),
            activity: s.activity,
            last_entry: Some(entry_to_pb(&s.last)),
            last_channel_entry: None,
            unread: s.unread,
            read_up_to: s.read_up_to,
            peer_read_up_to: s.peer_read_up_to,
            settings: Some(s.settings.to_pb()),
            mentioned: s.mentioned,
        },
        ConversationItem::SuperGroup {
            group,
            activity,
            last,
            unread,
            read_seq,
            settings,
        } => pb::ConversationSummary {
            conversation: Some(conversation_to_pb(&Conversation::super_group(group))),
            activity: *activity,
            last_entry: None,
            last_channel_entry: Some(channel_entry_to_pb(last)),
            unread: *unread,
            read_up_to: *read_seq,
            peer_read_up_to: 0,
            settings: Some(settings.to_pb()),
            mentioned: false,
        },
    }
}
