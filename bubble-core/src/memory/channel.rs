use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::ports::{ChannelAppend, ChannelLog, Expired};
use crate::types::*;

#[derive(Default)]
struct Log {
    entries: Vec<ChannelEntry>,
    /// The newest seq given (entries may have expired since).
    last_seq: u64,
    sent: HashMap<(UserId, String), SendReceipt>,
    read: HashMap<UserId, u64>,
}

#[derive(Default)]
struct Logs {
    logs: HashMap<(AppId, GroupId), Log>,
    /// Every dedup key in `Log::sent` by server time (then acceptance), so
    /// `prune_sent` takes the oldest without a scan.
    sent_by_time: BTreeMap<(i64, u64), (AppId, GroupId, UserId, String)>,
    accepted: u64,
}

/// [`ChannelLog`] in memory.
#[derive(Default)]
pub struct MemoryChannelLog {
    state: Mutex<Logs>,
}

impl MemoryChannelLog {
    /// An empty log.
    pub fn new() -> MemoryChannelLog {
        MemoryChannelLog::default()
    }
}

#[async_trait]
impl ChannelLog for MemoryChannelLog {
    async fn append(&self, app: &AppId, entry: &ChannelEntry) -> Result<ChannelAppend> {
        let mut state = self.state.lock();
        let Logs {
            logs,
            sent_by_time,
            accepted,
        } = &mut *state;
        let log = logs.entry((app.clone(), entry.group.clone())).or_default();
        let key = (entry.sender.clone(), entry.client_msg_id.clone());
        if !entry.client_msg_id.is_empty()
            && let Some(receipt) = log.sent.get(&key)
        {
            return Ok(ChannelAppend::Duplicate(SendReceipt {
                duplicate: true,
                prev_version: 0,
                ..*receipt
            }));
        }
        if entry.kind == EntryKind::Edit
            && let Some(message) =
                log.entries.iter_mut().rev().find(|e| {
                    e.kind == EntryKind::Message && e.server_msg_id == entry.server_msg_id
                })
        {
            message.content = entry.content.clone();
            message.meta = entry.meta.clone();
        }
        let prev_seq = log.last_seq;
        let seq = prev_seq + 1;
        log.last_seq = seq;
        let mut stored = entry.clone();
        stored.seq = seq;
        log.entries.push(stored);
        if !entry.client_msg_id.is_empty() {
            *accepted += 1;
            sent_by_time.insert(
                (entry.server_time, *accepted),
                (
                    app.clone(),
                    entry.group.clone(),
                    entry.sender.clone(),
                    entry.client_msg_id.clone(),
                ),
            );
            log.sent.insert(
                key,
                SendReceipt {
                    server_msg_id: entry.server_msg_id,
                    version: 0,
                    seq,
                    server_time: entry.server_time,
                    duplicate: false,
                    prev_version: 0,
                },
            );
        }
        Ok(ChannelAppend::Appended { seq, prev_seq })
    }

    async fn range(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let state = self.state.lock();
        let Some(log) = state.logs.get(&(app.clone(), group.clone())) else {
            return Ok(ChannelPage::default());
        };
        let start = log.entries.partition_point(|e| e.seq <= after_seq);
        let rest = &log.entries[start..];
        let take = rest.len().min(limit);
        Ok(ChannelPage {
            entries: rest[..take].to_vec(),
            has_more: rest.len() > take,
        })
    }

    async fn range_before(
        &self,
        app: &AppId,
        group: &GroupId,
        before_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let state = self.state.lock();
        let Some(log) = state.logs.get(&(app.clone(), group.clone())) else {
            return Ok(ChannelPage::default());
        };
        let before = page_before(before_seq);
        let end = log.entries.partition_point(|e| e.seq < before);
        let start = end.saturating_sub(limit);
        Ok(ChannelPage {
            entries: log.entries[start..end].iter().rev().cloned().collect(),
            has_more: start > 0,
        })
    }

    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64> {
        Ok(self
            .state
            .lock()
            .logs
            .get(&(app.clone(), group.clone()))
            .map_or(0, |l| l.last_seq))
    }

    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>> {
        Ok(self
            .state
            .lock()
            .logs
            .get(&(app.clone(), group.clone()))
            .and_then(|l| {
                l.entries.iter().find(|e| {
                    e.server_msg_id == *id
                        && matches!(e.kind, EntryKind::Message | EntryKind::SystemNotice)
                })
            })
            .cloned())
    }

    async fn count_messages_after(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
    ) -> Result<u64> {
        let state = self.state.lock();
        Ok(state
            .logs
            .get(&(app.clone(), group.clone()))
            .map_or(0, |l| {
                let start = l.entries.partition_point(|e| e.seq <= after_seq);
                l.entries[start..]
                    .iter()
                    .filter(|e| e.kind.counts_as_unread())
                    .count() as u64
            }))
    }

    async fn set_read_seq(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        seq: u64,
    ) -> Result<()> {
        let mut state = self.state.lock();
        let log = state.logs.entry((app.clone(), group.clone())).or_default();
        let read = log.read.entry(user.clone()).or_default();
        *read = (*read).max(seq);
        Ok(())
    }

    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64> {
        Ok(self
            .state
            .lock()
            .logs
            .get(&(app.clone(), group.clone()))
            .and_then(|l| l.read.get(user).copied())
            .unwrap_or(0))
    }

    /// Chooses the `limit` oldest entries across the app's logs (each log
    /// is in time order), then cuts each log's front.
    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        let mut state = self.state.lock();
        let mut oldest: Vec<(i64, u64, GroupId)> = Vec::new();
        for ((a, group), log) in &state.logs {
            if a != app {
                continue;
            }
            oldest.extend(
                log.entries
                    .iter()
                    .take_while(|e| e.server_time < sent_before)
                    .take(limit + 1)
                    .map(|e| (e.server_time, e.seq, group.clone())),
            );
        }
        oldest.sort();
        let more = oldest.len() > limit;
        oldest.truncate(limit);
        let mut cut: HashMap<GroupId, usize> = HashMap::new();
        for (_, _, group) in oldest {
            *cut.entry(group).or_default() += 1;
        }
        let mut messages = Vec::new();
        for (group, n) in cut {
            if let Some(log) = state.logs.get_mut(&(app.clone(), group)) {
                messages.extend(log.entries.drain(..n).map(|e| e.server_msg_id));
            }
        }
        Ok(Expired { messages, more })
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        let mut state = self.state.lock();
        let Logs {
            logs, sent_by_time, ..
        } = &mut *state;
        let mut pruned = 0;
        while pruned < limit as u64 {
            let Some(entry) = sent_by_time.first_entry() else {
                break;
            };
            if entry.key().0 >= sent_before {
                break;
            }
            let (app, group, sender, client_msg_id) = entry.remove();
            if let Some(log) = logs.get_mut(&(app, group))
                && log.sent.remove(&(sender, client_msg_id)).is_some()
            {
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}
