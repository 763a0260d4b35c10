//! The error table (one mapping between error kinds and what they travel
//! as, read in both directions) and the compact bytes caches keep entries as.

use bubble_core::wire::{
    ERROR_TABLE, decode_entry, encode_entry, error_code, error_kind, error_to_pb, error_wire,
};
use bubble_core::{
    Content, Conversation, DeviceId, Direction, EntryKind, EntryMeta, Error, ErrorKind, InboxEntry,
    MsgId, UserId,
};
use bubble_proto::pb::ErrorCode;

#[test]
fn every_kind_reads_back_from_its_code_except_conflict_which_travels_as_unavailable() {
    for row in &ERROR_TABLE {
        let back = error_kind(error_code(row.kind) as i32);
        if row.kind == ErrorKind::Conflict {
            assert_eq!(back, ErrorKind::Unavailable);
        } else {
            assert_eq!(back, row.kind, "{row:?}");
        }
    }
}

#[test]
fn each_kind_has_one_row_and_one_metric_name() {
    for (i, a) in ERROR_TABLE.iter().enumerate() {
        for b in &ERROR_TABLE[i + 1..] {
            assert_ne!(a.kind, b.kind);
            assert_ne!(a.name, b.name);
        }
        assert_eq!(error_wire(a.kind), a);
    }
}

#[test]
fn protocol_level_and_unknown_codes_have_no_kind_of_their_own() {
    for code in [
        ErrorCode::MalformedFrame,
        ErrorCode::UnknownCommand,
        ErrorCode::HandshakeFailed,
        ErrorCode::GoingAway,
    ] {
        assert_eq!(error_kind(code as i32), ErrorKind::Internal, "{code:?}");
    }
    assert_eq!(error_kind(9999), ErrorKind::Internal);
}

#[test]
fn an_error_travels_with_its_code_message_and_retry_hint() {
    let pb = error_to_pb(&Error::unavailable("the store is down"));
    assert_eq!(pb.code, ErrorCode::Unavailable as i32);
    assert_eq!(pb.message, "the store is down");
    assert!(pb.retryable);
    let pb = error_to_pb(&Error::new(ErrorKind::Expired, "too late"));
    assert_eq!(pb.code, ErrorCode::RecallExpired as i32);
    assert!(!pb.retryable);
}

#[test]
fn http_statuses_are_the_documented_ones() {
    let status = |k| error_wire(k).http_status;
    assert_eq!(status(ErrorKind::InvalidInput), 400);
    assert_eq!(status(ErrorKind::TooLarge), 400);
    assert_eq!(status(ErrorKind::Unauthenticated), 401);
    assert_eq!(status(ErrorKind::PermissionDenied), 403);
    assert_eq!(status(ErrorKind::NotFound), 404);
    assert_eq!(status(ErrorKind::AlreadyExists), 409);
    assert_eq!(status(ErrorKind::Conflict), 409);
    assert_eq!(status(ErrorKind::RateLimited), 429);
    assert_eq!(status(ErrorKind::Unavailable), 503);
    assert_eq!(status(ErrorKind::Timeout), 503);
    assert_eq!(status(ErrorKind::Internal), 500);
}

fn cached_entry() -> InboxEntry {
    InboxEntry {
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
        meta: EntryMeta::none(),
    }
}

#[test]
fn a_cached_entry_reads_back_as_it_was_written() {
    let entry = cached_entry();
    assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
}

#[test]
fn a_cached_entry_keeps_its_meta() {
    let entry = InboxEntry {
        meta: EntryMeta::of(&bubble_proto::pb::EntryMeta {
            mentions: vec!["bob".into()],
            edited_at: 1_767_225_700_000,
            ..Default::default()
        }),
        ..cached_entry()
    };
    assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
}

#[test]
fn a_cached_entry_that_is_not_one_is_corrupt_data_not_the_callers_invalid_input() {
    // Found by the `redis_values` fuzz target: a window element whose
    // protobuf parsed but held content type 50 came back as `InvalidInput`.
    let mut bytes = encode_entry(&cached_entry());
    // The content's type: the last field of the entry is `content` (tag 12,
    // `0x62`, then its length), whose first field is the type (`0x08`, then 1).
    let at = bytes.len() - "hello".len() - 4;
    assert_eq!(bytes[at..at + 2], [0x08, 1], "the content type's varint");
    bytes[at + 1] = 50;
    let err = decode_entry(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.message().contains("cached entry is corrupt"), "{err}");
}
