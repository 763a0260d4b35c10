//! The bytes stored in values: receipts, window elements and routes.
//!
//! Versions and sessions are written as 20 zero-padded decimal digits at the
//! start of a value, so the Lua scripts can compare them as strings (Lua
//! numbers are doubles and would round a `u64`).

use bubble_core::ports::Route;
use bubble_core::wire::{decode_entry, encode_entry};
use bubble_core::{DeviceId, Error, InboxEntry, MsgId, Result, SendReceipt, UserId};

/// Width of [`digits`]: `u64::MAX` has 20 decimal digits.
pub(crate) const DIGITS: usize = 20;

/// A `u64` as exactly 20 decimal digits.
pub(crate) fn digits(v: u64) -> String {
    format!("{v:020}")
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!(
        "a value in Redis is corrupt ({what}); delete the key, the cache refills itself"
    ))
}

/// A receipt as 40 bytes: message id, version, seq, server time (big-endian).
/// `duplicate` is not kept: whatever is read back answers a retry.
pub(crate) fn encode_receipt(r: &SendReceipt) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..16].copy_from_slice(&r.server_msg_id.0);
    out[16..24].copy_from_slice(&r.version.to_be_bytes());
    out[24..32].copy_from_slice(&r.seq.to_be_bytes());
    out[32..].copy_from_slice(&r.server_time.to_be_bytes());
    out
}

/// Reads [`encode_receipt`]'s bytes back, marked as a duplicate.
pub(crate) fn decode_receipt(bytes: &[u8]) -> Result<SendReceipt> {
    let bytes: &[u8; 40] = bytes.try_into().map_err(|_| corrupt("receipt length"))?;
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        b
    };
    Ok(SendReceipt {
        server_msg_id: MsgId::from_slice(&bytes[..16]).map_err(|_| corrupt("receipt id"))?,
        version: u64::from_be_bytes(u64_at(16)),
        seq: u64::from_be_bytes(u64_at(24)),
        server_time: i64::from_be_bytes(u64_at(32)),
        duplicate: true,
        prev_version: 0,
    })
}

/// A window element: the entry's version as 20 digits, then the entry.
pub(crate) fn encode_element(e: &InboxEntry) -> Vec<u8> {
    let mut out = digits(e.version).into_bytes();
    out.extend_from_slice(&encode_entry(e));
    out
}

/// Reads an element of the window back.
pub(crate) fn decode_element(bytes: &[u8]) -> Result<InboxEntry> {
    if bytes.len() < DIGITS {
        return Err(corrupt("window element too short"));
    }
    decode_entry(&bytes[DIGITS..])
}

/// Ends a background route's bytes, after the platform. A node of an
/// earlier release reads it as part of the platform's name, which only
/// labels the route, so old and new nodes share presence during a
/// rolling upgrade.
const BACKGROUND_MARK: &[u8] = b"\0bg";

/// A route as bytes: the session as 20 digits (the unregister script
/// compares it), the login time, then device, node and platform, and
/// [`BACKGROUND_MARK`] when the app is in the background.
pub(crate) fn encode_route(r: &Route) -> Result<Vec<u8>> {
    let (device, node) = (r.device.as_str().as_bytes(), r.node.as_str().as_bytes());
    let len16 = |what: &str, s: &[u8]| {
        u16::try_from(s.len())
            .map(u16::to_be_bytes)
            .map_err(|_| Error::invalid(format!("route {what} is longer than 65535 bytes")))
    };
    let mut out = digits(r.session).into_bytes();
    out.extend_from_slice(&r.since.to_be_bytes());
    out.extend_from_slice(&len16("device", device)?);
    out.extend_from_slice(device);
    out.extend_from_slice(&len16("node", node)?);
    out.extend_from_slice(node);
    out.extend_from_slice(r.platform.as_bytes());
    if r.background {
        out.extend_from_slice(BACKGROUND_MARK);
    }
    Ok(out)
}

/// Reads [`encode_route`]'s bytes back for `user`.
pub(crate) fn decode_route(user: &UserId, bytes: &[u8]) -> Result<Route> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8]> {
        if bytes.len() < n {
            return Err(corrupt(what));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn text<'a>(bytes: &mut &'a [u8], what: &str) -> Result<&'a str> {
        let len = take(bytes, 2, what)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        std::str::from_utf8(take(bytes, len, what)?).map_err(|_| corrupt(what))
    }
    let mut rest = bytes;
    let session = std::str::from_utf8(take(&mut rest, DIGITS, "route session")?)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| corrupt("route session"))?;
    let since = take(&mut rest, 8, "route login time")?;
    let since = i64::from_be_bytes(since.try_into().map_err(|_| corrupt("route login time"))?);
    let device = text(&mut rest, "route device")?;
    let node = text(&mut rest, "route node")?;
    let (rest, background) = match rest.strip_suffix(BACKGROUND_MARK) {
        Some(platform) => (platform, true),
        None => (rest, false),
    };
    let platform = std::str::from_utf8(rest).map_err(|_| corrupt("route platform"))?;
    Ok(Route {
        user: user.clone(),
        device: DeviceId::new(device),
        platform: platform.to_owned(),
        node: node.into(),
        session,
        since,
        background,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bubble_core::NodeId;

    #[test]
    fn digits_sort_like_the_numbers() {
        assert_eq!(digits(0), "00000000000000000000");
        assert_eq!(digits(u64::MAX), "18446744073709551615");
        assert!(digits(9) < digits(10));
        assert!(digits(u64::MAX - 1) < digits(u64::MAX));
    }

    #[test]
    fn a_receipt_round_trips_as_a_duplicate() {
        let r = SendReceipt {
            server_msg_id: MsgId([7; 16]),
            version: u64::MAX,
            seq: 3,
            server_time: -5,
            duplicate: false,
            prev_version: 0,
        };
        let back = decode_receipt(&encode_receipt(&r)).unwrap();
        assert_eq!(
            back,
            SendReceipt {
                duplicate: true,
                prev_version: 0,
                ..r
            }
        );
        assert!(decode_receipt(b"short").is_err());
    }

    #[test]
    fn a_route_round_trips() {
        let r = Route {
            user: UserId::new("ann"),
            device: DeviceId::new("phone{1}"),
            platform: "ios|17".into(),
            node: NodeId::new("node-a"),
            session: 1 << 60,
            since: 1_700_000_000_123,
            background: false,
        };
        let bytes = encode_route(&r).unwrap();
        assert_eq!(&bytes[..DIGITS], digits(1 << 60).as_bytes());
        assert_eq!(decode_route(&r.user, &bytes).unwrap(), r);
        assert!(decode_route(&r.user, &bytes[..30]).is_err());
        let background = Route {
            background: true,
            ..r.clone()
        };
        let bytes = encode_route(&background).unwrap();
        assert_eq!(decode_route(&r.user, &bytes).unwrap(), background);
    }
}
