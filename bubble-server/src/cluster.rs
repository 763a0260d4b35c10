//! Node-to-node pushes over gRPC: the [`Bus`] of a cluster.
//!
//! A node that accepted a message looks up the recipients' routes in
//! `Presence`, groups pushes by node, and calls `Deliver` on each node that
//! holds a session. Nodes find each other's RPC address in discovery. A
//! failed delivery loses no message: it is durable already, and the device
//! syncs by version when it notices the gap or reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use tonic::transport::{Channel, Endpoint};

use bubble_core::ports::{Bus, Discovery};
use bubble_core::push::{Push, PushEvent, SessionHub, Target};
use bubble_core::wire::*;
use bubble_core::{AppId, DeviceId, Error, NodeId, Result, UserId};

/// Generated from `bubble-proto/proto/cluster.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bubble.cluster.v1");
}

use pb::cluster_client::ClusterClient;
use pb::cluster_push::{Event, Target as PbTarget};

/// A push for the wire between nodes.
pub fn push_to_pb(push: &Push) -> pb::ClusterPush {
    let target = match &push.target {
        Target::User {
            user,
            except_device,
        } => PbTarget::User(pb::UserTarget {
            user: user.to_string(),
            except_device: except_device
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }),
        Target::Session { user, session } => PbTarget::Session(pb::SessionTarget {
            user: user.to_string(),
            session: *session,
        }),
        Target::App => PbTarget::AppWide(true),
        Target::Users { users, except } => PbTarget::Users(pb::UsersTarget {
            users: users.iter().map(|u| u.to_string()).collect(),
            except_user: except
                .as_ref()
                .map(|(u, _)| u.to_string())
                .unwrap_or_default(),
            except_device: except
                .as_ref()
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
        }),
    };
    let event = match &push.event {
        PushEvent::Entry {
            entry,
            prev_version,
        } => Event::Entry(pb::EntryEvent {
            owner: entry.owner.to_string(),
            entry: Some(entry_to_pb(entry)),
            prev_version: *prev_version,
        }),
        PushEvent::Channel { entry, prev_seq } => Event::Channel(pb::ChannelEvent {
            entry: Some(channel_entry_to_pb(entry)),
            prev_seq: *prev_seq,
        }),
        PushEvent::Broadcast { entry, prev_seq } => Event::Broadcast(pb::ChannelEvent {
            entry: Some(channel_entry_to_pb(entry)),
            prev_seq: *prev_seq,
        }),
        PushEvent::Typing { conversation, from } => Event::Typing(pb::TypingEvent {
            conversation: Some(conversation_to_pb(conversation)),
            from: from.to_string(),
        }),
        PushEvent::Kick { reason } => Event::Kick(reason.clone()),
        PushEvent::Business { command, body } => Event::Business(pb::BusinessEvent {
            command: u32::from(*command),
            body: body.clone(),
        }),
    };
    pb::ClusterPush {
        app: push.app.to_string(),
        target: Some(target),
        event: Some(event),
    }
}

/// A push back from the wire.
pub fn push_from_pb(p: &pb::ClusterPush) -> Result<Push> {
    let missing = |what: &str| Error::invalid(format!("cluster push without {what}"));
    let target = match p.target.as_ref().ok_or_else(|| missing("a target"))? {
        PbTarget::User(u) => Target::User {
            user: UserId::new(&u.user),
            except_device: (!u.except_device.is_empty()).then(|| DeviceId::new(&u.except_device)),
        },
        PbTarget::Session(s) => Target::Session {
            user: UserId::new(&s.user),
            session: s.session,
        },
        PbTarget::AppWide(_) => Target::App,
        PbTarget::Users(u) => Target::Users {
            users: u.users.iter().map(UserId::new).collect(),
            except: (!u.except_user.is_empty())
                .then(|| (UserId::new(&u.except_user), DeviceId::new(&u.except_device))),
        },
    };
    let channel = |c: &pb::ChannelEvent| -> Result<(bubble_core::ChannelEntry, u64)> {
        let entry = c.entry.as_ref().ok_or_else(|| missing("an entry"))?;
        Ok((channel_entry_from_pb(entry)?, c.prev_seq))
    };
    let event = match p.event.as_ref().ok_or_else(|| missing("an event"))? {
        Event::Entry(e) => PushEvent::Entry {
            entry: entry_from_pb(
                &UserId::new(&e.owner),
                e.entry.as_ref().ok_or_else(|| missing("an entry"))?,
            )?,
            prev_version: e.prev_version,
        },
        Event::Channel(c) => {
            let (entry, prev_seq) = channel(c)?;
            PushEvent::Channel { entry, prev_seq }
        }
        Event::Broadcast(c) => {
            let (entry, prev_seq) = channel(c)?;
            PushEvent::Broadcast { entry, prev_seq }
        }
        Event::Typing(t) => PushEvent::Typing {
            conversation: conversation_from_pb(t.conversation.as_ref())?,
            from: UserId::new(&t.from),
        },
        Event::Kick(reason) => PushEvent::Kick {
            reason: reason.clone(),
        },
        Event::Business(b) => PushEvent::Business {
            command: u16::try_from(b.command)
                .map_err(|_| Error::invalid("business command above 0xffff"))?,
            body: b.body.clone(),
        },
    };
    Ok(Push {
        app: AppId::new(&p.app),
        target,
        event,
    })
}

/// The metadata key a peer's credential travels in.
const PEER_KEY_HEADER: &str = "x-bubble-peer-key";

/// What a node proves to its peers on every push: derived from
/// `cluster.rpc_secret` (a hash, so the secret itself never crosses the
/// network), or nothing when no secret is configured.
#[derive(Clone, Default)]
pub struct PeerKey(Option<String>);

impl PeerKey {
    /// The key of `secret`; none for an empty one.
    pub fn from_secret(secret: &str) -> PeerKey {
        if secret.is_empty() {
            return PeerKey(None);
        }
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"bubble cluster peer key v1\0");
        hash.update(secret.as_bytes());
        PeerKey(Some(hex::encode(hash.finalize())))
    }

    /// Whether a secret is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Adds the credential to an outgoing call.
    fn attach<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(key) = &self.0
            && let Ok(value) = key.parse()
        {
            request.metadata_mut().insert(PEER_KEY_HEADER, value);
        }
    }

    /// Lets a call through if it carries this key (any call, with none).
    fn check(
        &self,
        request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        let Some(want) = &self.0 else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get(PEER_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            want.as_bytes(),
        )) {
            Ok(request)
        } else {
            Err(tonic::Status::unauthenticated(
                "this node's peers prove cluster.rpc_secret: set the same one on every node",
            ))
        }
    }
}

/// The receiving side: hands pushes to this node's sessions.
pub struct ClusterService {
    hub: Arc<SessionHub>,
}

/// Serves this node's hub to its peers on `listener` until `shutdown`,
/// to callers that prove `key`.
pub async fn serve(
    hub: Arc<SessionHub>,
    key: PeerKey,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if !key.is_set() {
        tracing::warn!(
            "cluster.rpc_secret is not set: the cluster port takes pushes from anyone who \
             reaches it; set it (the same on every node) or keep the port on a private network"
        );
    }
    let service = pb::cluster_server::ClusterServer::with_interceptor(
        ClusterService::new(hub),
        move |request| key.check(request),
    );
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "cluster listener stopped");
    }
}

impl ClusterService {
    /// Serves `hub`.
    pub fn new(hub: Arc<SessionHub>) -> ClusterService {
        ClusterService { hub }
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn deliver(
        &self,
        request: tonic::Request<pb::DeliverRequest>,
    ) -> std::result::Result<tonic::Response<pb::DeliverReply>, tonic::Status> {
        let request = request.into_inner();
        let pushes = request
            .pushes
            .iter()
            .map(push_from_pb)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let delivered = self.hub.deliver(&pushes) as u64;
        tracing::debug!(from = %request.from_node, pushes = pushes.len(), delivered, "pushes from a peer");
        Ok(tonic::Response::new(pb::DeliverReply { delivered }))
    }
}

/// The sending side: a [`Bus`] that finds nodes in discovery and keeps one
/// HTTP/2 channel to each.
pub struct GrpcBus {
    node: NodeId,
    discovery: Arc<dyn Discovery>,
    role: String,
    key: PeerKey,
    clients: RwLock<HashMap<NodeId, ClusterClient<Channel>>>,
    timeout: Duration,
}

impl GrpcBus {
    /// A bus for `node`, finding peers of `role` in `discovery`, proving
    /// `key` to them.
    pub fn new(node: NodeId, discovery: Arc<dyn Discovery>, role: &str, key: PeerKey) -> GrpcBus {
        GrpcBus {
            node,
            discovery,
            role: role.to_owned(),
            key,
            clients: RwLock::new(HashMap::new()),
            timeout: Duration::from_secs(2),
        }
    }

    async fn client(&self, node: &NodeId) -> Result<ClusterClient<Channel>> {
        if let Some(c) = self.clients.read().get(node) {
            return Ok(c.clone());
        }
        let peers = self.discovery.list(&self.role).await?;
        let addr = peers
            .iter()
            .find(|n| n.id == *node)
            .and_then(|n| n.rpc_addr.clone())
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "node {node} is not in discovery or has no rpc address"
                ))
            })?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::invalid(format!("rpc address {addr} of node {node}: {e}")))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let client = ClusterClient::new(endpoint.connect_lazy());
        self.clients.write().insert(node.clone(), client.clone());
        Ok(client)
    }
}

#[async_trait]
impl Bus for GrpcBus {
    async fn deliver(&self, node: &NodeId, pushes: &[Push]) -> Result<()> {
        let mut client = self.client(node).await?;
        let mut request = tonic::Request::new(pb::DeliverRequest {
            from_node: self.node.to_string(),
            pushes: pushes.iter().map(push_to_pb).collect(),
        });
        self.key.attach(&mut request);
        match client.deliver(request).await {
            Ok(_) => Ok(()),
            Err(status) => {
                // The node may have moved or died: look it up again next time.
                self.clients.write().remove(node);
                Err(Error::unavailable(format!(
                    "push to node {node} failed: {status}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bubble_core::{Content, Conversation, DeviceId, Direction, EntryKind, InboxEntry, MsgId};
    use bytes::Bytes;

    fn entry() -> InboxEntry {
        InboxEntry {
            owner: UserId::new("bob"),
            version: 7,
            kind: EntryKind::Message,
            conversation: Conversation::direct(&UserId::new("alice")),
            direction: Direction::In,
            server_msg_id: MsgId([3; 16]),
            sender: UserId::new("alice"),
            sender_device: DeviceId::new("phone"),
            client_msg_id: "c1".into(),
            client_seq: 1,
            create_time: 10,
            server_time: 11,
            content: Content::text("hi"),
            read_up_to: 0,
            meta: bubble_core::EntryMeta::of(&bubble_proto::pb::EntryMeta {
                mentions: vec!["bob".into()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn every_push_survives_the_trip_between_nodes() {
        let pushes = vec![
            Push {
                app: AppId::new("a"),
                target: Target::User {
                    user: UserId::new("bob"),
                    except_device: Some(DeviceId::new("phone")),
                },
                event: PushEvent::Entry {
                    entry: entry(),
                    prev_version: 6,
                },
            },
            Push {
                app: AppId::new("a"),
                target: Target::Session {
                    user: UserId::new("bob"),
                    session: 42,
                },
                event: PushEvent::Kick {
                    reason: "elsewhere".into(),
                },
            },
            Push {
                app: AppId::new("a"),
                target: Target::User {
                    user: UserId::new("bob"),
                    except_device: None,
                },
                event: PushEvent::Typing {
                    conversation: Conversation::direct(&UserId::new("alice")),
                    from: UserId::new("alice"),
                },
            },
            Push {
                app: AppId::new("a"),
                target: Target::Users {
                    users: vec![UserId::new("bob"), UserId::new("carol")],
                    except: Some((UserId::new("bob"), DeviceId::new("phone"))),
                },
                event: PushEvent::Kick {
                    reason: "members".into(),
                },
            },
            Push {
                app: AppId::new("a"),
                target: Target::Users {
                    users: vec![UserId::new("dave")],
                    except: None,
                },
                event: PushEvent::Kick {
                    reason: "no sender here".into(),
                },
            },
            Push {
                app: AppId::new("a"),
                target: Target::App,
                event: PushEvent::Business {
                    command: 0x8001,
                    body: Bytes::from_static(b"x"),
                },
            },
        ];
        for p in pushes {
            assert_eq!(push_from_pb(&push_to_pb(&p)).unwrap(), p);
        }
    }

    #[tokio::test]
    async fn a_push_without_the_clusters_secret_is_refused() {
        const SECRET: &str = "the-cluster-rpc-secret-of-32-bytes-at-least";
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(serve(
            Arc::new(SessionHub::new()),
            PeerKey::from_secret(SECRET),
            listener,
            shutdown.clone(),
        ));
        let discovery: Arc<dyn Discovery> = Arc::new(bubble_core::memory::MemoryDiscovery::new());
        let peer = bubble_core::ports::NodeInfo {
            id: NodeId::new("peer"),
            role: "gate".into(),
            tcp_addr: None,
            ws_addr: None,
            rpc_addr: Some(addr),
            load: 0,
        };
        let _lease = discovery
            .register(&peer, Duration::from_secs(60))
            .await
            .unwrap();
        let typing = || {
            vec![Push {
                app: AppId::new("a"),
                target: Target::App,
                event: PushEvent::Typing {
                    conversation: Conversation::direct(&UserId::new("bob")),
                    from: UserId::new("alice"),
                },
            }]
        };
        let bus = |key| GrpcBus::new(NodeId::new("me"), discovery.clone(), "gate", key);

        for (who, key) in [
            ("a caller without a key", PeerKey::default()),
            (
                "a caller with another secret",
                PeerKey::from_secret(&"x".repeat(32)),
            ),
        ] {
            let err = bus(key)
                .deliver(&NodeId::new("peer"), &typing())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("rpc_secret"), "{who}: {err}");
        }
        bus(PeerKey::from_secret(SECRET))
            .deliver(&NodeId::new("peer"), &typing())
            .await
            .expect("a peer with the secret is heard");
        shutdown.cancel();
    }
}
