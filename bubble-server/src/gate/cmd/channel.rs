//! ChannelPull (48) -> ChannelPage (49): super groups, read by seq.

use bubble_core::wire::channel_entry_to_pb;
use bubble_core::{Engine, GroupId, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit};

/// The page a pull with `limit = 0` gets.
pub const DEFAULT_CHANNEL_PAGE: usize = 100;

/// `ChannelPullRequest` -> `ChannelPage`.
#[derive(Debug)]
pub struct Pull {
    group: String,
    after_seq: u64,
    limit: usize,
}

impl Pull {
    /// Decodes a `ChannelPullRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<Pull> {
        let req: pb::ChannelPullRequest = decode(frame)?;
        Ok(Pull {
            group: req.group_id,
            after_seq: req.after_seq,
            limit: page_limit(req.limit, DEFAULT_CHANNEL_PAGE),
        })
    }

    /// The log's entries after the seq, at most `limit` (the engine caps it)
    /// and at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let (found, last_seq) = engine
            .pull_channel(
                session,
                &GroupId::new(&self.group),
                self.after_seq,
                self.limit,
            )
            .await?;
        let mut entries: Vec<_> = found.entries.iter().map(channel_entry_to_pb).collect();
        let cut = page.fit(&mut entries);
        let body = pb::ChannelPage {
            group_id: self.group,
            entries,
            has_more: found.has_more || cut,
            last_seq,
        };
        Ok(Reply::message(Command::ChannelPage, &body))
    }
}
