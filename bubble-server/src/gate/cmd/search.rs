//! Search (80) -> SearchResults (81): the caller's own history.

use bytes::Bytes;

use bubble_core::wire::{conversation_from_pb, conversation_to_pb};
use bubble_core::{Engine, HistoryQuery, Result, Session};
use bubble_proto::{Command, Frame, pb};

use super::{PageBytes, Reply, decode, page_limit};

/// The hits a search with `limit = 0` gets (the engine allows at most 100).
pub const DEFAULT_SEARCH_PAGE: usize = 20;

/// `SearchRequest` -> `SearchResults`.
#[derive(Debug)]
pub struct Search {
    query: HistoryQuery,
}

/// A time bound from the wire: 0 is unbounded.
fn opt_time(t: i64) -> Option<i64> {
    (t != 0).then_some(t)
}

impl Search {
    /// Decodes a `SearchRequest`; a limit of 0 asks for the default page.
    pub fn parse(frame: &Frame) -> Result<Search> {
        let req: pb::SearchRequest = decode(frame)?;
        let conversation = match req.conversation.as_ref() {
            Some(c) => Some(conversation_from_pb(Some(c))?),
            None => None,
        };
        Ok(Search {
            query: HistoryQuery {
                words: req.words,
                conversation,
                from_time: opt_time(req.from_time),
                to_time: opt_time(req.to_time),
                offset: req.offset as usize,
                limit: page_limit(req.limit, DEFAULT_SEARCH_PAGE),
            },
        })
    }

    /// Searches the caller's messages: at most `limit` hits and at most
    /// `page` bytes of them (the next page starts at `offset` plus the hits
    /// received).
    pub async fn apply(self, engine: &Engine, session: &Session, page: PageBytes) -> Result<Reply> {
        let results = engine.search(session, self.query).await?;
        let mut hits: Vec<_> = results
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
            .collect();
        page.fit(&mut hits);
        let body = pb::SearchResults {
            hits,
            total: results.total,
        };
        Ok(Reply::message(Command::SearchResults, &body))
    }
}
