use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::ports::*;
use crate::types::*;

#[derive(Default)]
struct Owner {
    /// Entries in version order, with their read flag.
    entries: Vec<(InboxEntry, bool)>,
    last_version: u64,
}

#[derive(Default)]
struct State {
    owners: HashMap<(AppId, UserId), Owner>,
    sent: HashMap<(AppId, UserId, String), SendReceipt>,
    /// The keys of `sent` by server time (then acceptance), so
    /// `prune_sent` takes the oldest without a scan.
    sent_by_time: BTreeMap<(i64, u64), (AppId, UserId, String)>,
    accepted: u64,
    /// One row per indexed delivery: its owners and their versions.
    outbox: BTreeMap<u64, (AppId, Vec<(UserId, u64)>)>,
    next_outbox: u64,
}

/// [`InboxStore`] in memory.
#[derive(Default)]
pub struct MemoryInbox {
    state: Mutex<State>,
}

impl MemoryInbox {
    /// An empty store.
    pub fn new() -> MemoryInbox {
        MemoryInbox::default()
    }
}

fn is_readable_message(entry: &InboxEntry) -> bool {
    entry.direction == Direction::In && entry.kind.counts_as_unread()
}

#[async_trait]
impl InboxStore for MemoryInbox {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let mut state = self.state.lock();
        let dedup_key = (!delivery.client_msg_id.is_empty()).then(|| {
            (
                app.clone(),
                delivery.sender.clone(),
                delivery.client_msg_id.clone(),
            )
        });
        if let Some(key) = &dedup_key
            && let Some(receipt) = state.sent.get(key)
        {
            return Ok(AppendOutcome::Duplicate(SendReceipt {
                duplicate: true,
                ..*receipt
            }));
        }
        let mut out = Vec::with_capacity(delivery.entries.len());
        let mut indexed = Vec::new();
        for entry in &delivery.entries {
            let owner = state
                .owners
                .entry((app.clone(), entry.owner.clone()))
                .or_default();
            let prev_version = owner.last_version;
            let version = prev_version + 1;
            owner.last_version = version;
            let mut stored = entry.clone();
            stored.version = version;
            owner.entries.push((stored, false));
            out.push(Appended {
                version,
                prev_version,
            });
            if delivery.index {
                indexed.push((entry.owner.clone(), version));
            }
        }
        if !indexed.is_empty() {
            let id = state.next_outbox;
            state.next_outbox += 1;
            state.outbox.insert(id, (app.clone(), indexed));
        }
        if let Some(key) = dedup_key {
            let receipt = delivery.receipt(&out);
            state.accepted += 1;
            let at = (receipt.server_time, state.accepted);
            state.sent_by_time.insert(at, key.clone());
            state.sent.insert(key, receipt);
        }
        Ok(AppendOutcome::Appended(out))
    }

    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let state = self.state.lock();
        let Some(o) = state.owners.get(&(app.clone(), owner.clone())) else {
            return Ok(InboxPage::default());
        };
        let start = o
            .entries
            .partition_point(|(e, _)| e.version <= after_version);
        let rest = &o.entries[start..];
        let take = rest.len().min(limit);
        Ok(InboxPage {
            entries: rest[..take].iter().map(|(e, _)| e.clone()).collect(),
            has_more: rest.len() > take,
        })
    }

    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64> {
        let state = self.state.lock();
        Ok(state
            .owners
            .get(&(app.clone(), owner.clone()))
            .map_or(0, |o| o.last_version))
    }

    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>> {
        let state = self.state.lock();
        Ok(state
            .owners
            .get(&(app.clone(), owner.clone()))
            .and_then(|o| {
                o.entries.iter().find(|(e, _)| {
                    e.server_msg_id == *id
                        && matches!(e.kind, EntryKind::Message | EntryKind::SystemNotice)
                })
            })
            .map(|(e, _)| e.clone()))
    }

    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead> {
        let mut state = self.state.lock();
        let Some(o) = state.owners.get_mut(&(app.clone(), owner.clone())) else {
            return Ok(MarkedRead::default());
        };
        let mut result = MarkedRead::default();
        for (entry, read) in o.entries.iter_mut() {
            if entry.version > up_to {
                break;
            }
            if entry.conversation != *conversation || !is_readable_message(entry) {
                continue;
            }
            if !*read {
                *read = true;
                result.marked += 1;
            }
            result.last_read = Some(entry.clone());
        }
        Ok(result)
    }

    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        let mut state = self.state.lock();
        let Some(o) = state.owners.get_mut(&(app.clone(), owner.clone())) else {
            return Ok(false);
        };
        let mut changed = false;
        for (entry, read) in o.entries.iter_mut() {
            if entry.server_msg_id == *id && is_readable_message(entry) && !*read {
                *read = true;
                changed = true;
            }
        }
        Ok(changed)
    }

    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        let state = self.state.lock();
        let Some(o) = state.owners.get(&(app.clone(), owner.clone())) else {
            return Ok(Vec::new());
        };
        let mut counts: BTreeMap<Conversation, u64> = BTreeMap::new();
        for (entry, read) in &o.entries {
            if !*read && is_readable_message(entry) {
                *counts.entry(entry.conversation.clone()).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .map(|(conversation, count)| UnreadCount {
                conversation,
                count,
            })
            .collect())
    }

    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>> {
        let state = self.state.lock();
        Ok(state
            .sent
            .get(&(app.clone(), sender.clone(), client_msg_id.to_owned()))
            .map(|r| SendReceipt {
                duplicate: true,
                ..*r
            }))
    }

    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>> {
        let state = self.state.lock();
        let mut tasks = Vec::new();
        for (&id, (app, owners)) in state.outbox.iter().take(limit) {
            let entry = owners.iter().find_map(|(owner, version)| {
                state
                    .owners
                    .get(&(app.clone(), owner.clone()))
                    .and_then(|o| {
                        let at = o.entries.partition_point(|(e, _)| e.version < *version);
                        o.entries.get(at).filter(|(e, _)| e.version == *version)
                    })
                    .map(|(e, _)| e.clone())
            });
            if let Some(entry) = entry {
                tasks.push(IndexTask {
                    id,
                    app: app.clone(),
                    entry,
                    owners: owners.iter().map(|(owner, _)| owner.clone()).collect(),
                });
            }
        }
        Ok(tasks)
    }

    async fn complete_index(&self, ids: &[u64]) -> Result<()> {
        let mut state = self.state.lock();
        for id in ids {
            state.outbox.remove(id);
        }
        Ok(())
    }

    /// One pass over every inbox of `app`: fine for a reference store; a
    /// database answers from its message table by id instead.
    async fn scan_messages(
        &self,
        app: &AppId,
        after: Option<MsgId>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let state = self.state.lock();
        let mut found: BTreeMap<MsgId, StoredMessage> = BTreeMap::new();
        let mut recalled = HashSet::new();
        for ((a, owner), inbox) in &state.owners {
            if a != app {
                continue;
            }
            let deleted: HashSet<MsgId> = inbox
                .entries
                .iter()
                .filter(|(e, _)| e.kind == EntryKind::Delete)
                .map(|(e, _)| e.server_msg_id)
                .collect();
            for (e, _) in &inbox.entries {
                if after.is_some_and(|after| e.server_msg_id <= after) {
                    continue;
                }
                match e.kind {
                    EntryKind::Recall => {
                        recalled.insert(e.server_msg_id);
                    }
                    EntryKind::Message | EntryKind::SystemNotice
                        if !deleted.contains(&e.server_msg_id) =>
                    {
                        found
                            .entry(e.server_msg_id)
                            .or_insert_with(|| StoredMessage {
                                entry: e.clone(),
                                owners: Vec::new(),
                            })
                            .owners
                            .push(owner.clone());
                    }
                    _ => {}
                }
            }
        }
        Ok(found
            .into_values()
            .filter(|m| !recalled.contains(&m.entry.server_msg_id))
            .take(limit)
            .map(|mut m| {
                m.owners.sort();
                m
            })
            .collect())
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        let mut state = self.state.lock();
        let mut pruned = 0;
        while pruned < limit as u64 {
            let Some(entry) = state.sent_by_time.first_entry() else {
                break;
            };
            if entry.key().0 >= sent_before {
                break;
            }
            let key = entry.remove();
            if state.sent.remove(&key).is_some() {
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}
