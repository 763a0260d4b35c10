use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::ports::*;
use crate::types::*;

/// [`SearchIndex`] in memory: every query word must appear in the text
/// (case-insensitive substring), which also finds Chinese words without a
/// tokenizer. A reference for the conformance suite, not for big histories.
#[derive(Default)]
pub struct MemorySearch {
    /// One document per message, its owners merged as indexed.
    docs: Mutex<HashMap<(AppId, MsgId), SearchDoc>>,
}

impl MemorySearch {
    /// An empty index.
    pub fn new() -> MemorySearch {
        MemorySearch::default()
    }

    /// Documents held, across apps: one per message, whatever its owners.
    pub fn documents(&self) -> usize {
        self.docs.lock().len()
    }
}

#[async_trait]
impl SearchIndex for MemorySearch {
    async fn index(&self, docs: &[SearchDoc]) -> Result<()> {
        let mut all = self.docs.lock();
        for doc in docs {
            let mut doc = doc.clone();
            if let Some(old) = all.get(&(doc.app.clone(), doc.server_msg_id)) {
                for owner in &old.owners {
                    if !doc.owners.contains(owner) {
                        doc.owners.push(owner.clone());
                    }
                }
            }
            doc.owners.sort();
            doc.owners.dedup();
            all.insert((doc.app.clone(), doc.server_msg_id), doc);
        }
        Ok(())
    }

    async fn remove(&self, app: &AppId, id: &MsgId) -> Result<()> {
        self.docs.lock().remove(&(app.clone(), *id));
        Ok(())
    }

    async fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()> {
        let mut all = self.docs.lock();
        let key = (app.clone(), *id);
        if let Some(doc) = all.get_mut(&key) {
            doc.owners.retain(|o| !owners.contains(o));
            if doc.owners.is_empty() {
                all.remove(&key);
            }
        }
        Ok(())
    }

    async fn clear_app(&self, app: &AppId) -> Result<()> {
        self.docs.lock().retain(|(a, _), _| a != app);
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let words: Vec<String> = query
            .words
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Ok(SearchResults::default());
        }
        let all = self.docs.lock();
        let mut hits: Vec<SearchHit> = all
            .values()
            .filter(|d| d.app == query.app && d.owners.contains(&query.owner))
            .filter(|d| {
                query
                    .conversation
                    .as_ref()
                    .is_none_or(|c| *c == d.conversation_for(&query.owner))
            })
            .filter(|d| query.from_time.is_none_or(|t| d.server_time >= t))
            .filter(|d| query.to_time.is_none_or(|t| d.server_time <= t))
            .filter_map(|d| {
                let text = d.text.to_lowercase();
                words.iter().all(|w| text.contains(w.as_str())).then(|| {
                    let score = words
                        .iter()
                        .map(|w| text.matches(w.as_str()).count())
                        .sum::<usize>();
                    SearchHit {
                        doc: d.seen_by(&query.owner),
                        score: score as f32,
                    }
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.doc.server_time.cmp(&a.doc.server_time))
                .then(a.doc.server_msg_id.cmp(&b.doc.server_msg_id))
        });
        let total = hits.len() as u64;
        let hits = hits
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .collect();
        Ok(SearchResults { hits, total })
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
