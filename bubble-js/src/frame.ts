/**
 * The frame of docs/protocol.md section 2: a fixed 14-byte big-endian header
 * (magic B0 BB, version 1, flags, command, seq, body length) and the body.
 * On WebSocket one binary message carries exactly one frame.
 */

/** Header length in bytes. */
export const HEADER_LEN = 14;
/** The two magic bytes every frame starts with. */
export const MAGIC = 0xb0bb;
/** The protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;
/** Flag bit 0: the body is a sealed record (auth.md "Records"). */
export const FLAG_ENCRYPTED = 0x01;
/** Flag bit 1: this frame answers the request with the same seq. */
export const FLAG_RESPONSE = 0x02;
/** The server's default body limit (gate.max_frame_bytes, 1 MiB). */
export const DEFAULT_MAX_BODY = 1024 * 1024;

export interface FrameHeader {
  flags: number;
  command: number;
  seq: number;
  bodyLength: number;
}

export interface Frame {
  flags: number;
  command: number;
  /** Chosen by the requester, echoed by the answer; 0 on server pushes. */
  seq: number;
  body: Uint8Array;
}

/** Why bytes are not a frame; the connection that carried them is unusable. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** The 14 header bytes for these fields. */
export function encodeHeader(header: FrameHeader): Uint8Array {
  const { flags, command, seq, bodyLength } = header;
  if ((flags & ~(FLAG_ENCRYPTED | FLAG_RESPONSE)) !== 0) {
    throw new FrameError(`flags 0x${flags.toString(16)} set bits other than ENCRYPTED and RESPONSE`);
  }
  checkRange(command, 0xffff, "command");
  checkRange(seq, 0xffffffff, "seq");
  checkRange(bodyLength, 0xffffffff, "body length");
  const out = new Uint8Array(HEADER_LEN);
  const view = new DataView(out.buffer);
  view.setUint16(0, MAGIC);
  view.setUint8(2, PROTOCOL_VERSION);
  view.setUint8(3, flags);
  view.setUint16(4, command);
  view.setUint32(6, seq);
  view.setUint32(10, bodyLength);
  return out;
}

/** One frame as bytes: its header, then its body. */
export function encodeFrame(frame: Frame): Uint8Array<ArrayBuffer> {
  const header = encodeHeader({ ...frame, bodyLength: frame.body.length });
  const out = new Uint8Array(HEADER_LEN + frame.body.length);
  out.set(header, 0);
  out.set(frame.body, HEADER_LEN);
  return out;
}

/**
 * Reads a header, checking what can be checked before the body: magic,
 * version, flag bits and the body limit.
 */
export function decodeHeader(bytes: Uint8Array, maxBody = DEFAULT_MAX_BODY): FrameHeader {
  if (bytes.length < HEADER_LEN) {
    throw new FrameError(`a frame header is ${HEADER_LEN} bytes; got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LEN);
  const magic = view.getUint16(0);
  if (magic !== MAGIC) {
    throw new FrameError(`bad magic 0x${magic.toString(16)}: the peer is not a bubble server`);
  }
  const version = view.getUint8(2);
  if (version !== PROTOCOL_VERSION) {
    throw new FrameError(`protocol version ${version}; this SDK speaks version ${PROTOCOL_VERSION}`);
  }
  const flags = view.getUint8(3);
  if ((flags & ~(FLAG_ENCRYPTED | FLAG_RESPONSE)) !== 0) {
    throw new FrameError(`unknown flag bits in 0x${flags.toString(16)}`);
  }
  const bodyLength = view.getUint32(10);
  if (bodyLength > maxBody) {
    throw new FrameError(`body of ${bodyLength} bytes is over the limit of ${maxBody}`);
  }
  return { flags, command: view.getUint16(4), seq: view.getUint32(6), bodyLength };
}

/**
 * Reads exactly one frame (a WebSocket message): the header's length must
 * match the bytes that follow it.
 */
export function decodeFrame(bytes: Uint8Array, maxBody = DEFAULT_MAX_BODY): Frame {
  const header = decodeHeader(bytes, maxBody);
  const actual = bytes.length - HEADER_LEN;
  if (actual !== header.bodyLength) {
    throw new FrameError(`the header says ${header.bodyLength} body bytes but ${actual} follow: not exactly one frame`);
  }
  return {
    flags: header.flags,
    command: header.command,
    seq: header.seq,
    body: bytes.slice(HEADER_LEN),
  };
}

function checkRange(value: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new FrameError(`${field} ${value} is out of range 0..${max}`);
  }
}
