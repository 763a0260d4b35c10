/**
 * The record layer of auth.md "Records": after the handshake every frame in
 * both directions is AES-256-GCM sealed under its direction's key, with the
 * nonce `00 00 00 00 | u64 counter` (records sent before in that direction)
 * and the 14 header bytes as sent (ENCRYPTED set, length = plain + 16) as
 * associated data. A record that fails to open ends the channel for good:
 * the counter is implied, so a dropped or reordered record is detected.
 */
import { concat, u64 } from "./bytes.js";
import { open, seal } from "./crypto.js";
import { encodeHeader, FLAG_ENCRYPTED, type Frame } from "./frame.js";

/** The AES-GCM tag length added to every record. */
export const TAG_LEN = 16;

/** The nonce of record number `counter`. */
export function recordNonce(counter: bigint): Uint8Array {
  return concat(new Uint8Array(4), u64(counter));
}

/** Seals `frame` (plain body) as record number `counter`: the returned frame carries the sealed body. */
export async function sealRecord(key: Uint8Array, counter: bigint, frame: Frame): Promise<Frame> {
  const flags = frame.flags | FLAG_ENCRYPTED;
  const header = encodeHeader({ flags, command: frame.command, seq: frame.seq, bodyLength: frame.body.length + TAG_LEN });
  const body = await seal(key, recordNonce(counter), header, frame.body);
  return { flags, command: frame.command, seq: frame.seq, body };
}

/** Opens record number `counter`; throws when it was not sealed as that record under `key`. */
export async function openRecord(key: Uint8Array, counter: bigint, frame: Frame): Promise<Frame> {
  if ((frame.flags & FLAG_ENCRYPTED) === 0) {
    throw new RecordError(`a plaintext ${frame.command} frame arrived after the handshake: every frame must be a record`);
  }
  if (frame.body.length < TAG_LEN) {
    throw new RecordError(`a record of ${frame.body.length} bytes is shorter than its tag`);
  }
  const header = encodeHeader({ flags: frame.flags, command: frame.command, seq: frame.seq, bodyLength: frame.body.length });
  let body: Uint8Array;
  try {
    body = await open(key, recordNonce(counter), header, frame.body);
  } catch (cause) {
    throw new RecordError(`record ${counter} does not open (forged, replayed, reordered or from another session)`, { cause });
  }
  return { flags: frame.flags & ~FLAG_ENCRYPTED, command: frame.command, seq: frame.seq, body };
}

/** A record that cannot be opened: the connection must close. */
export class RecordError extends Error {
  override name = "RecordError";
}

/**
 * One session's two directions with their counters. Seals and opens must
 * each be called in wire order (the caller serializes them); a failure to
 * open poisons the channel.
 */
export class RecordChannel {
  private sent = 0n;
  private received = 0n;
  private broken: RecordError | undefined;

  constructor(
    private readonly sendKey: Uint8Array,
    private readonly receiveKey: Uint8Array,
  ) {}

  /** Seals the next outgoing record. Call in the order the records go on the wire. */
  async seal(frame: Frame): Promise<Frame> {
    const counter = this.sent++;
    return sealRecord(this.sendKey, counter, frame);
  }

  /** Opens the next incoming record. Call in the order the records came off the wire. */
  async open(frame: Frame): Promise<Frame> {
    if (this.broken) throw this.broken;
    const counter = this.received++;
    try {
      return await openRecord(this.receiveKey, counter, frame);
    } catch (e) {
      this.broken = e instanceof RecordError ? e : new RecordError(String(e));
      throw this.broken;
    }
  }
}
