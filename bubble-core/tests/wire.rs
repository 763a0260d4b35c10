//! The error table: one mapping between error kinds and what they travel
//! as, read in both directions.

use bubble_core::wire::{ERROR_TABLE, error_code, error_kind, error_to_pb, error_wire};
use bubble_core::{Error, ErrorKind};
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
