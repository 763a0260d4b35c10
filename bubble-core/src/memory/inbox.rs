use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::ports::*;
use crate::types::*;

/// Entries per chunk of an owner's log. An append never moves more than
/// one chunk: a single `Vec` of a busy owner's history would be copied
/// whole each time it doubled (hundreds of MB under the lock at a few
/// million entries, a stall every sender waits for).
const CHUNK: usize = 1024;

/// One owner's inbox with the indexes its reads need, so no read or read
/// mark scans the history: the cost of each stays flat as it grows.
#[derive(Default)]
struct Owner {
    /// Entries in version order with their read flag, in chunks of
    /// [`CHUNK`]. Versions are consecutive from 1: version `v` is at
    /// position `v - 1`.
    chunks: Vec<Vec<(InboxEntry, bool)>>,
    last_version: u64,
    /// Versions up to this one were deleted by retention
    /// ([`InboxStore::expire`]): they read as absent.
    expired: u64,
    /// Leading chunks dropped whole (every version in them expired), so
    /// version `v` is at position `v - 1 - dropped * CHUNK`.
    dropped: usize,
    /// Versions of the message/notice entries ([`InboxStore::get`]) by id.
    by_msg: HashMap<MsgId, Vec<u64>>,
    /// Versions of unread received messages, per conversation.
    unread: BTreeMap<Conversation, BTreeSet<u64>>,
    /// Versions of received messages, per conversation, ascending: the
    /// newest one a read mark covers.
    received: HashMap<Conversation, Vec<u64>>,
    /// Versions of every entry, per conversation, ascending: history pages.
    by_conversation: HashMap<Conversation, Vec<u64>>,
    /// The conversation list's rows, and their order.
    conversations: HashMap<Conversation, ConversationRow>,
    by_activity: BTreeMap<u64, Conversation>,
}

/// One row of the conversation list (the rules of
/// [`InboxStore::conversations`]).
struct ConversationRow {
    activity: u64,
    /// The version of the entry shown as the last one.
    last: u64,
    /// The message that entry is, or names.
    last_msg: MsgId,
    unread: u64,
    read_up_to: u64,
    peer_read_up_to: u64,
    /// The version of the newest received message that mentions the owner.
    mention: u64,
    settings: ConversationSettings,
}

impl ConversationRow {
    /// A row with no activity yet (settings before any message).
    fn empty(last_msg: MsgId) -> ConversationRow {
        ConversationRow {
            activity: 0,
            last: 0,
            last_msg,
            unread: 0,
            read_up_to: 0,
            peer_read_up_to: 0,
            mention: 0,
            settings: ConversationSettings::default(),
        }
    }
}

impl Owner {
    /// Where version `version` lives: (chunk, position), `None` if it was
    /// never given or has expired.
    fn slot(&self, version: u64) -> Option<(usize, usize)> {
        if version <= self.expired {
            return None;
        }
        let i = usize::try_from(version.checked_sub(1)?).ok()?;
        Some(((i / CHUNK).checked_sub(self.dropped)?, i % CHUNK))
    }

    fn at(&self, version: u64) -> Option<&(InboxEntry, bool)> {
        let (chunk, i) = self.slot(version)?;
        self.chunks.get(chunk)?.get(i)
    }

    fn at_mut(&mut self, version: u64) -> Option<&mut (InboxEntry, bool)> {
        let (chunk, i) = self.slot(version)?;
        self.chunks.get_mut(chunk)?.get_mut(i)
    }

    /// The entries still held, oldest first.
    fn entries(&self) -> impl Iterator<Item = &InboxEntry> {
        let expired = self.expired;
        self.chunks
            .iter()
            .flatten()
            .map(|(e, _)| e)
            .filter(move |e| e.version > expired)
    }

    /// The ids and times of up to `limit` of the oldest entries sent
    /// before `sent_before`.
    fn expiring(&self, sent_before: i64, limit: usize) -> impl Iterator<Item = (i64, MsgId)> {
        (self.expired + 1..=self.last_version)
            .map_while(move |v| {
                let (e, _) = self.at(v)?;
                (e.server_time < sent_before).then_some((e.server_time, e.server_msg_id))
            })
            .take(limit)
    }

    /// Deletes the oldest entries while they are of a message in `chosen`,
    /// with what indexes them; puts the ids of their messages in `ids`.
    fn expire(&mut self, chosen: &HashSet<MsgId>, ids: &mut HashSet<MsgId>) {
        let mut touched = HashSet::new();
        loop {
            let version = self.expired + 1;
            let Some((entry, read)) = self.at(version) else {
                break;
            };
            if !chosen.contains(&entry.server_msg_id) {
                break;
            }
            let (entry, read) = (entry.clone(), *read);
            self.expired = version;
            ids.insert(entry.server_msg_id);
            if let Some(versions) = self.by_msg.get_mut(&entry.server_msg_id) {
                versions.retain(|&v| v != version);
                if versions.is_empty() {
                    self.by_msg.remove(&entry.server_msg_id);
                }
            }
            if is_readable_message(&entry) && !read {
                if let Some(row) = self.conversations.get_mut(&entry.conversation) {
                    row.unread = row.unread.saturating_sub(1);
                }
                if let Some(set) = self.unread.get_mut(&entry.conversation) {
                    set.remove(&version);
                    if set.is_empty() {
                        self.unread.remove(&entry.conversation);
                    }
                }
            }
            touched.insert(entry.conversation);
        }
        let expired = self.expired;
        for c in touched {
            for versions in [self.received.get_mut(&c), self.by_conversation.get_mut(&c)]
                .into_iter()
                .flatten()
            {
                let gone = versions.partition_point(|&v| v <= expired);
                versions.drain(..gone);
            }
            // A row whose shown entry went leaves the list (its settings
            // and read positions stay for its next message); a mention that
            // went no longer marks it.
            if let Some(row) = self.conversations.get_mut(&c) {
                if row.mention <= expired {
                    row.mention = 0;
                }
                if row.activity != 0 && row.last <= expired {
                    self.by_activity.remove(&row.activity);
                    row.activity = 0;
                }
            }
        }
        while self.chunks.len() > 1 && (self.dropped + 1) * CHUNK <= expired as usize {
            self.chunks.remove(0);
            self.dropped += 1;
        }
    }

    /// Appends `entry` as the next version, indexing it.
    fn push(&mut self, mut entry: InboxEntry) -> Appended {
        if entry.kind == EntryKind::Edit {
            self.edit(&entry);
        }
        let prev_version = self.last_version;
        let version = prev_version + 1;
        self.last_version = version;
        entry.version = version;
        if matches!(entry.kind, EntryKind::Message | EntryKind::SystemNotice) {
            self.by_msg
                .entry(entry.server_msg_id)
                .or_default()
                .push(version);
        }
        if is_readable_message(&entry) {
            self.unread
                .entry(entry.conversation.clone())
                .or_default()
                .insert(version);
            self.received
                .entry(entry.conversation.clone())
                .or_default()
                .push(version);
        }
        self.by_conversation
            .entry(entry.conversation.clone())
            .or_default()
            .push(version);
        self.list(&entry);
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push((entry, false));
        }
        Appended {
            version,
            prev_version,
        }
    }

    /// Applies a new entry (its version set) to its conversation's row.
    fn list(&mut self, entry: &InboxEntry) {
        let c = &entry.conversation;
        match entry.kind {
            EntryKind::Message | EntryKind::SystemNotice => {
                let activity = activity_key(entry.server_time, entry.version);
                let row = self
                    .conversations
                    .entry(c.clone())
                    .or_insert_with(|| ConversationRow::empty(entry.server_msg_id));
                if row.activity != 0 {
                    self.by_activity.remove(&row.activity);
                }
                row.activity = activity;
                row.last = entry.version;
                row.last_msg = entry.server_msg_id;
                let received = is_readable_message(entry);
                row.unread += u64::from(received);
                if received && entry.meta.mentions(&entry.owner) {
                    row.mention = entry.version;
                }
                self.by_activity.insert(activity, c.clone());
            }
            EntryKind::Settings => {
                if let Some(settings) = entry.meta.settings() {
                    self.conversations
                        .entry(c.clone())
                        .or_insert_with(|| ConversationRow::empty(entry.server_msg_id))
                        .settings = settings;
                }
            }
            EntryKind::Edit | EntryKind::Reaction => {}
            EntryKind::Recall | EntryKind::Delete => {
                if let Some(row) = self.conversations.get_mut(c)
                    && row.last_msg == entry.server_msg_id
                {
                    row.last = entry.version;
                }
            }
            EntryKind::ReadCursor => {
                if let Some(row) = self.conversations.get_mut(c) {
                    row.read_up_to = row.read_up_to.max(entry.read_up_to);
                }
            }
            EntryKind::ReadReceipt => {
                if let Some(row) = self.conversations.get_mut(c) {
                    row.peer_read_up_to = row.peer_read_up_to.max(entry.read_up_to);
                }
            }
        }
    }

    /// Gives the owner's entry of the message an edit names the edit's
    /// content and meta.
    fn edit(&mut self, edit: &InboxEntry) {
        let versions = self.by_msg.get(&edit.server_msg_id).cloned();
        for v in versions.unwrap_or_default() {
            if let Some((e, _)) = self.at_mut(v)
                && e.kind == EntryKind::Message
            {
                e.content = edit.content.clone();
                e.meta = edit.meta.clone();
            }
        }
    }

    /// Marks one unread received message read; false if it was not unread.
    fn mark(&mut self, version: u64) -> bool {
        let Some((entry, read)) = self.at_mut(version) else {
            return false;
        };
        if *read || !is_readable_message(entry) {
            return false;
        }
        *read = true;
        let conversation = entry.conversation.clone();
        if let Some(row) = self.conversations.get_mut(&conversation) {
            row.unread = row.unread.saturating_sub(1);
        }
        if let Some(set) = self.unread.get_mut(&conversation) {
            set.remove(&version);
            if set.is_empty() {
                self.unread.remove(&conversation);
            }
        }
        true
    }
}

/// The accepted client message ids, one map per sender: no single map
/// holds every message ever sent, so none is ever rehashed whole.
type SentBySender = HashMap<(AppId, UserId), HashMap<String, SendReceipt>>;

#[derive(Default)]
struct State {
    owners: HashMap<(AppId, UserId), Owner>,
    sent: SentBySender,
    /// The keys of `sent` by server time (then acceptance), so
    /// `prune_sent` takes the oldest without a scan.
    sent_by_time: BTreeMap<(i64, u64), (AppId, UserId, String)>,
    accepted: u64,
    /// One row per indexed delivery: its owners and their versions.
    outbox: BTreeMap<u64, (AppId, Vec<(UserId, u64)>)>,
    next_outbox: u64,
    /// Reactions per message: who put each emoji there.
    reactions: HashMap<(AppId, MsgId), BTreeMap<String, BTreeSet<UserId>>>,
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
    entry.starts_unread()
}

#[async_trait]
impl InboxStore for MemoryInbox {
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome> {
        let mut state = self.state.lock();
        let sender = (app.clone(), delivery.sender.clone());
        let keyed = !delivery.client_msg_id.is_empty();
        if keyed
            && let Some(receipt) = state
                .sent
                .get(&sender)
                .and_then(|m| m.get(&delivery.client_msg_id))
        {
            return Ok(AppendOutcome::Duplicate(SendReceipt {
                duplicate: true,
                prev_version: 0,
                ..*receipt
            }));
        }
        let mut out = Vec::with_capacity(delivery.entries.len());
        let mut indexed = Vec::new();
        for entry in &delivery.entries {
            let appended = state
                .owners
                .entry((app.clone(), entry.owner.clone()))
                .or_default()
                .push(entry.clone());
            if delivery.index {
                indexed.push((entry.owner.clone(), appended.version));
            }
            out.push(appended);
        }
        if !indexed.is_empty() {
            let id = state.next_outbox;
            state.next_outbox += 1;
            state.outbox.insert(id, (app.clone(), indexed));
        }
        if keyed {
            let receipt = delivery.receipt(&out);
            state.accepted += 1;
            let at = (receipt.server_time, state.accepted);
            state.sent_by_time.insert(
                at,
                (
                    app.clone(),
                    delivery.sender.clone(),
                    delivery.client_msg_id.clone(),
                ),
            );
            state
                .sent
                .entry(sender)
                .or_default()
                .insert(delivery.client_msg_id.clone(), receipt);
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
        // Versions up to `expired` are gone: a page starts after them.
        let first = after_version.max(o.expired).saturating_add(1);
        let last = o.last_version.min(first.saturating_add(limit as u64) - 1);
        let entries: Vec<InboxEntry> = (first..=last)
            .filter_map(|v| o.at(v).map(|(e, _)| e.clone()))
            .collect();
        Ok(InboxPage {
            has_more: last < o.last_version,
            entries,
        })
    }

    async fn history(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        before_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let state = self.state.lock();
        let Some(versions) = state
            .owners
            .get(&(app.clone(), owner.clone()))
            .and_then(|o| Some((o, o.by_conversation.get(conversation)?)))
        else {
            return Ok(InboxPage::default());
        };
        let (o, versions) = versions;
        let before = page_before(before_version);
        let end = versions.partition_point(|&v| v < before);
        let start = end.saturating_sub(limit);
        Ok(InboxPage {
            entries: versions[start..end]
                .iter()
                .rev()
                .filter_map(|&v| o.at(v).map(|(e, _)| e.clone()))
                .collect(),
            has_more: start > 0,
        })
    }

    async fn conversations(
        &self,
        app: &AppId,
        owner: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<ConversationPage> {
        let state = self.state.lock();
        let Some(o) = state.owners.get(&(app.clone(), owner.clone())) else {
            return Ok(ConversationPage::default());
        };
        let before = page_before(before);
        let mut rows = o.by_activity.range(..before).rev();
        let mut conversations = Vec::new();
        for (_, c) in rows.by_ref().take(limit) {
            let row = &o.conversations[c];
            let Some((last, _)) = o.at(row.last) else {
                continue;
            };
            conversations.push(ConversationSummary {
                conversation: c.clone(),
                activity: row.activity,
                last: last.clone(),
                unread: row.unread,
                read_up_to: row.read_up_to,
                peer_read_up_to: row.peer_read_up_to,
                settings: row.settings.clone(),
                mentioned: row.mention > row.read_up_to,
            });
        }
        Ok(ConversationPage {
            conversations,
            has_more: rows.next().is_some(),
        })
    }

    async fn settings(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        let state = self.state.lock();
        Ok(state
            .owners
            .get(&(app.clone(), owner.clone()))
            .and_then(|o| o.conversations.get(conversation))
            .map(|row| row.settings.clone())
            .unwrap_or_default())
    }

    async fn blocked(&self, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
        let state = self.state.lock();
        let Some(o) = state.owners.get(&(app.clone(), owner.clone())) else {
            return Ok(Vec::new());
        };
        let mut peers: Vec<UserId> = o
            .conversations
            .iter()
            .filter(|(c, row)| c.kind == ConversationKind::Direct && row.settings.blocked)
            .map(|(c, _)| UserId::new(c.id()))
            .collect();
        peers.sort();
        Ok(peers)
    }

    async fn readers(
        &self,
        app: &AppId,
        conversation: &Conversation,
        id: &MsgId,
        members: &[UserId],
    ) -> Result<MessageReaders> {
        let state = self.state.lock();
        let mut result = MessageReaders::default();
        for member in members {
            let Some(o) = state.owners.get(&(app.clone(), member.clone())) else {
                continue;
            };
            let copy = o.by_msg.get(id).into_iter().flatten().find_map(|&v| {
                let (e, _) = o.at(v)?;
                (e.conversation == *conversation && is_readable_message(e)).then_some(v)
            });
            let Some(version) = copy else { continue };
            result.received += 1;
            if o.conversations
                .get(conversation)
                .is_some_and(|row| row.read_up_to >= version)
            {
                result.readers.push(member.clone());
            }
        }
        result.readers.sort();
        Ok(result)
    }

    async fn react(
        &self,
        app: &AppId,
        id: &MsgId,
        user: &UserId,
        emoji: &str,
        add: bool,
        limits: ReactionLimits,
    ) -> Result<bool> {
        let mut state = self.state.lock();
        let on_message = state.reactions.entry((app.clone(), *id)).or_default();
        if !add {
            let Some(users) = on_message.get_mut(emoji) else {
                return Ok(false);
            };
            let changed = users.remove(user);
            if users.is_empty() {
                on_message.remove(emoji);
            }
            return Ok(changed);
        }
        if on_message
            .get(emoji)
            .is_some_and(|users| users.contains(user))
        {
            return Ok(false);
        }
        limits.check(
            on_message.len() + usize::from(!on_message.contains_key(emoji)),
            on_message.values().filter(|u| u.contains(user)).count() + 1,
        )?;
        on_message
            .entry(emoji.to_owned())
            .or_default()
            .insert(user.clone());
        Ok(true)
    }

    async fn reactions(
        &self,
        app: &AppId,
        ids: &[MsgId],
        viewer: &UserId,
    ) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
        let state = self.state.lock();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let on_message = state.reactions.get(&(app.clone(), *id))?;
                let counts: Vec<ReactionCount> = on_message
                    .iter()
                    .map(|(emoji, users)| ReactionCount {
                        emoji: emoji.clone(),
                        count: users.len() as u64,
                        mine: users.contains(viewer),
                    })
                    .collect();
                (!counts.is_empty()).then_some((*id, counts))
            })
            .collect())
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
                let first = *o.by_msg.get(id)?.first()?;
                o.at(first).map(|(e, _)| e.clone())
            }))
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
        let covered: Vec<u64> = o
            .unread
            .get(conversation)
            .map(|set| set.range(..=up_to).copied().collect())
            .unwrap_or_default();
        let mut result = MarkedRead::default();
        for version in covered {
            if o.mark(version) {
                result.marked += 1;
            }
        }
        result.last_read = o.received.get(conversation).and_then(|versions| {
            let covered = versions.partition_point(|v| *v <= up_to);
            let newest = *versions.get(covered.checked_sub(1)?)?;
            o.at(newest).map(|(e, _)| e.clone())
        });
        Ok(result)
    }

    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool> {
        let mut state = self.state.lock();
        let Some(o) = state.owners.get_mut(&(app.clone(), owner.clone())) else {
            return Ok(false);
        };
        let versions = o.by_msg.get(id).cloned().unwrap_or_default();
        let mut changed = false;
        for version in versions {
            changed |= o.mark(version);
        }
        Ok(changed)
    }

    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>> {
        let state = self.state.lock();
        let Some(o) = state.owners.get(&(app.clone(), owner.clone())) else {
            return Ok(Vec::new());
        };
        Ok(o.unread
            .iter()
            .map(|(conversation, set)| UnreadCount {
                conversation: conversation.clone(),
                count: set.len() as u64,
                mentioned: o
                    .conversations
                    .get(conversation)
                    .is_some_and(|row| row.mention > row.read_up_to),
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
            .get(&(app.clone(), sender.clone()))
            .and_then(|m| m.get(client_msg_id))
            .map(|r| SendReceipt {
                duplicate: true,
                prev_version: 0,
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
                    .and_then(|o| o.at(*version))
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
            let entries = || inbox.entries();
            let deleted: HashSet<MsgId> = entries()
                .filter(|e| e.kind == EntryKind::Delete)
                .map(|e| e.server_msg_id)
                .collect();
            for e in entries() {
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

    /// Walks every owner of `app` (a reference store's scan) twice: once
    /// to choose the `limit` oldest messages, once to delete their entries.
    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        let mut state = self.state.lock();
        let mut oldest: BTreeSet<(i64, MsgId)> = BTreeSet::new();
        for ((a, _), o) in &state.owners {
            if a == app {
                oldest.extend(o.expiring(sent_before, limit));
            }
        }
        let mut chosen = HashSet::new();
        for (_, id) in oldest {
            if chosen.len() == limit {
                break;
            }
            chosen.insert(id);
        }
        let mut ids = HashSet::new();
        for ((a, _), o) in state.owners.iter_mut() {
            if a == app {
                o.expire(&chosen, &mut ids);
            }
        }
        let more = state
            .owners
            .iter()
            .filter(|((a, _), _)| a == app)
            .any(|(_, o)| {
                o.at(o.expired + 1)
                    .is_some_and(|(e, _)| e.server_time < sent_before)
            });
        let State {
            owners,
            outbox,
            reactions,
            ..
        } = &mut *state;
        outbox.retain(|_, (a, held)| {
            a != app
                || held.iter().any(|(owner, version)| {
                    owners
                        .get(&(a.clone(), owner.clone()))
                        .is_some_and(|o| o.at(*version).is_some())
                })
        });
        for id in &ids {
            reactions.remove(&(app.clone(), *id));
        }
        let mut messages: Vec<MsgId> = ids.into_iter().collect();
        messages.sort();
        Ok(Expired { messages, more })
    }

    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64> {
        let mut state = self.state.lock();
        let State {
            sent, sent_by_time, ..
        } = &mut *state;
        let mut pruned = 0;
        while pruned < limit as u64 {
            let Some(oldest) = sent_by_time.first_entry() else {
                break;
            };
            if oldest.key().0 >= sent_before {
                break;
            }
            let (app, sender, client_msg_id) = oldest.remove();
            let key = (app, sender);
            if let Some(m) = sent.get_mut(&key)
                && m.remove(&client_msg_id).is_some()
            {
                pruned += 1;
                if m.is_empty() {
                    sent.remove(&key);
                }
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::direct_delivery;

    /// Enough entries for one owner to span three chunks.
    const N: u64 = 2 * CHUNK as u64 + 500;

    async fn busy_owner() -> (MemoryInbox, AppId, UserId) {
        let store = MemoryInbox::new();
        let app = AppId::new("a");
        for i in 0..N {
            store
                .append(&app, &direct_delivery("alice", "bob", &format!("m{i}"), ""))
                .await
                .unwrap();
        }
        (store, app, UserId::new("bob"))
    }

    #[tokio::test]
    async fn pages_cross_chunk_boundaries_without_gaps() {
        let (store, app, bob) = busy_owner().await;
        let mut after = 0;
        let mut seen = 0;
        loop {
            let page = store.pull(&app, &bob, after, 333).await.unwrap();
            for e in &page.entries {
                assert_eq!(e.version, after + 1, "consecutive across chunks");
                after = e.version;
                seen += 1;
            }
            if !page.has_more {
                break;
            }
        }
        assert_eq!(seen, N);
        let at_boundary = store.pull(&app, &bob, CHUNK as u64 - 1, 2).await.unwrap();
        let versions: Vec<u64> = at_boundary.entries.iter().map(|e| e.version).collect();
        assert_eq!(versions, [CHUNK as u64, CHUNK as u64 + 1]);
        assert!(
            store
                .pull(&app, &bob, N, 10)
                .await
                .unwrap()
                .entries
                .is_empty()
        );
    }

    #[tokio::test]
    async fn read_marks_use_the_indexes_not_a_scan() {
        let (store, app, bob) = busy_owner().await;
        let alice = Conversation::direct(&UserId::new("alice"));
        let marked = store.mark_read(&app, &bob, &alice, 2_000).await.unwrap();
        assert_eq!(marked.marked, 2_000);
        assert_eq!(marked.last_read.unwrap().version, 2_000);
        let again = store.mark_read(&app, &bob, &alice, 2_000).await.unwrap();
        assert_eq!(again.marked, 0, "nothing left to mark");
        assert_eq!(again.last_read.unwrap().version, 2_000, "still named");
        let unread = store.unread(&app, &bob).await.unwrap();
        assert_eq!(unread[0].count, N - 2_000);
        let last = store.pull(&app, &bob, N - 1, 1).await.unwrap().entries[0].clone();
        assert!(
            store
                .mark_message_read(&app, &bob, &last.server_msg_id)
                .await
                .unwrap()
        );
        assert_eq!(store.unread(&app, &bob).await.unwrap()[0].count, N - 2_001);
        let everything = store.mark_read(&app, &bob, &alice, u64::MAX).await.unwrap();
        assert_eq!(everything.marked, N - 2_001);
        assert!(
            store.unread(&app, &bob).await.unwrap().is_empty(),
            "a conversation with nothing unread is left out"
        );
    }
}
