//! History (28) -> HistoryPage (29): one conversation, newest first.

use bubble_core::wire::{channel_entry_to_pb, conversation_from_pb, entry_to_pb, reactions_to_pb};
use bubble_core::{Conversation, Engine, HistoryPage, MsgId, Reactions, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit};

/// The page a history request with `limit = 0` gets: a phone screen and a
/// little more.
pub const DEFAULT_HISTORY_PAGE: usize = 30;

/// `HistoryRequest` -> `HistoryPage`.
#[derive(Debug)]
pub struct History {
    conversation: Conversation,
    before: u64,
    limit: usize,
}

impl History {
    /// Decodes a `HistoryRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<History> {
        let req: pb::HistoryRequest = decode(frame)?;
        Ok(History {
            conversation: conversation_from_pb(req.conversation.as_ref())?,
            before: req.before,
            limit: page_limit(req.limit, DEFAULT_HISTORY_PAGE),
        })
    }

    /// The conversation's entries before `before`, newest first, at most
    /// `limit` (the engine caps it) and at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let found = engine
            .history(session, &self.conversation, self.before, self.limit)
            .await?;
        let body = match found {
            HistoryPage::Inbox {
                page: p,
                max_version,
                reactions,
            } => {
                let mut entries: Vec<_> = p
                    .entries
                    .iter()
                    .map(|e| pb::Entry {
                        reactions: counts_of(&reactions, &e.server_msg_id, e.kind),
                        ..entry_to_pb(e)
                    })
                    .collect();
                let cut = page.fit(&mut entries);
                pb::HistoryPage {
                    entries,
                    has_more: p.has_more || cut,
                    max_version,
                    ..Default::default()
                }
            }
            HistoryPage::Channel {
                page: p,
                last_seq,
                reactions,
            } => {
                let mut channel_entries: Vec<_> = p
                    .entries
                    .iter()
                    .map(|e| pb::ChannelEntry {
                        reactions: counts_of(&reactions, &e.server_msg_id, e.kind),
                        ..channel_entry_to_pb(e)
                    })
                    .collect();
                let cut = page.fit(&mut channel_entries);
                pb::HistoryPage {
                    channel_entries,
                    has_more: p.has_more || cut,
                    last_seq,
                    ..Default::default()
                }
            }
        };
        Ok(Reply::message(Command::HistoryPage, &body))
    }
}

/// The reactions a page's message carries (none for other entries).
fn counts_of(
    reactions: &Reactions,
    id: &MsgId,
    kind: bubble_core::EntryKind,
) -> Vec<pb::ReactionCount> {
    if kind != bubble_core::EntryKind::Message {
        return Vec::new();
    }
    reactions
        .iter()
        .find(|(m, _)| m == id)
        .map(|(_, counts)| reactions_to_pb(counts))
        .unwrap_or_default()
}
