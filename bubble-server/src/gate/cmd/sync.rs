//! Sync (19) -> SyncPage (20).

use bubble_core::wire::entry_to_pb;
use bubble_core::{Engine, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit};

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

    /// The entries after the version, at most `limit` (the engine caps it)
    /// and at most `page` bytes of them.
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let found = engine.sync(session, self.after_version, self.limit).await?;
        let mut entries: Vec<_> = found.entries.iter().map(entry_to_pb).collect();
        let cut = page.fit(&mut entries);
        let body = pb::SyncPage {
            entries,
            has_more: found.has_more || cut,
            max_version: found.max_version,
        };
        Ok(Reply::message(Command::SyncPage, &body))
    }
}
