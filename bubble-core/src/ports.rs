//! The ports: traits every backend implements. The engine holds them as `Arc<dyn …>`.
//!
//! Each port says what its implementations must guarantee; the `testkit`
//! conformance suite checks those guarantees against every adapter.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::apps::AppConfig;
use crate::error::Result;
use crate::push::Push;
use crate::types::*;

// ------------------------------------------------------------------ inbox

/// One message (or recall, receipt, notice) written into several inboxes at
/// once: the unit of fan-out on write.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who caused it; with `client_msg_id` it forms the dedup key.
    pub sender: UserId,
    /// The sender's dedup id; empty means "no dedup" (server-made entries).
    pub client_msg_id: String,
    /// One entry per owner. Their `version` is ignored: the store assigns it.
    pub entries: Vec<InboxEntry>,
    /// Whether the search indexer must see these entries (a durable outbox,
    /// written in the same transaction, so nothing acknowledged goes unindexed).
    pub index: bool,
    /// The entry whose version the receipt names: the sender's own copy (for
    /// a notice to one user, that user's). `None`: the receipt names none.
    pub receipt_entry: Option<usize>,
}

impl Delivery {
    /// The receipt of this delivery once appended with `appended`: the one
    /// rule the engine answers with and every store keeps for a retry.
    pub fn receipt(&self, appended: &[Appended]) -> SendReceipt {
        let first = self.entries.first();
        let own = self.receipt_entry.and_then(|i| appended.get(i));
        SendReceipt {
            server_msg_id: first.map(|e| e.server_msg_id).unwrap_or_default(),
            version: own.map_or(0, |a| a.version),
            seq: 0,
            server_time: first.map_or(0, |e| e.server_time),
            duplicate: false,
            prev_version: own.map_or(0, |a| a.prev_version),
        }
    }
}

/// Where one owner's entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The version the store gave the entry.
    pub version: u64,
    /// The owner's version just before it (0 for the first): a device that
    /// holds less has missed something.
    pub prev_version: u64,
}

/// What [`InboxStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written; one [`Appended`] per entry, in the order given.
    Appended(Vec<Appended>),
    /// `(sender, client_msg_id)` was accepted before: nothing was written;
    /// here is the original receipt.
    Duplicate(SendReceipt),
}

/// What one [`InboxStore::expire`] call deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    /// The messages whose entries were deleted, each once, so their search
    /// documents go too.
    pub messages: Vec<MsgId>,
    /// Whether messages older than the cutoff remain (call again).
    pub more: bool,
}

/// What [`InboxStore::mark_read`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkedRead {
    /// Entries that went from unread to read.
    pub marked: u64,
    /// The newest received message at or below the mark, if any: the read
    /// receipt names it to its sender.
    pub last_read: Option<InboxEntry>,
}

/// A delivery (or part of one) waiting in the search outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTask {
    /// The outbox row, passed back to [`InboxStore::complete_index`].
    pub id: u64,
    /// The app the entry belongs to.
    pub app: AppId,
    /// One of the entries: a message to index, or a recall/delete to
    /// unindex. Every owner's entry of one delivery carries the same
    /// message fields (id, sender, times, content); only the owner, its
    /// version, direction and view of the conversation differ.
    pub entry: InboxEntry,
    /// The owners this task is for, `entry.owner` among them. A store
    /// may give one task per owner or one per delivery: the indexer treats
    /// the union of a message's tasks alike.
    pub owners: Vec<UserId>,
}

/// Who of a group's members got one message and who has read it
/// ([`InboxStore::readers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageReaders {
    /// How many of the members asked about received it.
    pub received: u64,
    /// Those whose read mark covers it, in user id order.
    pub readers: Vec<UserId>,
}

/// The caps on reactions an app sets ([`InboxStore::react`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionLimits {
    /// Distinct emoji on one message.
    pub per_message: usize,
    /// Emoji one user puts on one message.
    pub per_user: usize,
}

impl ReactionLimits {
    /// Refuses an add that would leave `distinct` emoji on the message, or
    /// `mine` emoji of the user on it, past the caps: one error, the same
    /// from every store.
    pub fn check(self, distinct: usize, mine: usize) -> Result<()> {
        if distinct > self.per_message {
            return Err(crate::Error::new(
                crate::ErrorKind::TooLarge,
                format!(
                    "a message takes at most {} different reactions (the app's \
                     reactions_per_message)",
                    self.per_message
                ),
            ));
        }
        if mine > self.per_user {
            return Err(crate::Error::new(
                crate::ErrorKind::TooLarge,
                format!(
                    "one user puts at most {} reactions on a message (the app's \
                     reactions_per_user); remove one first",
                    self.per_user
                ),
            ));
        }
        Ok(())
    }
}

/// One message as the inbox store holds it, with every owner who still
/// holds it: what a search rebuild indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// One owner's entry (kind `Message` or `SystemNotice`): the message
    /// fields are the same in every owner's entry.
    pub entry: InboxEntry,
    /// The owners whose inbox holds it and who did not delete it for
    /// themselves, `entry.owner` among them, each once.
    pub owners: Vec<UserId>,
}

/// Fan-out-on-write inboxes: one version space per user (the seed's message table).
///
/// Guarantees (checked by `testkit`):
/// - `append` is atomic: every entry of a delivery is written, or none.
/// - versions strictly increase per owner, also under concurrent appends
///   from many tasks or nodes; gaps are allowed.
/// - a non-empty `(app, sender, client_msg_id)` is accepted once; later
///   appends return [`AppendOutcome::Duplicate`] with the first receipt,
///   also when they race the first one.
/// - nothing crosses apps.
#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// Writes a delivery, giving each entry its owner's next version.
    ///
    /// An [`EntryKind::Edit`] entry also replaces, in the same write, the
    /// content and meta of its owner's entry of the message it names (kind
    /// `Message`) with its own: every later read of that entry (pull,
    /// history, get, the conversation list) shows the edited message.
    async fn append(&self, app: &AppId, delivery: &Delivery) -> Result<AppendOutcome>;

    /// Entries of `owner` with version > `after_version`, in order, at most `limit`.
    async fn pull(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<InboxPage>;

    /// The owner's newest version (0 when the inbox is empty).
    async fn last_version(&self, app: &AppId, owner: &UserId) -> Result<u64>;

    /// The owner's [`EntryKind::Message`] or [`EntryKind::SystemNotice`] entry for a message id.
    async fn get(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<Option<InboxEntry>>;

    /// Marks the owner's received messages in `conversation` with version
    /// <= `up_to` as read.
    async fn mark_read(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<MarkedRead>;

    /// Marks one message read (after a recall or a delete, so it stops counting).
    async fn mark_message_read(&self, app: &AppId, owner: &UserId, id: &MsgId) -> Result<bool>;

    /// Unread received messages per conversation (conversations with none are left out).
    async fn unread(&self, app: &AppId, owner: &UserId) -> Result<Vec<UnreadCount>>;

    /// The receipt of an accepted `(sender, client_msg_id)`, if any.
    async fn find_sent(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>>;

    /// The oldest entries still waiting for the search indexer, across apps.
    async fn pending_index(&self, limit: usize) -> Result<Vec<IndexTask>>;

    /// Removes indexed entries from the outbox.
    async fn complete_index(&self, ids: &[u64]) -> Result<()>;

    /// Forgets at most `limit` accepted client message ids whose receipt's
    /// `server_time` is before `sent_before` (ms), across apps, oldest
    /// first; a retry of one of them afterwards is a new message. Returns
    /// how many were forgotten: the caller calls again while it is
    /// `limit`, so no single call holds the store for long.
    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64>;

    /// Retention: deletes at most `limit` messages of `app` whose
    /// `server_time` is before `sent_before` (ms), oldest first, each with
    /// every owner's entry of it, its reactions and its outbox rows. Entries
    /// of every kind go (recalls, edits, receipts, cursors). What the
    /// deleted entries counted as unread stops counting; a conversation
    /// whose shown entry was deleted leaves the list until its next message
    /// (its settings stay). Versions are never given again: the next entry
    /// of an owner whose newest entries were deleted still follows them.
    /// `more` says older messages remain, so the caller calls again.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store, so an app with `retention_days` says which store cannot honour it.
    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        let _ = (app, sent_before, limit);
        Err(unsupported::<Self>("InboxStore::expire (retention_days)"))
    }

    /// The owner's entries of one conversation (as the owner sees it) with
    /// version < `before_version`, newest first, at most `limit`; `before_version`
    /// 0 starts at the newest. `has_more` says older ones remain: a chat
    /// screen's history as the user scrolls up, one indexed range per page
    /// however large the inbox.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn history(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
        before_version: u64,
        limit: usize,
    ) -> Result<InboxPage> {
        let _ = (app, owner, conversation, before_version, limit);
        Err(unsupported::<Self>("InboxStore::history"))
    }

    /// The owner's conversations with activity < `before` (0: from the
    /// newest), newest activity first, at most `limit`: a chat app's home
    /// screen, one indexed read however large the inbox.
    ///
    /// The store keeps one row per conversation as `append` writes the
    /// owner's entries, by these rules (a device that syncs the same
    /// entries can keep its own list by them):
    /// - a message or notice makes the row (if new) and becomes its last
    ///   entry and its activity ([`activity_key`] of its server time and
    ///   version); a received one adds one unread;
    /// - a recall or delete whose message is the row's last entry becomes
    ///   the last entry (the activity stays);
    /// - a read cursor raises `read_up_to` to its `read_up_to`, a read
    ///   receipt raises `peer_read_up_to` to its `read_up_to`;
    /// - `mark_read` and `mark_message_read` take off what they marked;
    /// - a received message whose meta mentions the owner
    ///   ([`EntryMeta::mentions`]) marks the row mentioned until the read
    ///   mark reaches it;
    /// - an edit changes its message in place (see `append`), so a row
    ///   showing it shows the new content; reactions change nothing;
    /// - a settings entry sets the row's settings; if the row is new it
    ///   has no activity and is not listed until a message arrives.
    ///
    /// Entries of no row (a receipt before any message) change nothing.
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn conversations(
        &self,
        app: &AppId,
        owner: &UserId,
        before: u64,
        limit: usize,
    ) -> Result<ConversationPage> {
        let _ = (app, owner, before, limit);
        Err(unsupported::<Self>("InboxStore::conversations"))
    }

    /// The owner's settings of one conversation (as the owner sees it):
    /// those of the newest [`EntryKind::Settings`] entry `append` wrote for
    /// it, or the defaults.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn settings(
        &self,
        app: &AppId,
        owner: &UserId,
        conversation: &Conversation,
    ) -> Result<ConversationSettings> {
        let _ = (app, owner, conversation);
        Err(unsupported::<Self>("InboxStore::settings"))
    }

    /// The peers of the owner's 1:1 conversations whose settings say
    /// blocked, in user id order.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn blocked(&self, app: &AppId, owner: &UserId) -> Result<Vec<UserId>> {
        let _ = (app, owner);
        Err(unsupported::<Self>("InboxStore::blocked"))
    }

    /// Of `members`, those who received message `id` in `conversation` (a
    /// normal group) and those of them whose read mark there (the
    /// conversation row's `read_up_to`) covers their copy of it: "read by
    /// N of M", computed from read positions, no row per reader.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn readers(
        &self,
        app: &AppId,
        conversation: &Conversation,
        id: &MsgId,
        members: &[UserId],
    ) -> Result<MessageReaders> {
        let _ = (app, conversation, id, members);
        Err(unsupported::<Self>("InboxStore::readers"))
    }

    /// Adds (`add`) or removes `user`'s `emoji` on message `id` (of any
    /// conversation, a super group's too). Returns whether anything
    /// changed: adding one already there, or removing one that is not, is
    /// no change. Refuses with [`crate::ErrorKind::TooLarge`] an add past
    /// `limits` (distinct emoji on the message, emoji of one user on it).
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn react(
        &self,
        app: &AppId,
        id: &MsgId,
        user: &UserId,
        emoji: &str,
        add: bool,
        limits: ReactionLimits,
    ) -> Result<bool> {
        let _ = (app, id, user, emoji, add, limits);
        Err(unsupported::<Self>("InboxStore::react"))
    }

    /// The reactions on each of `ids` that has any, each message's in
    /// emoji order, `mine` set where `viewer` is among them.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn reactions(
        &self,
        app: &AppId,
        ids: &[MsgId],
        viewer: &UserId,
    ) -> Result<Vec<(MsgId, Vec<ReactionCount>)>> {
        let _ = (app, ids, viewer);
        Err(unsupported::<Self>("InboxStore::reactions"))
    }

    /// Messages of `app` with server message id > `after` (from the first
    /// when `None`), in id order, at most `limit`: every message held in
    /// some inbox and neither recalled nor deleted by all its owners, each
    /// once with all of its remaining owners. A search rebuild pages
    /// through it, passing the last id it got. Super-group messages live in
    /// the channel log and are not listed.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store, so a rebuild says which store cannot be read rather than
    /// building an index that misses messages.
    async fn scan_messages(
        &self,
        app: &AppId,
        after: Option<MsgId>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let _ = (app, after, limit);
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            format!(
                "{} cannot list its messages (InboxStore::scan_messages), so the search \
                 index cannot be rebuilt from it",
                std::any::type_name::<Self>()
            ),
        ))
    }
}

/// The error of a port method a store does not implement, naming both.
fn unsupported<S: ?Sized>(method: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Unsupported,
        format!(
            "{} does not implement {method}; the request needs a store that does",
            std::any::type_name::<S>()
        ),
    )
}

// ----------------------------------------------------------------- groups

/// Groups, members and roles.
#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    /// Creates a group with its first members. `AlreadyExists` if the id is taken.
    async fn create_group(&self, app: &AppId, group: &Group, members: &[Member]) -> Result<()>;

    /// The group, if it exists.
    async fn group(&self, app: &AppId, id: &GroupId) -> Result<Option<Group>>;

    /// Turns a normal group into a super group (or back).
    async fn set_kind(&self, app: &AppId, id: &GroupId, kind: GroupKind) -> Result<()>;

    /// Adds members; existing members keep their role. Returns how many were new.
    async fn add_members(&self, app: &AppId, id: &GroupId, members: &[Member]) -> Result<u64>;

    /// Removes members. Returns how many were removed.
    async fn remove_members(&self, app: &AppId, id: &GroupId, users: &[UserId]) -> Result<u64>;

    /// All members, ordered by user id.
    async fn members(&self, app: &AppId, id: &GroupId) -> Result<Vec<Member>>;

    /// One member, if the user is one.
    async fn member(&self, app: &AppId, id: &GroupId, user: &UserId) -> Result<Option<Member>>;

    /// How many members.
    async fn member_count(&self, app: &AppId, id: &GroupId) -> Result<u64>;

    /// The groups a user belongs to, ordered by id.
    async fn groups_of(&self, app: &AppId, user: &UserId) -> Result<Vec<GroupId>>;

    /// Replaces the name, avatar URL, announcement and group-wide mute of
    /// an existing group with `group`'s (its id, kind, owner and creation
    /// time stay). `NotFound` if there is no such group.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn update_group(&self, app: &AppId, group: &Group) -> Result<()> {
        let _ = (app, group);
        Err(unsupported::<Self>("GroupStore::update_group"))
    }

    /// Sets a member's role (not to or from owner: see `transfer_owner`);
    /// false if `user` is not a member. `NotFound` for no such group.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`].
    async fn set_role(&self, app: &AppId, id: &GroupId, user: &UserId, role: Role) -> Result<bool> {
        let _ = (app, id, user, role);
        Err(unsupported::<Self>("GroupStore::set_role"))
    }

    /// Mutes a member until `until` (ms; 0 lifts it); false if `user` is
    /// not a member. `NotFound` for no such group.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`].
    async fn mute_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool> {
        let _ = (app, id, user, until);
        Err(unsupported::<Self>("GroupStore::mute_member"))
    }

    /// Makes member `to` the owner and the owner `from` an admin, in one
    /// write. `NotFound` for no such group; `InvalidInput` if `from` is not
    /// the owner or `to` is not a member (nothing changes then).
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`].
    async fn transfer_owner(
        &self,
        app: &AppId,
        id: &GroupId,
        from: &UserId,
        to: &UserId,
    ) -> Result<()> {
        let _ = (app, id, from, to);
        Err(unsupported::<Self>("GroupStore::transfer_owner"))
    }

    /// Deletes a group with its memberships (messages stay in inboxes and
    /// logs); false if there was none.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`].
    async fn delete_group(&self, app: &AppId, id: &GroupId) -> Result<bool> {
        let _ = (app, id);
        Err(unsupported::<Self>("GroupStore::delete_group"))
    }

    /// The group and all its members (ordered by user id), if it exists: what
    /// a message to the group needs, in one read. The default asks
    /// [`GroupStore::group`] and then [`GroupStore::members`]; a store that
    /// can answer both at once (one lock, one round trip) should.
    async fn roster(&self, app: &AppId, id: &GroupId) -> Result<Option<(Group, Vec<Member>)>> {
        let Some(group) = self.group(app, id).await? else {
            return Ok(None);
        };
        let members = self.members(app, id).await?;
        Ok(Some((group, members)))
    }
}

// ------------------------------------------------------------ channel log

/// What [`ChannelLog::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelAppend {
    /// Written at `seq`; `prev_seq` is the group's seq before it.
    Appended {
        /// The entry's seq.
        seq: u64,
        /// The group's previous seq.
        prev_seq: u64,
    },
    /// `(group, sender, client_msg_id)` was accepted before: the first receipt.
    Duplicate(SendReceipt),
}

/// Super-group logs: one row per message with a per-group seq (fan-out on read).
///
/// Guarantees: seqs strictly increase per group under concurrency; a
/// non-empty `(group, sender, client_msg_id)` is accepted once; read seqs
/// only move forward.
#[async_trait]
pub trait ChannelLog: Send + Sync + 'static {
    /// Appends an entry (its `seq` is ignored and assigned). An
    /// [`EntryKind::Edit`] entry also replaces, in the same write, the
    /// content and meta of the message entry it names with its own.
    async fn append(&self, app: &AppId, entry: &ChannelEntry) -> Result<ChannelAppend>;

    /// Entries with seq > `after_seq`, in order, at most `limit`.
    async fn range(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage>;

    /// Entries with seq < `before_seq`, newest first, at most `limit`;
    /// `before_seq` 0 starts at the newest. `has_more` says older ones
    /// remain: a super group's history as a member scrolls up.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the
    /// store (the conformance suite requires it of every backend).
    async fn range_before(
        &self,
        app: &AppId,
        group: &GroupId,
        before_seq: u64,
        limit: usize,
    ) -> Result<ChannelPage> {
        let _ = (app, group, before_seq, limit);
        Err(unsupported::<Self>("ChannelLog::range_before"))
    }

    /// The group's newest seq (0 when empty).
    async fn last_seq(&self, app: &AppId, group: &GroupId) -> Result<u64>;

    /// The message entry with this id.
    async fn get(&self, app: &AppId, group: &GroupId, id: &MsgId) -> Result<Option<ChannelEntry>>;

    /// Messages after `after_seq` (what a member with that read seq has unread).
    async fn count_messages_after(
        &self,
        app: &AppId,
        group: &GroupId,
        after_seq: u64,
    ) -> Result<u64>;

    /// Moves a member's read seq forward (never back).
    async fn set_read_seq(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        seq: u64,
    ) -> Result<()>;

    /// A member's read seq (0 when never set).
    async fn read_seq(&self, app: &AppId, group: &GroupId, user: &UserId) -> Result<u64>;

    /// Forgets at most `limit` accepted `(group, sender, client_msg_id)`
    /// keys sent before `sent_before` (server ms), across apps: as
    /// [`InboxStore::prune_sent`]. The log entries themselves stay.
    async fn prune_sent(&self, sent_before: i64, limit: usize) -> Result<u64>;

    /// Retention: deletes at most `limit` entries of `app`'s logs whose
    /// `server_time` is before `sent_before` (ms), oldest first, across its
    /// groups, as [`InboxStore::expire`] does for inboxes. Members' unread
    /// counts stop counting them; seqs are never given again (`last_seq`
    /// answers the same before and after). `more` says older entries remain.
    ///
    /// The default fails with [`crate::ErrorKind::Unsupported`] naming the store.
    async fn expire(&self, app: &AppId, sent_before: i64, limit: usize) -> Result<Expired> {
        let _ = (app, sent_before, limit);
        Err(unsupported::<Self>("ChannelLog::expire (retention_days)"))
    }
}

// ------------------------------------------------------------------- apps

/// The businesses (tenants) on a deployment and their settings.
#[async_trait]
pub trait AppStore: Send + Sync + 'static {
    /// Creates or replaces an app.
    async fn put_app(&self, app: &AppConfig) -> Result<()>;
    /// One app.
    async fn get_app(&self, id: &AppId) -> Result<Option<AppConfig>>;
    /// Every app, ordered by id.
    async fn list_apps(&self) -> Result<Vec<AppConfig>>;
}

// ------------------------------------------------------------------ cache

/// One entry for its owner's recent window ([`Cache::push_recent_many`]).
#[derive(Debug, Clone, Copy)]
pub struct RecentPush<'a> {
    /// The owner's version before the entry.
    pub prev_version: u64,
    /// The entry; its `owner` names the window.
    pub entry: &'a InboxEntry,
}

/// Hot state: a per-user window of recent entries and the dedup window.
///
/// A cache may forget anything at any time; the engine stays correct
/// without it (the stores are the authority), only slower.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// A receipt remembered for `(sender, client_msg_id)`.
    async fn dedup_get(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
    ) -> Result<Option<SendReceipt>>;

    /// Remembers a receipt for `ttl` if none is there (set-if-absent).
    /// Returns whether this call stored it.
    async fn dedup_put(
        &self,
        app: &AppId,
        sender: &UserId,
        client_msg_id: &str,
        receipt: &SendReceipt,
        ttl: Duration,
    ) -> Result<bool>;

    /// Appends an entry to the owner's recent window, keeping the newest
    /// `cap`. `prev_version` is the owner's version before it: when it is not
    /// the window's newest, the window restarts so it never hides a gap.
    async fn push_recent(
        &self,
        app: &AppId,
        prev_version: u64,
        entry: &InboxEntry,
        cap: usize,
    ) -> Result<()>;

    /// [`Cache::push_recent`] for each of `pushes` (the entries of one
    /// delivery, one per owner), every one with the same `cap`. The default
    /// makes the calls together; an adapter across the network sends them
    /// in one round trip, or a few. A failure may leave some windows
    /// written and others not, which hides nothing: a window that missed an
    /// entry restarts at the next one.
    async fn push_recent_many(
        &self,
        app: &AppId,
        pushes: &[RecentPush<'_>],
        cap: usize,
    ) -> Result<()> {
        let calls = pushes
            .iter()
            .map(|p| self.push_recent(app, p.prev_version, p.entry, cap));
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }

    /// Entries after `after_version` if the window holds *all* of them
    /// (`None` when it cannot answer: go to the store).
    async fn recent(
        &self,
        app: &AppId,
        owner: &UserId,
        after_version: u64,
        limit: usize,
    ) -> Result<Option<InboxPage>>;
}

// --------------------------------------------------------------- presence

/// Where one device of a user is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// "ios", "android", "web", "desktop"... (login policies work per platform).
    pub platform: String,
    /// The node that holds the connection.
    pub node: NodeId,
    /// The connection's id on that node (a re-login on the same device gets a new one).
    pub session: u64,
    /// Login time (ms).
    pub since: i64,
    /// The client said its app is in the background: it is connected, but
    /// its user also gets push notifications while no device of theirs is
    /// in the foreground.
    pub background: bool,
}

/// Online routes `user -> [(device, node)]` with heartbeat expiry, so a dead
/// node's routes vanish by themselves.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Adds or refreshes a route for `ttl` (call again before it runs out).
    async fn register(&self, app: &AppId, route: &Route, ttl: Duration) -> Result<()>;

    /// Removes the device's route if it is still this session's. Returns whether it was.
    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
        session: u64,
    ) -> Result<bool>;

    /// Live routes of one user.
    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>>;

    /// Live routes of many users at once (fan-out looks up a whole group).
    async fn routes_of(&self, app: &AppId, users: &[UserId]) -> Result<Vec<Route>>;
}

// ----------------------------------------------------------------- search

/// One message in the search index: one document however many owners hold
/// it (a message to a group of 100 is one document, not 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDoc {
    /// The app.
    pub app: AppId,
    /// The message: with `app`, the document's identity.
    pub server_msg_id: MsgId,
    /// Everyone who may find it; nobody else ever sees it in results. A hit
    /// names only the owner who searched.
    pub owners: Vec<UserId>,
    /// Whose view `conversation` is. For 1:1 the two parties are `viewer`
    /// and the conversation's peer, and each sees the other as the peer
    /// (see [`SearchDoc::conversation_for`]); for every other kind all
    /// owners see the same conversation.
    pub viewer: UserId,
    /// The conversation as `viewer` sees it.
    pub conversation: Conversation,
    /// Who wrote it.
    pub sender: UserId,
    /// Server time (ms) of the message: the same in every document of one
    /// message (an edit's carries its message's date). The embedded index
    /// relies on it: a document dated after every committed one is new.
    pub server_time: i64,
    /// The words.
    pub text: String,
}

impl SearchDoc {
    /// The document for a message `entry` (any owner's entry of its
    /// delivery) held by `owners`; `None` when the entry has no searchable
    /// text or is not a message (a recall, a receipt...).
    pub fn of_entry(app: &AppId, entry: &InboxEntry, owners: Vec<UserId>) -> Option<SearchDoc> {
        let server_time = match entry.kind {
            EntryKind::Message | EntryKind::SystemNotice => entry.server_time,
            // An edit replaces the document of the message it names, which
            // keeps its date: the edit carries it as its create time.
            EntryKind::Edit => entry.create_time,
            _ => return None,
        };
        Some(SearchDoc {
            app: app.clone(),
            server_msg_id: entry.server_msg_id,
            owners,
            viewer: entry.owner.clone(),
            conversation: entry.conversation.clone(),
            sender: entry.sender.clone(),
            server_time,
            text: entry.content.searchable_text()?,
        })
    }

    /// The conversation as `owner` (one of the owners) sees it: the rule of
    /// [`InboxEntry::conversation_for`].
    pub fn conversation_for(&self, owner: &UserId) -> Conversation {
        if self.conversation.kind == ConversationKind::Direct && *owner != self.viewer {
            Conversation::direct(&self.viewer)
        } else {
            self.conversation.clone()
        }
    }

    /// The message as `owner` sees it, naming no other owner: what a search
    /// hit carries (`owners == [owner]`, `viewer == owner`).
    pub fn seen_by(&self, owner: &UserId) -> SearchDoc {
        SearchDoc {
            app: self.app.clone(),
            server_msg_id: self.server_msg_id,
            owners: vec![owner.clone()],
            viewer: owner.clone(),
            conversation: self.conversation_for(owner),
            sender: self.sender.clone(),
            server_time: self.server_time,
            text: self.text.clone(),
        }
    }
}

/// A search over one owner's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The app.
    pub app: AppId,
    /// Whose messages; never anyone else's.
    pub owner: UserId,
    /// Free text.
    pub words: String,
    /// Only this conversation, as `owner` sees it.
    pub conversation: Option<Conversation>,
    /// Only messages at or after this time (ms).
    pub from_time: Option<i64>,
    /// Only messages at or before this time (ms).
    pub to_time: Option<i64>,
    /// Hits to skip (paging).
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The message found, as the searching owner sees it
    /// ([`SearchDoc::seen_by`]): its only owner is the one who searched.
    pub doc: SearchDoc,
    /// Relevance (higher is better; comparable only within one answer).
    pub score: f32,
}

/// A page of search results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResults {
    /// Best first; ties newest first.
    pub hits: Vec<SearchHit>,
    /// How many match in all.
    pub total: u64,
}

/// Full-text index of message history: one document per message, found by
/// each of its owners and nobody else.
///
/// Guarantees (checked by `testkit`):
/// - a search finds only documents of its app that name its owner, and
///   shows each as that owner sees it;
/// - `index` is idempotent and merges owners, so the tasks of one message
///   may arrive split in any way (one per owner, retried batches) and end
///   as the same document;
/// - what is written is visible to searches after `flush` returns, and
///   writes apply in call order, flushed or not.
#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// Indexes messages. A message already indexed (same app and id) keeps
    /// the owners it had and gains these; its other fields become these.
    /// Indexing the same document again changes nothing.
    async fn index(&self, docs: &[SearchDoc]) -> Result<()>;

    /// Removes a message for everyone (a recall): no owner finds it again
    /// until it is indexed anew. Removing what is not indexed is no error.
    async fn remove(&self, app: &AppId, id: &MsgId) -> Result<()>;

    /// Removes `owners` from a message's owners (delete-for-me): they no
    /// longer find it, the others still do; the document goes with its last
    /// owner.
    async fn remove_owners(&self, app: &AppId, id: &MsgId, owners: &[UserId]) -> Result<()>;

    /// Removes every document of `app`: a rebuild from the store starts
    /// here, so recalled and deleted messages do not survive it.
    async fn clear_app(&self, app: &AppId) -> Result<()>;

    /// Searches one owner's documents.
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults>;

    /// Makes everything indexed so far durable and searchable.
    async fn flush(&self) -> Result<()>;

    /// Whether the index is known to miss messages the stores hold (an
    /// upgrade of its on-disk format left it empty): until a rebuild of
    /// every app calls [`SearchIndex::rebuilt`], searches fail with
    /// `Unavailable` rather than answer from a partial index. The default:
    /// an index that never needs one.
    async fn needs_rebuild(&self) -> Result<bool> {
        Ok(false)
    }

    /// Records that every app was rebuilt from the stores (and flushed),
    /// ending what [`SearchIndex::needs_rebuild`] reported.
    async fn rebuilt(&self) -> Result<()> {
        Ok(())
    }
}

// -------------------------------------------------------------- discovery

/// A server node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Unique node id.
    pub id: NodeId,
    /// "gate", "logic"...: what the node serves.
    pub role: String,
    /// Where clients reach its TCP gate, if any.
    pub tcp_addr: Option<String>,
    /// Where clients reach its WebSocket gate, if any.
    pub ws_addr: Option<String>,
    /// Where peers reach it for forwarded pushes.
    pub rpc_addr: Option<String>,
    /// Current load (open connections): the selector picks the lowest.
    pub load: u64,
}

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A node joined or updated its info.
    Up(NodeInfo),
    /// A node left or its lease ran out.
    Down(NodeId),
}

/// A registration kept alive in the background. Dropping it stops the
/// keep-alive (the node then disappears when its lease runs out, as after a
/// crash); `revoke` removes it at once (a clean shutdown).
#[async_trait]
pub trait Lease: Send + Sync {
    /// Publishes new info (for example a new load) under the same lease.
    async fn update(&self, info: &NodeInfo) -> Result<()>;
    /// Removes the registration now.
    async fn revoke(self: Box<Self>) -> Result<()>;
}

/// Node membership: register with a lease, list by role, watch changes.
#[async_trait]
pub trait Discovery: Send + Sync + 'static {
    /// Registers a node under a lease of `ttl`, kept alive until the returned
    /// lease is revoked or dropped.
    async fn register(&self, info: &NodeInfo, ttl: Duration) -> Result<Box<dyn Lease>>;
    /// Live nodes of a role, ordered by id.
    async fn list(&self, role: &str) -> Result<Vec<NodeInfo>>;
    /// Joins and leaves of a role from now on.
    async fn watch(&self, role: &str) -> Result<mpsc::Receiver<NodeEvent>>;
}

// ------------------------------------------------------------------- auth

/// Who a token says the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The app the token is for.
    pub app: AppId,
    /// The user.
    pub user: UserId,
    /// When the token stops being valid (ms since epoch).
    pub expires_at: i64,
}

/// Turns a client's token into an identity, per app.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies `token` for `app` and `device`. Forged, expired and
    /// other-app tokens fail with [`crate::ErrorKind::Unauthenticated`].
    async fn authenticate(&self, app: &AppId, token: &str, device: &DeviceId) -> Result<Identity>;
}

// -------------------------------------------------------------------- bus

/// Carries pushes to the node that holds the sessions (in-process on one
/// node, gRPC in a cluster).
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Delivers pushes to `node`'s local sessions. Borrowed: on a failure
    /// the engine notes whose pushes were dropped, to push them again.
    async fn deliver(&self, node: &NodeId, pushes: &[Push]) -> Result<()>;
}

// -------------------------------------------------------------- business

/// What a business handler knows about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The app.
    pub app: AppId,
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
}

/// A product's own commands (the seed's router to many businesses): the
/// engine hands it every frame whose command falls in its range.
#[async_trait]
pub trait BusinessHandler: Send + Sync + 'static {
    /// Handles one request; the answer body goes back with the same seq.
    async fn handle(&self, caller: &Caller, command: u16, body: Bytes) -> Result<Bytes>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(receipt_entry: Option<usize>) -> Delivery {
        let entry = |owner: &str| InboxEntry {
            owner: UserId::new(owner),
            version: 0,
            kind: EntryKind::Message,
            conversation: Conversation::direct(&UserId::new("peer")),
            direction: Direction::Out,
            server_msg_id: MsgId([7; 16]),
            sender: UserId::new("ann"),
            sender_device: DeviceId::new("phone"),
            client_msg_id: "c-1".into(),
            client_seq: 1,
            create_time: 1,
            server_time: 1_700_000_000_000,
            content: Content::text("hi"),
            read_up_to: 0,
            meta: EntryMeta::none(),
        };
        Delivery {
            sender: UserId::new("ann"),
            client_msg_id: "c-1".into(),
            entries: vec![entry("ann"), entry("bo")],
            index: false,
            receipt_entry,
        }
    }

    const APPENDED: [Appended; 2] = [
        Appended {
            version: 5,
            prev_version: 4,
        },
        Appended {
            version: 9,
            prev_version: 8,
        },
    ];

    #[test]
    fn the_receipt_names_the_designated_entrys_version_and_the_messages_id_and_time() {
        let r = delivery(Some(1)).receipt(&APPENDED);
        assert_eq!((r.version, r.prev_version), (9, 8));
        assert_eq!(r.server_msg_id, MsgId([7; 16]));
        assert_eq!(r.server_time, 1_700_000_000_000);
        assert_eq!((r.seq, r.duplicate), (0, false));
        assert_eq!(delivery(Some(0)).receipt(&APPENDED).version, 5);
    }

    #[test]
    fn a_receipt_without_a_designated_entry_names_no_version() {
        assert_eq!(delivery(None).receipt(&APPENDED).version, 0);
        assert_eq!(delivery(Some(7)).receipt(&APPENDED).version, 0);
    }
}
