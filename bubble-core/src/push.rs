//! Pushes and the local session hub that hands them to connections.
//!
//! Each connection owns a bounded queue. Delivery uses `try_send`: a session
//! whose queue is full is dropped from the hub (its connection then closes
//! with "going away") instead of letting one slow client stall everyone. It
//! loses nothing: on reconnect it syncs by version.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::types::*;

/// Who a push is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every device of a user, except perhaps one (the sender's own).
    User {
        /// The user.
        user: UserId,
        /// A device that must not get it (the one that sent the message).
        except_device: Option<DeviceId>,
    },
    /// One session (kicks).
    Session {
        /// The user.
        user: UserId,
        /// The session id.
        session: u64,
    },
    /// Every session of the app on the node (app-wide system push).
    App,
    /// Every device of several users, except perhaps one device of one of
    /// them: a super group's members on one node, so a message to a super
    /// group is one push per node rather than one per member.
    Users {
        /// The users.
        users: Vec<UserId>,
        /// The device that sent it (it has the answer already).
        except: Option<(UserId, DeviceId)>,
    },
}

/// What is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// A new entry in the owner's inbox; `prev_version` lets a device see gaps.
    Entry {
        /// The entry.
        entry: InboxEntry,
        /// The owner's version before it.
        prev_version: u64,
    },
    /// A super group has a new entry.
    Channel {
        /// The entry.
        entry: ChannelEntry,
        /// The group's seq before it.
        prev_seq: u64,
    },
    /// Someone is typing.
    Typing {
        /// Conversation from the receiver's view.
        conversation: Conversation,
        /// Who types.
        from: UserId,
    },
    /// An app-wide notice (also in the app's broadcast channel log).
    Broadcast {
        /// The notice.
        entry: ChannelEntry,
        /// The broadcast log's seq before it.
        prev_seq: u64,
    },
    /// The session must end (another login, an admin).
    Kick {
        /// Why.
        reason: String,
    },
    /// A product-defined push (a business handler's own command).
    Business {
        /// The command code.
        command: u16,
        /// The body.
        body: Bytes,
    },
}

/// A push addressed within an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The app.
    pub app: AppId,
    /// Who gets it.
    pub target: Target,
    /// What.
    pub event: PushEvent,
}

/// Something that takes pushes for the sessions it holds (a node's hub).
#[async_trait]
pub trait PushSink: Send + Sync + 'static {
    /// Hands pushes to local sessions; never blocks on a slow one.
    async fn accept(&self, pushes: Vec<Push>);
}

struct Slot {
    device: DeviceId,
    session: u64,
    /// Boxed: a tokio channel allocates its first block of 32 slots at
    /// creation, so a slot of 8 bytes instead of `PushEvent`'s 208 saves
    /// ~6 KiB for every connected session, pushed to or not.
    tx: mpsc::Sender<Box<PushEvent>>,
    overflowed: Arc<AtomicBool>,
    /// The client said its app is in the background.
    background: bool,
}

/// Sessions connected to this node, by app and user.
#[derive(Default)]
pub struct SessionHub {
    sessions: RwLock<HashMap<AppId, HashMap<UserId, Vec<Slot>>>>,
}

/// The receiving half of a session's push queue.
#[derive(Debug)]
pub struct SessionQueue {
    /// Pushes for this session, in order (boxed: see `Slot::tx`).
    pub rx: mpsc::Receiver<Box<PushEvent>>,
    /// Set when the queue overflowed and the session was dropped: the
    /// connection should close with "going away" and the client re-sync.
    pub overflowed: Arc<AtomicBool>,
}

impl SessionHub {
    /// An empty hub.
    pub fn new() -> SessionHub {
        SessionHub::default()
    }

    /// Adds a session with a queue of `capacity` pushes.
    pub fn attach(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
        session: u64,
        capacity: usize,
    ) -> SessionQueue {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        let slot = Slot {
            device: device.clone(),
            session,
            tx,
            overflowed: overflowed.clone(),
            background: false,
        };
        self.sessions
            .write()
            .entry(app.clone())
            .or_default()
            .entry(user.clone())
            .or_default()
            .push(slot);
        SessionQueue { rx, overflowed }
    }

    /// Removes a session; returns whether it was there.
    pub fn detach(&self, app: &AppId, user: &UserId, session: u64) -> bool {
        let mut all = self.sessions.write();
        let Some(users) = all.get_mut(app) else {
            return false;
        };
        let Some(slots) = users.get_mut(user) else {
            return false;
        };
        let before = slots.len();
        slots.retain(|s| s.session != session);
        let removed = slots.len() != before;
        if slots.is_empty() {
            users.remove(user);
        }
        removed
    }

    /// Marks a session's app as in the background (or back in the
    /// foreground); whether the session is here.
    pub fn set_background(
        &self,
        app: &AppId,
        user: &UserId,
        session: u64,
        background: bool,
    ) -> bool {
        let mut all = self.sessions.write();
        let slot = all
            .get_mut(app)
            .and_then(|users| users.get_mut(user))
            .and_then(|slots| slots.iter_mut().find(|s| s.session == session));
        match slot {
            Some(slot) => {
                slot.background = background;
                true
            }
            None => false,
        }
    }

    /// Whether a session's app is in the background (`false` for a session
    /// that is not here).
    pub fn is_background(&self, app: &AppId, user: &UserId, session: u64) -> bool {
        self.sessions
            .read()
            .get(app)
            .and_then(|users| users.get(user))
            .and_then(|slots| slots.iter().find(|s| s.session == session))
            .is_some_and(|s| s.background)
    }

    /// Whether some session of the user here has its app in the foreground.
    pub fn in_foreground(&self, app: &AppId, user: &UserId) -> bool {
        self.sessions
            .read()
            .get(app)
            .and_then(|users| users.get(user))
            .is_some_and(|slots| slots.iter().any(|s| !s.background))
    }

    /// How many sessions this node holds.
    pub fn len(&self) -> usize {
        self.sessions
            .read()
            .values()
            .flat_map(|u| u.values())
            .map(Vec::len)
            .sum()
    }

    /// Whether the hub holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every user with a session here.
    pub fn users(&self) -> Vec<(AppId, UserId)> {
        self.sessions
            .read()
            .iter()
            .flat_map(|(app, users)| users.keys().map(|u| (app.clone(), u.clone())))
            .collect()
    }

    /// Local sessions of a user: `(device, session)`.
    pub fn sessions_of(&self, app: &AppId, user: &UserId) -> Vec<(DeviceId, u64)> {
        self.sessions
            .read()
            .get(app)
            .and_then(|u| u.get(user))
            .map(|slots| {
                slots
                    .iter()
                    .map(|s| (s.device.clone(), s.session))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Delivers pushes to the sessions they target. Returns how many
    /// session queues took one.
    pub fn deliver(&self, pushes: &[Push]) -> usize {
        let mut delivered = 0;
        let mut overflowed: Vec<(AppId, UserId, u64)> = Vec::new();
        {
            let all = self.sessions.read();
            for push in pushes {
                let Some(users) = all.get(&push.app) else {
                    continue;
                };
                let mut offer = |user: &UserId, slot: &Slot| {
                    match slot.tx.try_send(Box::new(push.event.clone())) {
                        Ok(()) => delivered += 1,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            slot.overflowed.store(true, Ordering::Release);
                            overflowed.push((push.app.clone(), user.clone(), slot.session));
                        }
                        // The connection is gone; its detach is on the way.
                        Err(mpsc::error::TrySendError::Closed(_)) => {}
                    }
                };
                match &push.target {
                    Target::User {
                        user,
                        except_device,
                    } => {
                        for slot in users.get(user).into_iter().flatten() {
                            if except_device.as_ref() != Some(&slot.device) {
                                offer(user, slot);
                            }
                        }
                    }
                    Target::Session { user, session } => {
                        for slot in users.get(user).into_iter().flatten() {
                            if slot.session == *session {
                                offer(user, slot);
                            }
                        }
                    }
                    Target::App => {
                        for (user, slots) in users {
                            for slot in slots {
                                offer(user, slot);
                            }
                        }
                    }
                    Target::Users { users: to, except } => {
                        for user in to {
                            for slot in users.get(user).into_iter().flatten() {
                                let sender = except
                                    .as_ref()
                                    .is_some_and(|(u, d)| u == user && *d == slot.device);
                                if !sender {
                                    offer(user, slot);
                                }
                            }
                        }
                    }
                }
            }
        }
        // Dropping the sender closes the queue: the connection drains what it
        // has, sees the end, and closes so the client re-syncs.
        for (app, user, session) in overflowed {
            self.detach(&app, &user, session);
        }
        delivered
    }
}

#[async_trait]
impl PushSink for SessionHub {
    async fn accept(&self, pushes: Vec<Push>) {
        self.deliver(&pushes);
    }
}
