//! Builders for the entries the checks write.

use bytes::Bytes;

use crate::ports::Delivery;
use crate::types::*;

/// A server time in 1970 for the prune and retention checks: no other
/// check writes a dedup key with one (the retention checks' messages carry
/// no client id), so what is pruned before `OLD + 100` is that check's (or
/// a crashed run's) own.
pub(crate) const OLD: i64 = 1_000_000;

/// A fresh message id for tests: a per-process random half and a counter,
/// so runs sharing a database never collide.
pub fn test_msg_id() -> MsgId {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NONCE: OnceLock<u64> = OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(1);
    let nonce = *NONCE.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now_millis());
        h.finish()
    });
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&nonce.to_be_bytes());
    id[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    MsgId(id)
}

/// The sender's (out) and receiver's (in) entries of a 1:1 text message.
pub fn direct_message(from: &str, to: &str, text: &str) -> (InboxEntry, InboxEntry) {
    let id = test_msg_id();
    let now = now_millis();
    let out = InboxEntry {
        owner: UserId::new(from),
        version: 0,
        kind: EntryKind::Message,
        conversation: Conversation::direct(&UserId::new(to)),
        direction: Direction::Out,
        server_msg_id: id,
        sender: UserId::new(from),
        sender_device: DeviceId::new("phone"),
        client_msg_id: String::new(),
        client_seq: 1,
        create_time: now - 5,
        server_time: now,
        content: Content::text(text),
        read_up_to: 0,
        meta: EntryMeta::none(),
    };
    let inb = InboxEntry {
        owner: UserId::new(to),
        conversation: Conversation::direct(&UserId::new(from)),
        direction: Direction::In,
        ..out.clone()
    };
    (out, inb)
}

/// A delivery of a 1:1 text message with a client message id (empty: no dedup).
pub fn direct_delivery(from: &str, to: &str, text: &str, client_msg_id: &str) -> Delivery {
    let (mut out, mut inb) = direct_message(from, to, text);
    out.client_msg_id = client_msg_id.to_owned();
    inb.client_msg_id = client_msg_id.to_owned();
    Delivery {
        sender: UserId::new(from),
        client_msg_id: client_msg_id.to_owned(),
        entries: vec![out, inb],
        index: false,
        receipt_entry: Some(0),
    }
}

/// A server-made entry of `kind` about message `id` (a recall, delete,
/// read receipt or cursor), one for each `(owner, peer)`, in the 1:1
/// conversation as that owner sees it, carrying `read_up_to`.
pub fn about_direct(
    kind: EntryKind,
    id: MsgId,
    owners: &[(&str, &str)],
    read_up_to: u64,
) -> Delivery {
    let (template, _) = direct_message("x", "y", "");
    Delivery {
        sender: UserId::new("server"),
        client_msg_id: String::new(),
        entries: owners
            .iter()
            .map(|(owner, peer)| InboxEntry {
                owner: UserId::new(*owner),
                kind,
                conversation: Conversation::direct(&UserId::new(*peer)),
                direction: Direction::Out,
                server_msg_id: id,
                content: Content::text(""),
                read_up_to,
                ..template.clone()
            })
            .collect(),
        index: false,
        receipt_entry: None,
    }
}

/// A delivery of a group message from `from` to every member.
pub fn group_delivery(group: &str, from: &str, members: &[&str], text: &str) -> Delivery {
    let (out, _) = direct_message(from, from, text);
    let conversation = Conversation::group(&GroupId::new(group));
    let mut entries = vec![InboxEntry {
        conversation: conversation.clone(),
        ..out.clone()
    }];
    for m in members.iter().filter(|m| **m != from) {
        entries.push(InboxEntry {
            owner: UserId::new(*m),
            conversation: conversation.clone(),
            direction: Direction::In,
            ..out.clone()
        });
    }
    Delivery {
        sender: UserId::new(from),
        client_msg_id: String::new(),
        entries,
        index: false,
        receipt_entry: Some(0),
    }
}

/// A channel (super group) message.
pub fn channel_message(group: &str, from: &str, text: &str, client_msg_id: &str) -> ChannelEntry {
    let now = now_millis();
    ChannelEntry {
        group: GroupId::new(group),
        seq: 0,
        kind: EntryKind::Message,
        server_msg_id: test_msg_id(),
        sender: UserId::new(from),
        sender_device: DeviceId::new("phone"),
        client_msg_id: client_msg_id.to_owned(),
        client_seq: 7,
        create_time: now - 3,
        server_time: now,
        content: Content {
            kind: ContentType::Text,
            body: Bytes::from(text.to_owned()),
        },
        meta: EntryMeta::none(),
    }
}
