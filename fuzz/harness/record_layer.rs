//! Harness of the `record_layer` fuzz target: one direction of a session
//! (a sealer and its opener), and a wire between them that the input
//! controls: records are sealed, then delivered in order, out of order,
//! twice, truncated, with a bit flipped, sealed under another key, or
//! replaced by arbitrary bytes.
//!
//! The oracle: the opener accepts a delivery exactly when its bytes are
//! those of the next record the sealer produced, gives back that record's
//! plain frame, and after its first refusal refuses everything. Anything
//! else (a forged, replayed or reordered record opened, a panic) is a bug.
//!
//! Shared, through `#[path]`, by `fuzz/fuzz_targets/record_layer.rs` and
//! the replay of `fuzz/regressions/record_layer/` in bubble-proto's tests.

use std::sync::atomic::{AtomicU64, Ordering};

use bubble_proto::secure::RecordError;
use bubble_proto::secure::fuzzing::record_pair;
use bubble_proto::{Command, Frame, flags};
use bytes::Bytes;

/// Bodies stay small: the record layer treats every length alike, and the
/// frame decoder's limits are another target's.
const MAX_BODY: usize = 1 << 16;

/// Reads the input front to back; an exhausted input reads as zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let n = len.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }

    /// A plain frame as an application would send it: any command, seq
    /// and body; only the response flag (sealing adds the encrypted one).
    fn plain_frame(&mut self) -> Frame {
        let flags = self.u8() & flags::RESPONSE;
        let command = Command::from_wire(self.u16());
        let seq = self.u32();
        let len = usize::from(self.u8());
        Frame {
            flags,
            command,
            seq,
            body: Bytes::from(self.bytes(len)),
        }
    }
}

/// Runs one input; panics on a violation of the record layer's contract.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    // A fresh key per run, as every session has its own. With a fixed key
    // the fuzzer replayed a record sealed in an earlier run (it learns the
    // bytes the harness compares), which the opener rightly accepts: the
    // same key at the same counter. No session ever shares a key.
    let (mut sealer, mut opener) = record_pair(&fresh_key());
    // The wrong key: a record an attacker sealed, or another session's.
    let (mut foreign, _) = record_pair(&fresh_key());

    // What the sealer produced, in order: the plain frame and its wire bytes.
    let mut sent: Vec<(Frame, Bytes)> = Vec::new();
    // How many records the opener has accepted, and whether it refused one.
    let mut opened = 0usize;
    let mut failed = false;

    while !input.is_empty() {
        let delivery: Bytes = match input.u8() % 7 {
            0 => {
                let plain = input.plain_frame();
                let sealed = sealer.seal(&plain).expect("a small frame seals");
                assert_eq!(sealed.flags, plain.flags | flags::ENCRYPTED);
                sent.push((plain, sealed.to_bytes()));
                continue;
            }
            // The next record, unchanged: the ordinary case.
            1 => match sent.get(opened) {
                Some((_, wire)) => wire.clone(),
                None => continue,
            },
            // Any record so far, unchanged: a replay or a reordering.
            2 => match pick(&sent, input.u16()) {
                Some(wire) => wire,
                None => continue,
            },
            // A record with one bit flipped, header or body.
            3 => match pick(&sent, input.u16()) {
                Some(wire) => {
                    let mut bytes = wire.to_vec();
                    let at = usize::from(input.u16()) % bytes.len();
                    bytes[at] ^= 1 << (input.u8() % 8);
                    Bytes::from(bytes)
                }
                None => continue,
            },
            // A record cut short, its header's length made to match.
            4 => match pick(&sent, input.u16()) {
                Some(wire) => {
                    let frame = Frame::parse_exact(&wire, MAX_BODY).expect("sealed frames parse");
                    let keep = usize::from(input.u16()) % (frame.body.len() + 1);
                    Frame {
                        body: frame.body.slice(..keep),
                        ..frame
                    }
                    .to_bytes()
                }
                None => continue,
            },
            // A record sealed under another key, at any counter.
            5 => {
                let plain = input.plain_frame();
                foreign
                    .seal(&plain)
                    .expect("a small frame seals")
                    .to_bytes()
            }
            // Arbitrary bytes as a frame (a plaintext frame among them).
            _ => {
                let len = usize::from(input.u8());
                Bytes::from(input.bytes(len))
            }
        };
        let Ok(frame) = Frame::parse_exact(&delivery, MAX_BODY) else {
            continue; // The frame decoder's business: the connection closes there.
        };
        let expected = sent.get(opened).filter(|_| !failed);
        match (opener.open(&frame), expected) {
            (Ok(plain), Some((original, wire))) => {
                assert_eq!(
                    &delivery, wire,
                    "the opener accepted record #{opened} but it is not the one sealed"
                );
                assert_eq!(&plain, original, "record #{opened} opened to other content");
                opened += 1;
            }
            (Ok(plain), None) => {
                panic!("the opener accepted a record nothing sealed for it: {plain:?}")
            }
            (Err(e), expected) => {
                if failed {
                    assert_eq!(e, RecordError::Closed, "a failed opener stays closed");
                } else if let Some((_, wire)) = expected {
                    assert_ne!(
                        &delivery, wire,
                        "the opener refused record #{opened} as it was sealed: {e}"
                    );
                }
                failed = true;
            }
        }
        assert_eq!(opener.counter(), opened as u64);
    }
}

/// A key no earlier run of this process used.
fn fresh_key() -> [u8; 32] {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let mut key = [0x11; 32];
    key[..8].copy_from_slice(&RUNS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    key
}

/// The wire bytes of one of the records sealed so far, if any.
fn pick(sent: &[(Frame, Bytes)], choice: u16) -> Option<Bytes> {
    if sent.is_empty() {
        return None;
    }
    Some(sent[usize::from(choice) % sent.len()].1.clone())
}

/// Inputs of real shape: records sealed and delivered in order, then with
/// each kind of damage, so the fuzzer starts past the easy refusals.
pub fn seeds() -> Vec<Vec<u8>> {
    // op 0: seal (flags, command u16, seq u32, length, body).
    let seal = |command: u16, seq: u32, body: &[u8]| {
        let mut op = vec![0, 0];
        op.extend_from_slice(&command.to_be_bytes());
        op.extend_from_slice(&seq.to_be_bytes());
        op.push(body.len() as u8);
        op.extend_from_slice(body);
        op
    };
    let send = Command::Send.code();
    let ping = Command::Ping.code();
    let three: Vec<u8> = [
        seal(send, 1, b"\x0a\x05hello"),
        seal(ping, 2, b""),
        seal(send, 3, &[0x42; 40]),
    ]
    .concat();
    let mut seeds = Vec::new();
    let mut in_order = three.clone();
    in_order.extend_from_slice(&[1, 1, 1]);
    seeds.push(in_order);
    for damage in [
        vec![1, 2, 0, 0],        // a replay of the first record
        vec![2, 0, 2],           // the third record first
        vec![3, 0, 1, 0, 20, 3], // a bit flipped in the second body
        vec![4, 0, 2, 0, 7],     // the third record cut short
    ] {
        let mut s = three.clone();
        s.push(1);
        s.extend_from_slice(&damage);
        seeds.push(s);
    }
    let mut foreign = seal(send, 1, b"ok");
    foreign.extend_from_slice(&[5, 0, 0, 5, 0, 0, 0, 1, 2, b'o', b'k']);
    seeds.push(foreign);
    seeds
}
