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
//!
//! The client keeps the newest inbox version it has delivered. Pushes whose
//! `prev_version` shows a gap trigger a sync; every (re)connect syncs from
//! that version, so a device that was offline receives everything it missed,
//! in order, exactly once. Sends carry a client message id and are retried
//! with the same id, which the server deduplicates.

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
        let mut driver = Driver {
            shared: client.shared.clone(),
            secure,
            ticket: None,
            requests: requests_rx,
            pushes: pushes_tx,
            events: events_tx.clone(),
        };
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

/// Server-to-client frames other than answers.
enum Inbound {
    Connected {
        resumed: bool,
    },
    Push(Frame),
    /// This device's own message to a super group was acknowledged at
    /// `seq`: its cursor moves over it, or a gap before it is pulled.
    OwnChannelSend {
        group: String,
        seq: u64,
    },
}

struct Driver {
    shared: Arc<Shared>,
    secure: SecureConfig,
    ticket: Option<ResumeTicket>,
    requests: mpsc::Receiver<Outgoing>,
    pushes: mpsc::UnboundedSender<Inbound>,
    events: mpsc::Sender<Event>,
}

/// An established session: the connection and its record channel.
struct Live {
    conn: transport::Connection,
    channel: SecureChannel,
    resumed: bool,
}

enum End {
    Shutdown,
    Kicked(String),
    Lost(String),
}

impl Driver {
    /// Opens a connection and handshakes (resuming when a ticket is held).
    async fn establish(&mut self) -> Result<Live, ClientError> {
        let config = &self.shared.config;
        let mut conn = transport::Connection::open(&config.endpoint, config.max_frame).await?;
        let mut rng = OsRandom;
        let ticket = self.ticket.take();
        let resumed = ticket.is_some();
        let (handshake, hello, command) = match &ticket {
            Some(t) => {
                let (h, b) = ClientHandshake::resume(&self.secure.meta, t, &mut rng)
                    .map_err(|e| ClientError::Handshake(e.to_string()))?;
                (h, b, Command::ResumeHello)
            }
            None => {
                let (h, b) = ClientHandshake::start(&self.secure, &config.token, &mut rng)
                    .map_err(|e| ClientError::Handshake(e.to_string()))?;
                (h, b, Command::HandshakeHello)
            }
        };
        let exchanged = async {
            conn.write(Frame::new(command, 0, hello)).await?;
            conn.flush().await?;
            tokio::time::timeout(config.request_timeout, conn.read(config.max_frame))
                .await
                .map_err(|_| ClientError::Timeout)??
                // A node that is shutting down (or dies) closes mid-handshake:
                // another attempt, through the selector, finds a live one.
                .ok_or(ClientError::Disconnected)
        };
        let answer = match exchanged.await {
            Ok(answer) => answer,
            Err(e) => {
                // No answer: the ticket is kept for the next attempt (if the
                // server did claim it, that attempt falls back below).
                self.ticket = ticket;
                return Err(e);
            }
        };
        if answer.command == Command::Error {
            let err: pb::Error = answer.decode_body().unwrap_or_default();
            if resumed {
                if handshake_may_succeed_later(&err) {
                    // Refused for a passing reason (a backend down, a node
                    // draining) before the ticket was spent: keep it, and
                    // the reconnect loop tries again.
                    self.ticket = ticket;
                    return Err(ClientError::from(err));
                }
                // A spent or expired ticket: fall back to a full handshake.
                return Box::pin(self.establish()).await;
            }
            if handshake_may_succeed_later(&err) {
                // Busy, draining or a backend down: not a refusal of this
                // device, so the reconnect loop tries again.
                return Err(ClientError::from(err));
            }
            return Err(ClientError::Handshake(format!(
                "{:?}: {}",
                pb::ErrorCode::try_from(err.code).unwrap_or(pb::ErrorCode::HandshakeFailed),
                err.message
            )));
        }
        let session = handshake
            .finish(&answer.body)
            .map_err(|e| ClientError::Handshake(e.to_string()))?;
        self.ticket = session.ticket;
        Ok(Live {
            conn,
            channel: session.channel,
            resumed,
        })
    }

    async fn run(mut self, first: Live) {
        let mut live = Some(first);
        let mut delay = self.shared.config.reconnect_min;
        loop {
            let session = match live.take() {
                Some(s) => s,
                None => match self.establish().await {
                    Ok(s) => s,
                    Err(ClientError::Handshake(reason)) if self.ticket.is_none() => {
                        let _ = self.events.send(Event::AuthFailed { reason }).await;
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reconnect failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = self.shared.shutdown.cancelled() => return,
                        }
                        delay = (delay * 2).min(self.shared.config.reconnect_max);
                        continue;
                    }
                },
            };
            delay = self.shared.config.reconnect_min;
            let _ = self.pushes.send(Inbound::Connected {
                resumed: session.resumed,
            });
            match self.serve(session).await {
                End::Shutdown => return,
                End::Kicked(reason) => {
                    let _ = self.events.send(Event::Kicked { reason }).await;
                    return;
                }
                End::Lost(reason) => {
                    let _ = self.events.send(Event::Disconnected { reason }).await;
                }
            }
        }
    }

    async fn serve(&mut self, live: Live) -> End {
        let Live {
            mut conn, channel, ..
        } = live;
        let (mut sealer, mut opener) = channel.split();
        let max_frame = self.shared.config.max_frame;
        let mut pending: HashMap<u32, oneshot::Sender<Result<Frame, ClientError>>> = HashMap::new();
        let mut heartbeat = tokio::time::interval(self.shared.config.heartbeat_interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let end = loop {
            tokio::select! {
                out = self.requests.recv() => {
                    let Some(out) = out else { break End::Shutdown };
                    let mut batch = vec![out];
                    while let Ok(more) = self.requests.try_recv() {
                        batch.push(more);
                    }
                    let mut failed = None;
                    for out in batch {
                        let sealed = match sealer.seal(&out.frame) {
                            Ok(f) => f,
                            Err(e) => { failed = Some(e.to_string()); break; }
                        };
                        if let Some(reply) = out.reply {
                            pending.insert(out.frame.seq, reply);
                        }
                        if let Err(e) = conn.write(sealed).await {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                    if let Some(reason) = failed {
                        break End::Lost(reason);
                    }
                    if let Err(e) = conn.flush().await {
                        break End::Lost(e.to_string());
                    }
                }
                read = conn.read(max_frame) => {
                    let frame = match read {
                        Ok(Some(f)) => f,
                        Ok(None) => break End::Lost("the server closed the connection".into()),
                        Err(e) => break End::Lost(e.to_string()),
                    };
                    last_heard = Instant::now();
                    let frame = if frame.flags & flags::ENCRYPTED != 0 {
                        match opener.open(&frame) {
                            Ok(f) => f,
                            Err(e) => break End::Lost(format!("record failed: {e}")),
                        }
                    } else {
                        // Only a plaintext error may come outside the channel (a refusal).
                        frame
                    };
                    if frame.is_response() {
                        if let Some(reply) = pending.remove(&frame.seq) {
                            let result = if frame.command == Command::Error {
                                Err(frame.decode_body::<pb::Error>().map(ClientError::from).unwrap_or_else(|e| ClientError::Protocol(e.to_string())))
                            } else {
                                Ok(frame)
                            };
                            let _ = reply.send(result);
                        }
                        continue;
                    }
                    match frame.command {
                        Command::Kick => {
                            let kick: pb::Kick = frame.decode_body().unwrap_or_default();
                            break End::Kicked(kick.reason);
                        }
                        Command::Error => {
                            let err: pb::Error = frame.decode_body().unwrap_or_default();
                            break End::Lost(format!("server closed: {}", err.message));
                        }
                        _ => {
                            let _ = self.pushes.send(Inbound::Push(frame));
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.shared.config.heartbeat_interval * 3 {
                        break End::Lost("the server stopped answering".into());
                    }
                    let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed).max(1);
                    let ping = Frame::from_message(Command::Ping, seq, &pb::Ping { client_time: bubble_core::now_millis() });
                    let ok = match sealer.seal(&ping) {
                        Ok(f) => conn.write(f).await.is_ok() && conn.flush().await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        break End::Lost("cannot send a heartbeat".into());
                    }
                }
                _ = self.shared.shutdown.cancelled() => break End::Shutdown,
            }
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
        end
    }
}

/// Whether a handshake the server refused with `err` may succeed if tried
/// again: only a refusal of the token or of the handshake itself ends the
/// client (`Event::AuthFailed`).
fn handshake_may_succeed_later(err: &pb::Error) -> bool {
    use pb::ErrorCode::*;
    err.retryable
        || matches!(
            pb::ErrorCode::try_from(err.code),
            Ok(Unavailable | Timeout | RateLimited | GoingAway | Internal)
        )
}

/// A super group's page from the wire (a pull or a history page).
fn channel_page(wire: &[pb::ChannelEntry], has_more: bool) -> Result<ChannelPage, ClientError> {
    let entries = wire
        .iter()
        .map(channel_entry_from_pb)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(ChannelPage { entries, has_more })
}

/// Pulls a group's entries after `last` in order, each as an event, up to
/// the newest; the seq delivery reached (at least `seq` when the pull
/// completed). A pull that fails (the connection dropped) leaves the cursor
/// where delivery stopped, so the group's next push repairs the rest.
async fn pull_channel_gap(
    client: &Client,
    events: &mpsc::Sender<Event>,
    group: &str,
    last: u64,
    seq: u64,
    broadcast: bool,
) -> u64 {
    let mut after = last;
    while let Ok((page, _)) = client.pull_channel(group, after, 200).await {
        for e in page.entries {
            after = e.seq;
            let event = if broadcast {
                Event::Broadcast(e)
            } else {
                Event::Channel(e)
            };
            let _ = events.send(event).await;
        }
        if !page.has_more {
            return after.max(seq);
        }
    }
    after
}

/// Turns pushes into ordered, gap-free events, syncing when needed.
async fn inbox_task(
    client: Client,
    mut inbound: mpsc::UnboundedReceiver<Inbound>,
    events: mpsc::Sender<Event>,
) {
    let owner = UserId::new(&client.shared.config.user);
    let mut channel_seqs: HashMap<String, u64> = HashMap::new();
    while let Some(item) = inbound.recv().await {
        match item {
            Inbound::Connected { resumed } => {
                let _ = events.send(Event::Connected { resumed }).await;
                catch_up(&client, &events).await;
            }
            Inbound::OwnChannelSend { group, seq } => match channel_seqs.get(&group).copied() {
                // Entries before it are missing (a notify that never
                // came): pull them, this one included.
                Some(last) if seq > last + 1 => {
                    let after = pull_channel_gap(&client, &events, &group, last, seq, false).await;
                    channel_seqs.insert(group, after);
                }
                Some(last) if seq <= last => {}
                // The next seq, or the first this device hears of the
                // group: the cursor moves over it (`send` returned it).
                _ => {
                    channel_seqs.insert(group, seq);
                }
            },
            Inbound::Push(frame) => match frame.command {
                Command::Push => {
                    let Ok(push) = frame.decode_body::<pb::Push>() else {
                        continue;
                    };
                    let Some(entry) = push
                        .entry
                        .as_ref()
                        .and_then(|e| entry_from_pb(&owner, e).ok())
                    else {
                        continue;
                    };
                    let last = client.last_version();
                    if entry.version <= last {
                        continue; // a sync already delivered it
                    }
                    if push.prev_version > last {
                        catch_up(&client, &events).await; // a gap: pull it (this entry included)
                    } else {
                        client
                            .shared
                            .last_version
                            .store(entry.version, Ordering::Release);
                        let _ = events.send(Event::Entry(entry)).await;
                    }
                }
                Command::ChannelNotify | Command::SystemPush => {
                    let (group, seq, prev_seq, entry) = if frame.command == Command::ChannelNotify {
                        let Ok(n) = frame.decode_body::<pb::ChannelNotify>() else {
                            continue;
                        };
                        (n.group_id, n.seq, n.prev_seq, n.entry)
                    } else {
                        let Ok(n) = frame.decode_body::<pb::SystemPush>() else {
                            continue;
                        };
                        (
                            bubble_core::engine::BROADCAST_CHANNEL.to_owned(),
                            n.seq,
                            n.prev_seq,
                            n.entry,
                        )
                    };
                    let broadcast = frame.command == Command::SystemPush;
                    let wrap = |e: ChannelEntry| {
                        if broadcast {
                            Event::Broadcast(e)
                        } else {
                            Event::Channel(e)
                        }
                    };
                    let known = channel_seqs.get(&group).copied();
                    match known {
                        Some(last) if seq <= last => continue,
                        Some(last) if prev_seq > last => {
                            let after =
                                pull_channel_gap(&client, &events, &group, last, seq, broadcast)
                                    .await;
                            channel_seqs.insert(group, after);
                        }
                        _ => {
                            channel_seqs.insert(group, seq);
                            if let Some(e) =
                                entry.as_ref().and_then(|e| channel_entry_from_pb(e).ok())
                            {
                                let _ = events.send(wrap(e)).await;
                            }
                        }
                    }
                }
                Command::Typing => {
                    let Ok(t) = frame.decode_body::<pb::Typing>() else {
                        continue;
                    };
                    if let Ok(conversation) = conversation_from_pb(t.conversation.as_ref()) {
                        let _ = events
                            .send(Event::Typing {
                                conversation,
                                from: UserId::new(&t.user_id),
                            })
                            .await;
                    }
                }
                Command::Business(code) => {
                    let _ = events
                        .send(Event::Business {
                            command: code,
                            body: frame.body,
                        })
                        .await;
                }
                _ => {}
            },
        }
    }
}

/// Syncs from the newest delivered version until the server has no more.
async fn catch_up(client: &Client, events: &mpsc::Sender<Event>) {
    loop {
        let after = client.last_version();
        match client.sync(after, client.shared.config.sync_page).await {
            Ok((entries, has_more, _)) => {
                for e in entries {
                    if e.version > client.last_version() {
                        client
                            .shared
                            .last_version
                            .store(e.version, Ordering::Release);
                        let _ = events.send(Event::Entry(e)).await;
                    }
                }
                if !has_more {
                    return;
                }
            }
            Err(e) => {
                // The next push or reconnect retries the sync.
                tracing::debug!(error = %e, "sync failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: pb::ErrorCode, retryable: bool) -> pb::Error {
        pb::Error {
            code: code as i32,
            message: String::new(),
            retryable,
        }
    }

    #[test]
    fn only_a_refused_token_or_handshake_ends_the_client() {
        use pb::ErrorCode::*;
        for code in [Unavailable, Timeout, RateLimited, GoingAway, Internal] {
            assert!(
                handshake_may_succeed_later(&refusal(code, false)),
                "{code:?} is worth another attempt"
            );
        }
        for code in [
            Unauthenticated,
            HandshakeFailed,
            PermissionDenied,
            InvalidArgument,
        ] {
            assert!(
                !handshake_may_succeed_later(&refusal(code, false)),
                "{code:?} ends the client"
            );
        }
        assert!(handshake_may_succeed_later(&refusal(HandshakeFailed, true)));
    }
}
