//! The one delivery path: append every copy at once (durable before the
//! ack), stamp versions, remember the receipt for dedup, wake the indexer,
//! cache recent entries, push, and return the receipt.
//!
//! Messages, recalls, deletes, read cursors and receipts, and system
//! notices all come through [`Engine::deliver`].

use super::Engine;
use super::audience::{Audience, Holders, OwnerCopy};
use super::notify::Candidate;
use super::route::Outgoing;
use crate::error::Result;
use crate::ports::{AppendOutcome, ChannelAppend, Delivery, RecentPush};
use crate::push::PushEvent;
use crate::types::*;

use super::{Session, audience::system_user};

/// What every copy of one message shares.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    /// Message, recall, delete, read cursor or receipt, notice.
    pub kind: EntryKind,
    /// The message (for recalls, deletes and receipts: the one they name).
    pub server_msg_id: MsgId,
    /// Who caused it.
    pub sender: UserId,
    /// From which device.
    pub sender_device: DeviceId,
    /// The sender's dedup id; empty for what the server makes.
    pub client_msg_id: String,
    /// The sender's per-conversation counter.
    pub client_seq: u64,
    /// The sender's clock (ms).
    pub create_time: i64,
    /// The server's clock (ms).
    pub server_time: i64,
    /// What it says.
    pub content: Content,
    /// For read cursors: the version read up to.
    pub read_up_to: u64,
    /// Reply, forward, mentions, edit time, reaction, settings.
    pub meta: EntryMeta,
}

impl Envelope {
    /// What the server makes on its own (no dedup id, no client ordering),
    /// at `now`, caused by `sender` on `device`.
    pub(super) fn server_made(
        kind: EntryKind,
        server_msg_id: MsgId,
        sender: &UserId,
        device: &DeviceId,
        now: i64,
    ) -> Envelope {
        Envelope {
            kind,
            server_msg_id,
            sender: sender.clone(),
            sender_device: device.clone(),
            client_msg_id: String::new(),
            client_seq: 0,
            create_time: now,
            server_time: now,
            content: Content::none(),
            read_up_to: 0,
            meta: EntryMeta::none(),
        }
    }

    /// One owner's inbox entry of this message.
    pub(super) fn entry(&self, copy: OwnerCopy) -> InboxEntry {
        InboxEntry {
            owner: copy.owner,
            version: 0,
            kind: self.kind,
            conversation: copy.conversation,
            direction: copy.direction,
            server_msg_id: self.server_msg_id,
            sender: self.sender.clone(),
            sender_device: self.sender_device.clone(),
            client_msg_id: self.client_msg_id.clone(),
            client_seq: self.client_seq,
            create_time: self.create_time,
            server_time: self.server_time,
            content: self.content.clone(),
            read_up_to: self.read_up_to,
            meta: self.meta.clone(),
        }
    }

    /// This message as an entry of `group`'s log.
    pub(super) fn channel_entry(&self, group: GroupId) -> ChannelEntry {
        ChannelEntry {
            group,
            seq: 0,
            kind: self.kind,
            server_msg_id: self.server_msg_id,
            sender: self.sender.clone(),
            sender_device: self.sender_device.clone(),
            client_msg_id: self.client_msg_id.clone(),
            client_seq: self.client_seq,
            create_time: self.create_time,
            server_time: self.server_time,
            content: self.content.clone(),
            meta: self.meta.clone(),
        }
    }
}

/// One message on its way, with everywhere it goes.
pub(super) enum Fanout {
    /// Into inboxes, one entry per owner.
    Inboxes {
        /// The entries, the receipt's owner's first when there is one.
        entries: Vec<InboxEntry>,
        /// Whose copy's version the receipt names (`None`: no version).
        receipt_owner: Option<UserId>,
        /// Whether the search indexer must see the entries.
        index: bool,
    },
    /// Into a super group's log; its members are told.
    Channel {
        /// The log entry.
        entry: ChannelEntry,
        /// Who is told.
        members: Vec<UserId>,
    },
    /// Into the app's broadcast log; every session on `nodes` is told.
    Broadcast {
        /// The log entry.
        entry: ChannelEntry,
        /// The nodes to tell (this one always is).
        nodes: Vec<NodeId>,
    },
}

impl Fanout {
    /// `envelope` to every holder in `audience`; the receipt names the
    /// sender's own copy.
    pub(super) fn of(envelope: &Envelope, audience: Audience) -> Fanout {
        match audience.holders {
            Holders::Inboxes(copies) => Fanout::to_inboxes(envelope, copies),
            Holders::Channel { group, members } => Fanout::Channel {
                entry: envelope.channel_entry(group),
                members,
            },
        }
    }

    /// `envelope` into the inboxes of `copies`; the receipt names the
    /// sender's own copy.
    pub(super) fn to_inboxes(envelope: &Envelope, copies: Vec<OwnerCopy>) -> Fanout {
        Fanout::Inboxes {
            entries: copies.into_iter().map(|c| envelope.entry(c)).collect(),
            receipt_owner: Some(envelope.sender.clone()),
            index: false,
        }
    }

    /// Sets whether the search index must see inbox entries (messages to
    /// index, recalls and deletes to unindex).
    pub(super) fn indexed(mut self, on: bool) -> Fanout {
        if let Fanout::Inboxes { index, .. } = &mut self {
            *index = on;
        }
        self
    }
}

impl Engine {
    /// Delivers a fan-out: durable in every inbox (or the log) before this
    /// returns, then pushed to every holder's devices except the one that
    /// caused it (`origin`). A retried client message id writes nothing and
    /// returns the first receipt.
    pub(super) async fn deliver(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        fanout: Fanout,
    ) -> Result<SendReceipt> {
        match fanout {
            Fanout::Inboxes {
                entries,
                receipt_owner,
                index,
            } => {
                self.deliver_to_inboxes(app, origin, entries, receipt_owner, index)
                    .await
            }
            Fanout::Channel { entry, members } => {
                self.deliver_to_channel(app, origin, entry, members).await
            }
            Fanout::Broadcast { entry, nodes } => self.broadcast(app, entry, &nodes).await,
        }
    }

    async fn deliver_to_inboxes(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        entries: Vec<InboxEntry>,
        receipt_owner: Option<UserId>,
        index: bool,
    ) -> Result<SendReceipt> {
        let first = entries.first();
        let delivery = Delivery {
            sender: first.map_or_else(system_user, |e| e.sender.clone()),
            client_msg_id: first.map(|e| e.client_msg_id.clone()).unwrap_or_default(),
            receipt_entry: receipt_owner.and_then(|o| entries.iter().position(|e| e.owner == o)),
            index: index && self.inner.search.is_some(),
            entries,
        };
        let appended = match self.inner.inbox.append(app, &delivery).await? {
            AppendOutcome::Duplicate(receipt) => return Ok(receipt),
            AppendOutcome::Appended(appended) => appended,
        };
        let receipt = delivery.receipt(&appended);
        if delivery.index {
            self.inner.index_wakeup.notify_one();
        }
        let mut outgoing = Vec::with_capacity(appended.len());
        let mut candidates = Vec::new();
        let notifies = self.inner.notifications.is_some();
        for (mut entry, a) in delivery.entries.into_iter().zip(appended) {
            entry.version = a.version;
            if notifies && entry.kind == EntryKind::Message && entry.direction == Direction::In {
                candidates.push(Candidate {
                    app: app.clone(),
                    user: entry.owner.clone(),
                    conversation: entry.conversation.clone(),
                    server_msg_id: entry.server_msg_id,
                    sender: entry.sender.clone(),
                    server_time: entry.server_time,
                    content: entry.content.clone(),
                });
            }
            outgoing.push(Outgoing {
                except_device: origin_device(origin, &entry.owner),
                user: entry.owner.clone(),
                event: PushEvent::Entry {
                    entry,
                    prev_version: a.prev_version,
                },
            });
        }
        // The cache's writes, together: the receipt a retry would get and
        // each owner's recent window.
        futures_util::future::join(
            self.remember_receipt(app, &delivery.sender, &delivery.client_msg_id, &receipt),
            self.cache_recent(app, &outgoing),
        )
        .await;
        self.push(app, outgoing).await;
        self.offer_notifications(candidates);
        Ok(receipt)
    }

    async fn deliver_to_channel(
        &self,
        app: &AppId,
        origin: Option<&Session>,
        mut entry: ChannelEntry,
        members: Vec<UserId>,
    ) -> Result<SendReceipt> {
        let (seq, prev_seq) = match self.inner.channels.append(app, &entry).await? {
            ChannelAppend::Duplicate(receipt) => return Ok(receipt),
            ChannelAppend::Appended { seq, prev_seq } => (seq, prev_seq),
        };
        entry.seq = seq;
        let receipt = channel_receipt(&entry);
        self.remember_receipt(app, &entry.sender, &entry.client_msg_id, &receipt)
            .await;
        let except = origin.map(|s| (s.user.clone(), s.device.clone()));
        // A super group notifies only those its message mentions.
        let candidates: Vec<Candidate> = if self.inner.notifications.is_some()
            && entry.kind == EntryKind::Message
            && !entry.meta.is_empty()
        {
            members
                .iter()
                .filter(|m| **m != entry.sender && entry.meta.mentions(m))
                .map(|m| Candidate {
                    app: app.clone(),
                    user: m.clone(),
                    conversation: Conversation::super_group(&entry.group),
                    server_msg_id: entry.server_msg_id,
                    sender: entry.sender.clone(),
                    server_time: entry.server_time,
                    content: entry.content.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        self.push_to_members(app, members, except, PushEvent::Channel { entry, prev_seq })
            .await;
        self.offer_notifications(candidates);
        Ok(receipt)
    }

    async fn broadcast(
        &self,
        app: &AppId,
        mut entry: ChannelEntry,
        nodes: &[NodeId],
    ) -> Result<SendReceipt> {
        let (seq, prev_seq) = match self.inner.channels.append(app, &entry).await? {
            ChannelAppend::Duplicate(receipt) => return Ok(receipt),
            ChannelAppend::Appended { seq, prev_seq } => (seq, prev_seq),
        };
        entry.seq = seq;
        let receipt = channel_receipt(&entry);
        self.push_app_wide(app, PushEvent::Broadcast { entry, prev_seq }, nodes)
            .await;
        Ok(receipt)
    }

    /// Lets a retry within the dedup window skip the store. A cache that
    /// fails costs only that: the stores deduplicate too.
    async fn remember_receipt(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
        receipt: &SendReceipt,
    ) {
        if client_msg_id.is_empty() {
            return;
        }
        let ttl = self.inner.config.dedup_ttl;
        match self
            .inner
            .cache
            .dedup_put(app, sender, client_msg_id, receipt, ttl)
            .await
        {
            Ok(_) => self.cache_answered(),
            Err(e) => self.cache_failed(&e),
        }
    }

    /// Keeps each entry of a delivery in its owner's recent window, which
    /// serves syncs: one call for them all, which a cache across the network
    /// (Redis) sends in one round trip instead of one per owner (a hundred
    /// for a group of a hundred).
    async fn cache_recent(&self, app: &AppId, outgoing: &[Outgoing]) {
        let pushes: Vec<RecentPush<'_>> = outgoing
            .iter()
            .filter_map(|o| match &o.event {
                PushEvent::Entry {
                    entry,
                    prev_version,
                } => Some(RecentPush {
                    prev_version: *prev_version,
                    entry,
                }),
                _ => None,
            })
            .collect();
        if pushes.is_empty() {
            return;
        }
        // A window that missed an entry restarts at the next one (its
        // `prev_version` will not match), so a failed write hides nothing.
        let cap = self.inner.config.recent_cap;
        match self.inner.cache.push_recent_many(app, &pushes, cap).await {
            Ok(()) => self.cache_answered(),
            Err(e) => self.cache_failed(&e),
        }
    }
}

/// The device that caused a delivery, if `owner` is its user: it has the
/// answer already and gets no push.
fn origin_device(origin: Option<&Session>, owner: &UserId) -> Option<DeviceId> {
    origin
        .filter(|s| s.user == *owner)
        .map(|s| s.device.clone())
}

/// The receipt of a log entry: its seq, no inbox version.
fn channel_receipt(entry: &ChannelEntry) -> SendReceipt {
    SendReceipt {
        server_msg_id: entry.server_msg_id,
        version: 0,
        seq: entry.seq,
        server_time: entry.server_time,
        duplicate: false,
        prev_version: 0,
    }
}
