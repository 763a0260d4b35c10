//! Going on without the optional backends: presence and the cache.
//!
//! The stores are the authority; presence only says where to push and the
//! cache only saves round trips. So while either is down, logins, sends and
//! syncs go on: a push that cannot be routed to another node waits for the
//! receiver's sync, and a dedup or recent-window miss goes to the store.
//! Each outage is logged once when it starts and once when it ends (never
//! per request), and shows in [`Engine::degradation`] (the server's
//! `bubble_degraded` gauge).
//!
//! Routes that could not be registered while presence was down are kept
//! here, and a background task registers them again as soon as presence
//! answers, which is also how the engine notices that it is back. Routes
//! registered before the outage are refreshed by each device's next
//! heartbeat, as always. Then each local device is pushed its user's
//! newest entry again: a push dropped during the outage is found as a gap.

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::{Engine, Inner};
use crate::error::{Error, ErrorKind};
use crate::ports::Route;
use crate::types::*;

/// Which optional backends are down, as the engine last saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Degradation {
    /// Presence is down: pushes reach this node's sessions only.
    pub presence: bool,
    /// The cache is down: dedup and syncs go to the store.
    pub cache: bool,
    /// Routes waiting to be registered again once presence is back.
    pub unregistered_routes: usize,
}

/// The engine's view of its optional backends.
#[derive(Default)]
pub(super) struct Degraded {
    /// Mirrors `routes.down` for reads without the lock.
    presence_down: AtomicBool,
    routes: Mutex<Unregistered>,
    cache_down: AtomicBool,
    /// Peers whose last push failed (a dead node stays in presence routes
    /// until its devices come back elsewhere): logged once per outage.
    failing_peers: Mutex<HashSet<NodeId>>,
    /// Mirrors `!failing_peers.is_empty()`, so a push that went through
    /// (every push, nearly always) takes no lock.
    any_peer_failing: AtomicBool,
    /// Owners and super groups whose pushes were dropped meanwhile.
    pub(super) missed: Mutex<super::missed::Missed>,
}

/// Presence's outage and the routes it cost. One lock, so a route is never
/// left waiting after the outage was declared over.
#[derive(Default)]
struct Unregistered {
    down: bool,
    /// By session id: the app and the route.
    pending: HashMap<u64, (AppId, Route)>,
}

/// Whether an error says the backend is down (rather than that it refused
/// this one request).
pub(super) fn is_down(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
}

impl Engine {
    /// Which optional backends are down now.
    pub fn degradation(&self) -> Degradation {
        let d = &self.inner.degraded;
        Degradation {
            presence: d.presence_down.load(Ordering::Relaxed),
            cache: d.cache_down.load(Ordering::Relaxed),
            unregistered_routes: d.routes.lock().pending.len(),
        }
    }

    /// Registers a session's route; while presence is down the route is
    /// kept to register later, and the caller goes on.
    pub(super) async fn register_route(&self, app: &AppId, route: Route) -> crate::Result<()> {
        let ttl = self.inner.config.presence_ttl;
        match self.inner.presence.register(app, &route, ttl).await {
            Ok(()) => {
                if self.inner.degraded.presence_down.load(Ordering::Relaxed) {
                    self.inner
                        .degraded
                        .routes
                        .lock()
                        .pending
                        .remove(&route.session);
                }
                Ok(())
            }
            Err(e) if is_down(&e) => {
                let session = route.session;
                self.presence_failed(&e, Some((session, (app.clone(), route))));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets a route waiting to be registered (its session closed).
    pub(super) fn forget_unregistered(&self, session: u64) {
        if self.inner.degraded.presence_down.load(Ordering::Relaxed) {
            self.inner.degraded.routes.lock().pending.remove(&session);
        }
    }

    /// Notes that presence failed with `e`: an outage starts (logged once,
    /// and a task registers the waiting routes when it ends) or, for any
    /// other error, a warning.
    pub(super) fn presence_failed(&self, e: &Error, waiting: Option<(u64, (AppId, Route))>) {
        if !is_down(e) {
            tracing::warn!(error = %e, "presence refused a call");
            return;
        }
        let started = {
            let mut routes = self.inner.degraded.routes.lock();
            if let Some((session, route)) = waiting {
                routes.pending.insert(session, route);
            }
            let started = !routes.down;
            routes.down = true;
            self.inner
                .degraded
                .presence_down
                .store(true, Ordering::Relaxed);
            started
        };
        if started {
            tracing::warn!(
                error = %e,
                "presence is down: logins and sends go on, pushes reach this node's sessions \
                 only (the others sync), routes are registered again when it is back"
            );
            let weak = std::sync::Arc::downgrade(&self.inner);
            tokio::spawn(register_when_back(weak));
        }
    }

    /// Notes that a push to `node` failed: warned once until it answers
    /// again (a killed node draws one failure per push until its routes
    /// are gone).
    pub(super) fn peer_failed(&self, node: &NodeId, e: &Error) {
        let degraded = &self.inner.degraded;
        let started = {
            let mut failing = degraded.failing_peers.lock();
            degraded.any_peer_failing.store(true, Ordering::Relaxed);
            failing.insert(node.clone())
        };
        if started {
            tracing::warn!(
                %node,
                error = %e,
                "pushes to another node fail (stored already: its devices sync when they \
                 reconnect); logged again when it answers"
            );
        }
    }

    /// Notes that a push to `node` went through: ends its outage.
    pub(super) fn peer_answered(&self, node: &NodeId) {
        let degraded = &self.inner.degraded;
        if !degraded.any_peer_failing.load(Ordering::Relaxed) {
            return;
        }
        let ended = {
            let mut failing = degraded.failing_peers.lock();
            let ended = failing.remove(node);
            degraded
                .any_peer_failing
                .store(!failing.is_empty(), Ordering::Relaxed);
            ended
        };
        if ended {
            tracing::info!(%node, "pushes to the other node go through again");
            let engine = self.clone();
            tokio::spawn(async move { engine.push_missed_again().await });
        }
    }

    /// After an outage of presence. Pushes this and other nodes could not
    /// route meanwhile were dropped (their entries are stored), and a
    /// device notices a gap only at its next push, which may never come.
    /// So each local user's newest inbox entry is pushed again: a device
    /// that missed some sees the gap and syncs, one that did not ignores
    /// it (it has that version). One user at a time, not to flood the store.
    pub(super) async fn nudge_local_devices(&self) {
        let users = self.inner.hub.users();
        let mut nudged = 0;
        for (app, user) in users.iter().cloned() {
            let entry = match self.newest_inbox_entry(&app, &user).await {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an inbox to nudge its devices; they find gaps at their next push");
                    return;
                }
            };
            let push = crate::push::Push {
                app,
                target: crate::push::Target::User {
                    user,
                    except_device: None,
                },
                event: crate::push::PushEvent::Entry {
                    prev_version: entry.version - 1,
                    entry,
                },
            };
            nudged += self.inner.hub.deliver(&[push]);
        }
        nudged += self.nudge_super_groups(&users).await;
        tracing::info!(
            pushes = nudged,
            "presence is back: each local device was pushed its newest entries, to find what it missed"
        );
    }

    /// The same for super groups: each one with members here gets its
    /// newest entry pushed again to them.
    async fn nudge_super_groups(&self, users: &[(AppId, UserId)]) -> usize {
        let mut members_here: HashMap<(AppId, GroupId), Vec<UserId>> = HashMap::new();
        for (app, user) in users {
            let Ok(groups) = self.inner.groups.groups_of(app, user).await else {
                continue;
            };
            for group in groups {
                members_here
                    .entry((app.clone(), group))
                    .or_default()
                    .push(user.clone());
            }
        }
        let mut nudged = 0;
        for ((app, group), members) in members_here {
            match self.inner.groups.group(&app, &group).await {
                Ok(Some(g)) if g.kind == GroupKind::Super => {}
                _ => continue,
            }
            let Some(entry) = self.newest_channel_entry(&app, &group).await else {
                continue;
            };
            let push = crate::push::Push {
                app,
                target: crate::push::Target::Users {
                    users: members,
                    except: None,
                },
                event: crate::push::PushEvent::Channel {
                    prev_seq: entry.seq - 1,
                    entry,
                },
            };
            nudged += self.inner.hub.deliver(&[push]);
        }
        nudged
    }

    /// Notes a cache failure: the caller goes to the store instead.
    pub(super) fn cache_failed(&self, e: &Error) {
        if !is_down(e) {
            tracing::warn!(error = %e, "the cache refused a call; the store answers instead");
        } else if !self.inner.degraded.cache_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "the cache is down: dedup and syncs go to the store");
        }
    }

    /// Notes a cache call that worked: ends an outage (logged once).
    pub(super) fn cache_answered(&self) {
        let down = &self.inner.degraded.cache_down;
        if down.load(Ordering::Relaxed) && down.swap(false, Ordering::Relaxed) {
            tracing::info!("the cache is back");
        }
    }

    /// One attempt at registering every waiting route. Ends the outage
    /// (returns true) when presence took them all; with none waiting, a
    /// read tells whether presence answers.
    async fn register_waiting(&self) -> bool {
        let waiting: Vec<(u64, (AppId, Route))> = {
            let routes = self.inner.degraded.routes.lock();
            routes
                .pending
                .iter()
                .map(|(s, r)| (*s, r.clone()))
                .collect()
        };
        let ttl = self.inner.config.presence_ttl;
        if waiting.is_empty() {
            let probe = (AppId::new("~probe"), UserId::new("~probe"));
            if self
                .inner
                .presence
                .routes(&probe.0, &probe.1)
                .await
                .is_err()
            {
                return false;
            }
        }
        for (session, (app, route)) in &waiting {
            if self.inner.presence.register(app, route, ttl).await.is_err() {
                return false;
            }
            self.inner.degraded.routes.lock().pending.remove(session);
        }
        let mut routes = self.inner.degraded.routes.lock();
        if !routes.pending.is_empty() {
            return false; // more failed meanwhile: another pass
        }
        routes.down = false;
        self.inner
            .degraded
            .presence_down
            .store(false, Ordering::Relaxed);
        tracing::info!(
            routes = waiting.len(),
            "presence is back: routes registered again"
        );
        true
    }
}

/// Tries every `presence_retry` until presence takes the waiting routes;
/// ends early when the engine is gone.
async fn register_when_back(inner: Weak<Inner>) {
    loop {
        let Some(every) = inner.upgrade().map(|i| i.config.presence_retry) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        if engine.register_waiting().await {
            engine.nudge_local_devices().await;
            engine.push_missed_again().await;
            return;
        }
    }
}
