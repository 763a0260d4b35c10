//! The key layout and the value format: `<prefix>/nodes/<role>/<node id>` -> JSON.
//!
//! One key per node, attached to the node's lease, so etcd deletes it by
//! itself when the lease runs out. The role is a path segment so that a
//! prefix read or watch of `<prefix>/nodes/<role>/` sees exactly one role
//! (ids and roles may not contain `/`, see [`bubble_core::validate_id`]).

use bubble_core::ports::NodeInfo;
use bubble_core::{Error, NodeId, Result};
use serde::{Deserialize, Serialize};

/// Every node key of the cluster starts with this.
pub(crate) fn nodes_prefix(prefix: &str) -> String {
    format!("{prefix}/nodes/")
}

/// Every key of one role starts with this (trailing `/` included, so role
/// "gate" never matches "gateway").
pub(crate) fn role_prefix(prefix: &str, role: &str) -> String {
    format!("{}{role}/", nodes_prefix(prefix))
}

/// The key a node is registered under.
pub(crate) fn node_key(prefix: &str, role: &str, id: &NodeId) -> String {
    format!("{}{}", role_prefix(prefix, role), id.as_str())
}

/// The node id at the end of a key under `role_prefix`; `None` for keys
/// that are not one node's (deeper paths written by someone else).
pub(crate) fn node_id_of(role_prefix: &str, key: &[u8]) -> Option<NodeId> {
    let key = std::str::from_utf8(key).ok()?;
    let id = key.strip_prefix(role_prefix)?;
    (!id.is_empty() && !id.contains('/')).then(|| NodeId::new(id))
}

/// The stored form of a [`NodeInfo`]. JSON, so operators can read it with
/// `etcdctl get --prefix /bubble/nodes/`.
#[derive(Serialize, Deserialize)]
struct NodeRecord {
    id: String,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ws_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rpc_addr: Option<String>,
    #[serde(default)]
    load: u64,
}

/// The JSON value stored for a node.
pub(crate) fn encode(info: &NodeInfo) -> String {
    let record = NodeRecord {
        id: info.id.to_string(),
        role: info.role.clone(),
        tcp_addr: info.tcp_addr.clone(),
        ws_addr: info.ws_addr.clone(),
        rpc_addr: info.rpc_addr.clone(),
        load: info.load,
    };
    serde_json::to_string(&record).expect("a NodeRecord always serializes")
}

/// Reads a stored value back.
pub(crate) fn decode(value: &[u8]) -> Result<NodeInfo> {
    let r: NodeRecord = serde_json::from_slice(value).map_err(|e| {
        Error::internal(format!(
            "etcd: a node key holds something that is not a bubble node record: {e}"
        ))
    })?;
    Ok(NodeInfo {
        id: NodeId::new(r.id),
        role: r.role,
        tcp_addr: r.tcp_addr,
        ws_addr: r.ws_addr,
        rpc_addr: r.rpc_addr,
        load: r.load,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NodeInfo {
        NodeInfo {
            id: NodeId::new("gate-1"),
            role: "gate".into(),
            tcp_addr: Some("10.0.0.1:7000".into()),
            ws_addr: None,
            rpc_addr: Some("10.0.0.1:7100".into()),
            load: 42,
        }
    }

    #[test]
    fn a_node_lives_under_its_role() {
        assert_eq!(
            node_key("/bubble", "gate", &NodeId::new("gate-1")),
            "/bubble/nodes/gate/gate-1"
        );
    }

    #[test]
    fn a_role_prefix_ends_with_a_slash_so_roles_do_not_overlap() {
        let gate = role_prefix("/bubble", "gate");
        assert_eq!(gate, "/bubble/nodes/gate/");
        assert!(!node_key("/bubble", "gateway", &NodeId::new("x")).starts_with(&gate));
    }

    #[test]
    fn the_node_id_is_read_back_from_the_key() {
        let p = role_prefix("/bubble", "gate");
        assert_eq!(
            node_id_of(&p, b"/bubble/nodes/gate/gate-1"),
            Some(NodeId::new("gate-1"))
        );
        assert_eq!(node_id_of(&p, b"/bubble/nodes/gate/"), None);
        assert_eq!(node_id_of(&p, b"/bubble/nodes/gate/a/b"), None);
        assert_eq!(node_id_of(&p, b"/bubble/nodes/logic/x"), None);
    }

    #[test]
    fn the_value_is_readable_json() {
        let v: serde_json::Value = serde_json::from_str(&encode(&info())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "gate-1",
                "role": "gate",
                "tcp_addr": "10.0.0.1:7000",
                "rpc_addr": "10.0.0.1:7100",
                "load": 42
            })
        );
    }

    #[test]
    fn every_field_survives_a_round_trip() {
        assert_eq!(decode(encode(&info()).as_bytes()).unwrap(), info());
    }

    #[test]
    fn a_foreign_value_is_an_internal_error() {
        let e = decode(b"not json").unwrap_err();
        assert_eq!(e.kind(), bubble_core::ErrorKind::Internal);
    }
}
