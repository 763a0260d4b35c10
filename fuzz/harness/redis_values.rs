//! Harness of the `redis_values` fuzz target: the Redis adapter's value
//! codecs (dedup receipts, recent-window elements, which carry a whole
//! inbox entry as protobuf, and presence routes) fed arbitrary bytes, as a
//! key another program wrote, or a value from an older bubble, holds them.
//!
//! The first byte picks the decoder. The contract: no panic; a value that
//! does not decode is an `Internal` error (the advice is to delete the key,
//! not to change one's request); and a value that decodes encodes to bytes
//! that decode to the same thing.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/redis_values.rs` and the
//! replay of `fuzz/regressions/redis_values/` in bubble-store-redis's tests.

use bubble_core::ports::Route;
use bubble_core::{
    Content, Conversation, DeviceId, Direction, EntryKind, Error, ErrorKind, InboxEntry, MsgId,
    NodeId, SendReceipt, UserId,
};
use bubble_store_redis::fuzzing::*;

/// Runs one input; panics on a violation of the codecs' contract.
pub fn run(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let alice = UserId::new("alice");
    match which % 3 {
        0 => check("receipt", decode_receipt(bytes), |r| {
            decode_receipt(&encode_receipt(r))
        }),
        1 => check("window element", decode_element(bytes), |e| {
            decode_element(&encode_element(e))
        }),
        _ => check("route", decode_route(&alice, bytes), |r| {
            decode_route(&alice, &encode_route(r).expect("a decoded route encodes"))
        }),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    decoded: Result<T, Error>,
    again: impl Fn(&T) -> Result<T, Error>,
) {
    match decoded {
        Ok(value) => {
            let back = again(&value).unwrap_or_else(|e| {
                panic!("a decoded {what} does not decode once re-encoded: {e}")
            });
            assert_eq!(back, value, "a {what} changed through encode and decode");
        }
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::Internal,
            "a {what} that does not decode must be an internal error: {e}"
        ),
    }
}

/// Values as the adapter writes them, one per codec.
pub fn seeds() -> Vec<Vec<u8>> {
    let receipt = SendReceipt {
        server_msg_id: MsgId([9; 16]),
        version: 7,
        seq: 0,
        server_time: 1_767_225_600_003,
        duplicate: false,
        prev_version: 0,
    };
    let entry = InboxEntry {
        owner: UserId::new("alice"),
        version: 7,
        kind: EntryKind::Message,
        conversation: Conversation::direct(&UserId::new("bob")),
        direction: Direction::Out,
        server_msg_id: MsgId([9; 16]),
        sender: UserId::new("alice"),
        sender_device: DeviceId::new("phone-1"),
        client_msg_id: "m-1".into(),
        client_seq: 1,
        create_time: 1_767_225_600_000,
        server_time: 1_767_225_600_003,
        content: Content::text("hello"),
        read_up_to: 0,
        meta: bubble_core::EntryMeta::none(),
    };
    let route = Route {
        user: UserId::new("alice"),
        device: DeviceId::new("phone-1"),
        platform: "ios".into(),
        node: NodeId::new("node-1"),
        session: 1 << 40,
        since: 1_767_225_600_000,
        background: false,
    };
    vec![
        [&[0u8][..], &encode_receipt(&receipt)].concat(),
        [&[1u8][..], &encode_element(&entry)].concat(),
        [
            &[2u8][..],
            &encode_route(&route).expect("the seed route encodes"),
        ]
        .concat(),
    ]
}
