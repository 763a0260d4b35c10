use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::ports::{ChannelAppend, ChannelLog};
use crate::types::*;

#[derive(Default)]
struct Log {
    entries: Vec<ChannelEntry>,
    sent: HashMap<(UserId, String), SendReceipt>,
    read: HashMap<UserId, u64>,
}

/// [`ChannelLog`] in memory.
#[derive(Default)]
pub struct MemoryChannelLog {
    logs: Mutex<HashMap<(AppId, GroupId), Log>>,
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
        let mut logs = self.logs.lock();
        let log = logs.entry((app.clone(), entry.group.clone())).or_default();
        let key = (entry.sender.clone(), entry.client_msg_id.clone());
        if !entry.client_msg_id.is_empty()
            && let Some(receipt) = log.sent.get(&key)
        {
            return Ok(ChannelAppend::Duplicate(SendReceipt {
                duplicate: true,
                ..*receipt
            }));
        }
        let prev_seq = log.entries.last().map_or(0, |e| e.seq);
        let seq = prev_seq + 1;
        let mut stored = entry.clone();
        stored.seq = seq;
        log.entries.push(stored);
        if !entry.client_msg_id.is_empty() {
            log.sent.insert(
                key,
                SendReceipt {
                    server_msg_id: entry.server_msg_id,
                    version: 0,
                    seq,
                    server_time: entry.server_time,
                    duplicate: false,
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
        let logs = self.logs.lock();
        let Some(log) = logs.get(&(app.clone(), group.clone())) else {
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

    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64> {
        Ok(self
            .logs
            .lock()
            .get(&(app.clone(), group.clone()))
            .and_then(|l| l.entries.last())
            .map_or(0, |e| e.seq))
    }

    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>> {
        Ok(self
            .logs
            .lock()
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
        let logs = self.logs.lock();
        Ok(logs.get(&(app.clone(), group.clone())).map_or(0, |l| {
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
        let mut logs = self.logs.lock();
        let log = logs.entry((app.clone(), group.clone())).or_default();
        let read = log.read.entry(user.clone()).or_default();
        *read = (*read).max(seq);
        Ok(())
    }

    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64> {
        Ok(self
            .logs
            .lock()
            .get(&(app.clone(), group.clone()))
            .and_then(|l| l.read.get(user).copied())
            .unwrap_or(0))
    }
}
