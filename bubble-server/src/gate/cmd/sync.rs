//! Sync (19) -> SyncPage (20).

use bubble_core::wire::entry_to_pb;
use bubble_core::{Engine, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{Reply, decode, page_limit};

/// The page a sync with `limit = 0` gets.
pub const DEFAULT_SYNC_PAGE: usize = 100;

/// `SyncRequest` -> `SyncPage`.
#[derive(Debug)]
pub struct Sync {
    after_version: u64,
    limit: usize,
}

impl Sync {
    /// Decodes a `SyncRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<Sync> {
        let req: pb::SyncRequest = decode(frame)?;
        Ok(Sync {
            after_version: req.after_version,
            limit: page_limit(req.limit, DEFAULT_SYNC_PAGE),
        })
    }

    /// The entries after the version, at most `limit` (the engine caps it).
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let page = engine.sync(session, self.after_version, self.limit).await?;
        let body = pb::SyncPage {
            entries: page.entries.iter().map(entry_to_pb).collect(),
            has_more: page.has_more,
            max_version: page.max_version,
        };
        Ok(Reply::message(Command::SyncPage, &body))
    }
}
