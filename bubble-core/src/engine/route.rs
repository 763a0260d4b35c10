//! Routing pushes: to this node's sessions through the hub, and in a
//! cluster to the nodes that hold a user's sessions (looked up in presence)
//! through the bus. A push that cannot be delivered loses nothing: what it
//! carries is durable, it is pushed again when the way is back (the
//! `missed` module), and the device syncs by version.

use std::collections::HashMap;

use super::Engine;
use crate::push::{Push, PushEvent, Target};
use crate::types::*;

/// One push to a user, before routing.
pub(super) struct Outgoing {
    /// Whose devices.
    pub user: UserId,
    /// The device that caused it (it has the answer already).
    pub except_device: Option<DeviceId>,
    /// What to push.
    pub event: PushEvent,
}

impl Engine {
    /// Hands pushes to one node: this one's hub, or another's through the bus.
    pub(super) async fn deliver_to_node(&self, node: &NodeId, pushes: Vec<Push>) {
        if *node == self.inner.config.node {
            self.inner.hub.deliver(&pushes);
            return;
        }
        match &self.inner.bus {
            Some(bus) => {
                match bus.deliver(node, &pushes).await {
                    Ok(()) => self.peer_answered(node),
                    // Durable already: pushed again when the node answers
                    // (the `missed` module), or synced on reconnect.
                    Err(e) => {
                        self.peer_failed(node, &e);
                        self.missed(&pushes);
                    }
                }
            }
            None => tracing::debug!(%node, "route to another node but no bus configured"),
        }
    }

    /// Routes pushes to every node holding a target's session.
    pub(super) async fn push(&self, app: &AppId, outgoing: Vec<Outgoing>) {
        if outgoing.is_empty() {
            return;
        }
        let to_push = |o: Outgoing| Push {
            app: app.clone(),
            target: Target::User {
                user: o.user,
                except_device: o.except_device,
            },
            event: o.event,
        };
        // One node: the hub knows every session; skip the route lookup.
        let Some(_) = &self.inner.bus else {
            let pushes: Vec<Push> = outgoing.into_iter().map(to_push).collect();
            self.inner.hub.deliver(&pushes);
            return;
        };
        let mut users: Vec<UserId> = outgoing.iter().map(|o| o.user.clone()).collect();
        users.sort();
        users.dedup();
        let routes = match self.inner.presence.routes_of(app, &users).await {
            Ok(r) => r,
            Err(e) => {
                // The other nodes' receivers are pushed it again when
                // presence is back (the `missed` module).
                self.presence_failed(&e, None);
                let pushes: Vec<Push> = outgoing.into_iter().map(to_push).collect();
                self.inner.hub.deliver(&pushes);
                self.missed(&pushes);
                return;
            }
        };
        let mut nodes_of: HashMap<UserId, Vec<NodeId>> = HashMap::new();
        for r in routes {
            let nodes = nodes_of.entry(r.user).or_default();
            if !nodes.contains(&r.node) {
                nodes.push(r.node);
            }
        }
        tracing::debug!(
            users = users.len(),
            nodes = nodes_of.len(),
            "routing pushes"
        );
        let mut by_node: HashMap<NodeId, Vec<Push>> = HashMap::new();
        for o in outgoing {
            let Some(nodes) = nodes_of.get(&o.user) else {
                continue;
            };
            let push = to_push(o);
            for node in nodes {
                by_node.entry(node.clone()).or_default().push(push.clone());
            }
        }
        for (node, pushes) in by_node {
            self.deliver_to_node(&node, pushes).await;
        }
    }

    /// Pushes one event to every device of `users` (a super group's
    /// members) but `except`: one push per node holding any of them, with
    /// that node's members listed, instead of one per member.
    pub(super) async fn push_to_members(
        &self,
        app: &AppId,
        users: Vec<UserId>,
        except: Option<(UserId, DeviceId)>,
        event: PushEvent,
    ) {
        if users.is_empty() {
            return;
        }
        let to_node = |users: Vec<UserId>| Push {
            app: app.clone(),
            target: Target::Users {
                users,
                except: except.clone(),
            },
            event: event.clone(),
        };
        let Some(_) = &self.inner.bus else {
            self.inner.hub.deliver(&[to_node(users)]);
            return;
        };
        let routes = match self.inner.presence.routes_of(app, &users).await {
            Ok(r) => r,
            Err(e) => {
                // The other nodes' members are pushed it again when
                // presence is back (the `missed` module).
                self.presence_failed(&e, None);
                let push = [to_node(users)];
                self.inner.hub.deliver(&push);
                self.missed(&push);
                return;
            }
        };
        let mut by_node: HashMap<NodeId, Vec<UserId>> = HashMap::new();
        for r in routes {
            by_node.entry(r.node).or_default().push(r.user);
        }
        for (node, mut members) in by_node {
            // Several sessions of one user on a node: listed once.
            members.sort_unstable();
            members.dedup();
            self.deliver_to_node(&node, vec![to_node(members)]).await;
        }
    }

    /// Pushes one event to every session of the app on `nodes` (this node
    /// always included).
    pub(super) async fn push_app_wide(&self, app: &AppId, event: PushEvent, nodes: &[NodeId]) {
        let push = Push {
            app: app.clone(),
            target: Target::App,
            event,
        };
        self.inner.hub.deliver(std::slice::from_ref(&push));
        for node in nodes {
            if *node != self.inner.config.node {
                self.deliver_to_node(node, vec![push.clone()]).await;
            }
        }
    }
}
