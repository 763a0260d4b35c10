//! The Rust client SDK for bubble.
//!
//! # Layout
//!
//! - [`Client`]: connect (directly or through the selector, TCP or
//!   WebSocket), handshake with a pinned server key, resume with tickets,
//!   reconnect with backoff, and every request of the protocol.
//! - [`Event`]: what the application receives: inbox entries in version
//!   order without gaps or duplicates, super-group entries, typing, kicks.
//! - [`transport`]: TCP, WebSocket and the selector lookup.
//! - Inside: `driver` keeps the connection up (handshakes, heartbeats,
//!   reconnects) and `delivery` turns pushes into ordered events.
//!
//! The client keeps the newest inbox version it has delivered. Pushes whose
//! `prev_version` shows a gap trigger a sync; every (re)connect syncs from
//! that version, so a device that was offline receives everything it missed,
//! in order, exactly once. Sends carry a client message id and are retried
//! with the same id, which the server deduplicates.

mod delivery;
mod driver;
pub mod error;
mod groups;
mod media;
mod notifications;
mod screens;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use bubble_core::wire::*;
use bubble_core::{
    ChannelEntry, ChannelPage, Content, Conversation, ConversationItem, ConversationList,
    ConversationSummary, GroupId, InboxEntry, MsgId, SendReceipt, UnreadCount, UserId,
};
use bubble_proto::secure::{
    ClientConfig as SecureConfig, ClientHandshake, ClientMeta, OsRandom, PinnedServerKey,
    Randomness, ResumeTicket, SecureChannel,
};
use bubble_proto::{Command, Frame, flags, pb};

use delivery::{Inbound, channel_page, inbox_task};
use driver::Driver;
pub use error::ClientError;
pub use media::UploadTicket;
pub use notifications::PushRegistration;
use screens::settings_from_pb;
pub use transport::Endpoint;

/// How to reach the server and who this device is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The server's public key (SPKI PEM), pinned by `server_key_fingerprint`.
    pub server_key_pem: String,
    /// SHA-256 of the server key (hex): the pin. A key that does not match is refused.
    pub server_key_fingerprint: String,
    /// The app.
    pub app: String,
    /// The user the token is for (used as the owner of received entries).
    pub user: String,
    /// This device's id.
    pub device: String,
    /// "ios", "android", "web", "desktop"...
    pub platform: String,
    /// The token from the product's backend.
    pub token: String,
    /// The newest inbox version this device already holds (0 on a fresh install).
    pub last_version: u64,
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// How often to ping.
    pub heartbeat_interval: Duration,
    /// First reconnect delay; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// How long `send` keeps retrying a retryable failure.
    pub send_retry_for: Duration,
    /// Entries per sync page.
    pub sync_page: u32,
    /// Largest frame body accepted.
    pub max_frame: usize,
}

impl ClientConfig {
    /// A config with sensible defaults for the rest.
    pub fn new(
        endpoint: Endpoint,
        server_key_pem: impl Into<String>,
        server_key_fingerprint: impl Into<String>,
        app: impl Into<String>,
        user: impl Into<String>,
        device: impl Into<String>,
        token: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            endpoint,
            server_key_pem: server_key_pem.into(),
            server_key_fingerprint: server_key_fingerprint.into(),
            app: app.into(),
            user: user.into(),
            device: device.into(),
            platform: "rust".into(),
            token: token.into(),
            last_version: 0,
            request_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(20),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            send_retry_for: Duration::from_secs(30),
            sync_page: 200,
            max_frame: bubble_proto::DEFAULT_MAX_BODY,
        }
    }
}

/// What the application receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session is up (after a connect or reconnect).
    Connected {
        /// Whether a resumption ticket skipped the RSA step.
        resumed: bool,
    },
    /// The connection dropped; the client reconnects by itself.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A new inbox entry: message, recall, delete, read receipt, read
    /// cursor or notice. Delivered in version order, without gaps, once.
    Entry(InboxEntry),
    /// A super group's new entry.
    Channel(ChannelEntry),
    /// An app-wide notice.
    Broadcast(ChannelEntry),
    /// Someone types.
    Typing {
        /// The conversation (this user's view).
        conversation: Conversation,
        /// Who.
        from: UserId,
    },
    /// The server ended this session (signed in elsewhere). No reconnect follows.
    Kicked {
        /// Why.
        reason: String,
    },
    /// The token was refused. No reconnect follows: get a new token.
    AuthFailed {
        /// Why.
        reason: String,
    },
    /// A product-defined push.
    Business {
        /// The command code.
        command: u16,
        /// The body.
        body: Bytes,
    },
}

struct Outgoing {
    frame: Frame,
    reply: Option<oneshot::Sender<Result<Frame, ClientError>>>,
}

struct Shared {
    config: ClientConfig,
    requests: mpsc::Sender<Outgoing>,
    next_seq: AtomicU32,
    client_seqs: Mutex<HashMap<Conversation, u64>>,
    last_version: AtomicU64,
    shutdown: CancellationToken,
    /// Into the task that turns pushes into events (own super-group sends).
    inbound: mpsc::UnboundedSender<Inbound>,
}

/// A connected (or reconnecting) client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// The events of a client, in order.
pub type Events = mpsc::Receiver<Event>;

impl Client {
    /// Connects and completes the first handshake, then keeps the session up
    /// in the background. Fails if the first connection or handshake fails.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        let pin = PinnedServerKey::from_pem(&config.server_key_pem, &config.server_key_fingerprint)
            .map_err(|e| ClientError::Handshake(format!("server key pin: {e}")))?;
        let (requests_tx, requests_rx) = mpsc::channel(1024);
        let (events_tx, events_rx) = mpsc::channel(4096);
        let (pushes_tx, pushes_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            last_version: AtomicU64::new(config.last_version),
            config,
            requests: requests_tx,
            next_seq: AtomicU32::new(1),
            client_seqs: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            inbound: pushes_tx.clone(),
        });
        let client = Client { shared };
        let secure = SecureConfig {
            server_key: pin,
            meta: ClientMeta {
                app_id: client.shared.config.app.clone(),
                device_id: client.shared.config.device.clone(),
                platform: client.shared.config.platform.clone(),
                client_version: env!("CARGO_PKG_VERSION").into(),
            },
        };
        let mut driver = Driver::new(
            client.shared.clone(),
            secure,
            requests_rx,
            pushes_tx,
            events_tx.clone(),
        );
        let first = driver.establish().await?;
        tokio::spawn(driver.run(first));
        tokio::spawn(inbox_task(client.clone(), pushes_rx, events_tx));
        Ok((client, events_rx))
    }

    /// The newest inbox version delivered as an event so far.
    pub fn last_version(&self) -> u64 {
        self.shared.last_version.load(Ordering::Acquire)
    }

    /// Stops the background tasks; the connection closes.
    pub fn close(&self) {
        self.shared.shutdown.cancel();
    }

    /// Sends a request and waits for its answer (an `Error` answer becomes `Err`).
    pub async fn request(
        &self,
        command: Command,
        body: &impl Message,
    ) -> Result<Frame, ClientError> {
        self.request_raw(command, Bytes::from(body.encode_to_vec()))
            .await
    }

    async fn request_raw(&self, command: Command, body: Bytes) -> Result<Frame, ClientError> {
        let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed).max(1);
        let (tx, rx) = oneshot::channel();
        let out = Outgoing {
            frame: Frame::new(command, seq, body),
            reply: Some(tx),
        };
        let timeout = self.shared.config.request_timeout;
        tokio::time::timeout(timeout, async {
            self.shared
                .requests
                .send(out)
                .await
                .map_err(|_| ClientError::Closed)?;
            rx.await.map_err(|_| ClientError::Disconnected)?
        })
        .await
        .map_err(|_| ClientError::Timeout)?
    }

    async fn call<M: Message + Default>(
        &self,
        command: Command,
        body: &impl Message,
    ) -> Result<M, ClientError> {
        let answer = self.request(command, body).await?;
        answer
            .decode_body::<M>()
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends text or any content to a conversation, with a fresh client
    /// message id, retrying retryable failures with the same id.
    pub async fn send(
        &self,
        to: Conversation,
        content: Content,
    ) -> Result<SendReceipt, ClientError> {
        let client_seq = self.next_client_seq(&to);
        self.send_with_id(to, &new_client_msg_id(), client_seq, content)
            .await
    }

    /// This device's next counter for a conversation.
    fn next_client_seq(&self, to: &Conversation) -> u64 {
        let mut seqs = self.shared.client_seqs.lock();
        let s = seqs.entry(to.clone()).or_default();
        *s += 1;
        *s
    }

    /// Sends with a caller-chosen client message id (resend after an app restart).
    pub async fn send_with_id(
        &self,
        to: Conversation,
        client_msg_id: &str,
        client_seq: u64,
        content: Content,
    ) -> Result<SendReceipt, ClientError> {
        let req = pb::SendRequest {
            to: Some(conversation_to_pb(&to)),
            client_msg_id: client_msg_id.to_owned(),
            client_seq,
            create_time: bubble_core::now_millis(),
            content: Some(content_to_pb(&content)),
            ..Default::default()
        };
        self.send_request(to, req).await
    }

    /// Sends `req` (to `to`), retrying retryable failures with its client
    /// message id until `send_retry_for` has passed.
    async fn send_request(
        &self,
        to: Conversation,
        req: pb::SendRequest,
    ) -> Result<SendReceipt, ClientError> {
        let deadline = Instant::now() + self.shared.config.send_retry_for;
        let mut delay = Duration::from_millis(50);
        loop {
            match self.call::<pb::SendAck>(Command::Send, &req).await {
                Ok(ack) => {
                    let receipt =
                        receipt_from_pb(&ack).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    self.skip_own_entry(&receipt);
                    // A super group's own message: its channel cursor moves
                    // over it, or pulls the entries before it whose notify
                    // never came (a route lost in a failover, say).
                    if receipt.seq > 0 {
                        let _ = self.shared.inbound.send(Inbound::OwnChannelSend {
                            group: to.id().to_owned(),
                            seq: receipt.seq,
                        });
                    }
                    return Ok(receipt);
                }
                Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                    tracing::debug!(error = %e, "send failed; retrying with the same client_msg_id");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the cursor over this device's own message when nothing came
    /// between (`prev_version` is the cursor), so the next push is not a
    /// false gap that costs a sync. The entry is not delivered as an event:
    /// `send` returned it. When something did come between, the cursor
    /// stays and the sync that fills the gap delivers the entry too.
    fn skip_own_entry(&self, receipt: &SendReceipt) {
        if receipt.duplicate || receipt.version == 0 {
            return;
        }
        let _ = self.shared.last_version.compare_exchange(
            receipt.prev_version,
            receipt.version,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// One conversation's history, newest first: entries older than
    /// `before` (a version; 0 starts at the newest), at most `limit` (0: the
    /// server's default), whether older ones remain, and this user's newest
    /// version now. A super group's history is [`Client::channel_history`].
    pub async fn history(
        &self,
        conversation: &Conversation,
        before: u64,
        limit: u32,
    ) -> Result<(Vec<InboxEntry>, bool, u64), ClientError> {
        let page = self.history_page(conversation, before, limit).await?;
        Ok((
            self.entries(&page.entries)?,
            page.has_more,
            page.max_version,
        ))
    }

    /// A super group's history, newest first: entries with seq < `before`
    /// (0 starts at the newest), whether older ones remain, and the group's
    /// newest seq.
    pub async fn channel_history(
        &self,
        group: &str,
        before: u64,
        limit: u32,
    ) -> Result<(ChannelPage, u64), ClientError> {
        let page = self
            .history_page(
                &Conversation::super_group(&GroupId::new(group)),
                before,
                limit,
            )
            .await?;
        Ok((
            channel_page(&page.channel_entries, page.has_more)?,
            page.last_seq,
        ))
    }

    /// One page of a conversation's history as the server sent it: the
    /// entries with each message's reactions (`Entry.reactions`,
    /// `ChannelEntry.reactions`), `has_more` and the newest version or seq.
    pub async fn history_page(
        &self,
        conversation: &Conversation,
        before: u64,
        limit: u32,
    ) -> Result<pb::HistoryPage, ClientError> {
        self.call(
            Command::History,
            &pb::HistoryRequest {
                conversation: Some(conversation_to_pb(conversation)),
                before,
                limit,
            },
        )
        .await
    }

    /// The conversation list, newest activity first: conversations with
    /// activity < `before` (0: from the newest), at most `limit` (0: the
    /// server's default of 50), whether older ones remain, and this user's
    /// newest version now (a new device syncs forward from it). Each item
    /// carries its last entry, unread count and read positions.
    pub async fn conversations(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<ConversationList, ClientError> {
        let list: pb::ConversationList = self
            .call(
                Command::Conversations,
                &pb::ConversationsRequest { before, limit },
            )
            .await?;
        let owner = UserId::new(&self.shared.config.user);
        let protocol = |e: bubble_core::Error| ClientError::Protocol(e.to_string());
        let mut items = Vec::with_capacity(list.conversations.len());
        for c in &list.conversations {
            let conversation = conversation_from_pb(c.conversation.as_ref()).map_err(protocol)?;
            let item = match (&c.last_entry, &c.last_channel_entry) {
                (Some(e), _) => ConversationItem::Inbox(ConversationSummary {
                    conversation,
                    activity: c.activity,
                    last: entry_from_pb(&owner, e).map_err(protocol)?,
                    unread: c.unread,
                    read_up_to: c.read_up_to,
                    peer_read_up_to: c.peer_read_up_to,
                    settings: settings_from_pb(c.settings.as_ref()),
                    mentioned: c.mentioned,
                }),
                (None, Some(e)) => ConversationItem::SuperGroup {
                    group: GroupId::new(conversation.id()),
                    activity: c.activity,
                    last: channel_entry_from_pb(e).map_err(protocol)?,
                    unread: c.unread,
                    read_seq: c.read_up_to,
                    settings: settings_from_pb(c.settings.as_ref()),
                },
                (None, None) => {
                    return Err(ClientError::Protocol(format!(
                        "conversation {} of the list has no last entry",
                        conversation.id()
                    )));
                }
            };
            items.push(item);
        }
        Ok(ConversationList {
            items,
            has_more: list.has_more,
            max_version: list.max_version,
        })
    }

    /// Inbox entries after `after_version` (one page).
    pub async fn sync(
        &self,
        after_version: u64,
        limit: u32,
    ) -> Result<(Vec<InboxEntry>, bool, u64), ClientError> {
        let page: pb::SyncPage = self
            .call(
                Command::Sync,
                &pb::SyncRequest {
                    after_version,
                    limit,
                },
            )
            .await?;
        Ok((
            self.entries(&page.entries)?,
            page.has_more,
            page.max_version,
        ))
    }

    /// This user's inbox entries from the wire.
    fn entries(&self, wire: &[pb::Entry]) -> Result<Vec<InboxEntry>, ClientError> {
        let owner = UserId::new(&self.shared.config.user);
        wire.iter()
            .map(|e| entry_from_pb(&owner, e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Marks a conversation read up to a version (a seq for super groups).
    pub async fn mark_read(
        &self,
        conversation: &Conversation,
        up_to: u64,
    ) -> Result<u64, ClientError> {
        let ack: pb::MarkReadAck = self
            .call(
                Command::MarkRead,
                &pb::MarkReadRequest {
                    conversation: Some(conversation_to_pb(conversation)),
                    up_to,
                },
            )
            .await?;
        Ok(ack.marked)
    }

    /// Unread counts per conversation.
    pub async fn unread(&self) -> Result<Vec<UnreadCount>, ClientError> {
        let counts: pb::UnreadCounts = self.call(Command::Unread, &pb::UnreadRequest {}).await?;
        counts
            .counts
            .iter()
            .map(|c| {
                Ok(UnreadCount {
                    conversation: conversation_from_pb(c.conversation.as_ref())
                        .map_err(|e| ClientError::Protocol(e.to_string()))?,
                    count: c.count,
                    mentioned: c.mentioned,
                })
            })
            .collect()
    }

    /// Recalls a message this user sent.
    pub async fn recall(
        &self,
        conversation: &Conversation,
        id: &MsgId,
    ) -> Result<SendReceipt, ClientError> {
        let ack: pb::SendAck = self
            .call(
                Command::Recall,
                &pb::RecallRequest {
                    conversation: Some(conversation_to_pb(conversation)),
                    server_msg_id: Bytes::copy_from_slice(&id.0),
                },
            )
            .await?;
        receipt_from_pb(&ack).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Deletes a message from this user's view; returns the delete entry's version.
    pub async fn delete(&self, id: &MsgId) -> Result<u64, ClientError> {
        let ack: pb::SendAck = self
            .call(
                Command::Delete,
                &pb::DeleteRequest {
                    server_msg_id: Bytes::copy_from_slice(&id.0),
                },
            )
            .await?;
        let receipt = receipt_from_pb(&ack).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.skip_own_entry(&receipt);
        Ok(receipt.version)
    }

    /// Creates a group owned by this user.
    pub async fn create_group(
        &self,
        id: &str,
        name: &str,
        members: &[&str],
        super_group: bool,
    ) -> Result<pb::GroupInfo, ClientError> {
        self.call(
            Command::GroupCreate,
            &pb::GroupCreateRequest {
                group_id: id.to_owned(),
                name: name.to_owned(),
                members: members.iter().map(|m| m.to_string()).collect(),
                super_group,
            },
        )
        .await
    }

    /// Joins a group.
    pub async fn join_group(&self, id: &str) -> Result<(), ClientError> {
        self.call::<pb::Ok>(
            Command::GroupJoin,
            &pb::GroupJoinRequest {
                group_id: id.into(),
            },
        )
        .await
        .map(|_| ())
    }

    /// Leaves a group.
    pub async fn leave_group(&self, id: &str) -> Result<(), ClientError> {
        self.call::<pb::Ok>(
            Command::GroupLeave,
            &pb::GroupLeaveRequest {
                group_id: id.into(),
            },
        )
        .await
        .map(|_| ())
    }

    /// A group's members, every page of them, in user id order.
    pub async fn members(&self, id: &str) -> Result<pb::GroupMembers, ClientError> {
        let mut all = self.members_page(id, "", 0).await?;
        while all.has_more {
            let after = match all.members.last() {
                Some(last) => last.user_id.clone(),
                None => break,
            };
            let page = self.members_page(id, &after, 0).await?;
            all.members.extend(page.members);
            all.has_more = page.has_more;
        }
        Ok(all)
    }

    /// One page of a group's members: those after `after_user_id` in user
    /// id order, at most `limit` (0: the server's default).
    pub async fn members_page(
        &self,
        id: &str,
        after_user_id: &str,
        limit: u32,
    ) -> Result<pb::GroupMembers, ClientError> {
        self.call(
            Command::GroupMembersQuery,
            &pb::GroupMembersRequest {
                group_id: id.into(),
                after_user_id: after_user_id.into(),
                limit,
            },
        )
        .await
    }

    /// A super group's entries after `after_seq`, and its newest seq.
    pub async fn pull_channel(
        &self,
        group: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<(ChannelPage, u64), ClientError> {
        let page: pb::ChannelPage = self
            .call(
                Command::ChannelPull,
                &pb::ChannelPullRequest {
                    group_id: group.into(),
                    after_seq,
                    limit,
                },
            )
            .await?;
        Ok((channel_page(&page.entries, page.has_more)?, page.last_seq))
    }

    /// Who is online.
    pub async fn presence(&self, users: &[&str]) -> Result<pb::PresenceResult, ClientError> {
        self.call(
            Command::PresenceQuery,
            &pb::PresenceQuery {
                user_ids: users.iter().map(|u| u.to_string()).collect(),
            },
        )
        .await
    }

    /// Searches this user's history.
    pub async fn search(
        &self,
        request: pb::SearchRequest,
    ) -> Result<pb::SearchResults, ClientError> {
        self.call(Command::Search, &request).await
    }

    /// Tells the conversation this user is typing (fire and forget).
    pub async fn typing(&self, conversation: &Conversation) -> Result<(), ClientError> {
        let body = pb::Typing {
            conversation: Some(conversation_to_pb(conversation)),
            user_id: String::new(),
        };
        let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed).max(1);
        self.shared
            .requests
            .send(Outgoing {
                frame: Frame::from_message(Command::Typing, seq, &body),
                reply: None,
            })
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// A product-defined request (command ≥ 0x8000).
    pub async fn business(&self, command: u16, body: Bytes) -> Result<Bytes, ClientError> {
        let command = Command::from_code(command)
            .filter(|c| c.is_business())
            .ok_or_else(|| {
                ClientError::Protocol(format!("{command:#06x} is not a business command"))
            })?;
        Ok(self.request_raw(command, body).await?.body)
    }

    /// One round trip.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let started = Instant::now();
        let _: pb::Pong = self
            .call(
                Command::Ping,
                &pb::Ping {
                    client_time: bubble_core::now_millis(),
                },
            )
            .await?;
        Ok(started.elapsed())
    }
}

/// A random 128-bit client message id (hex).
pub fn new_client_msg_id() -> String {
    let mut raw = [0u8; 16];
    OsRandom.fill(&mut raw);
    hex::encode(raw)
}
