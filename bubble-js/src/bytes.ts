/**
 * Byte helpers shared by the wire modules: big-endian integers, hex, UTF-8
 * and concatenation. Everything on bubble's wire is big-endian (protocol.md
 * section 2, auth.md "Conventions").
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** `bytes` read as UTF-8; throws on invalid UTF-8 rather than guessing. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The bytes a hex string spells (spaces allowed between digits). */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new TypeError(`not a hex string: ${hex.slice(0, 40)}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `parts` one after another in one new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `value` as 2 big-endian bytes. */
export function u16(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${value} does not fit a u16`);
  }
  return new Uint8Array([value >>> 8, value & 0xff]);
}

/** `value` as 4 big-endian bytes. */
export function u32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${value} does not fit a u32`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** `value` as 8 big-endian bytes. */
export function u64(value: bigint): Uint8Array {
  if (value < 0n || value > 0xffffffffffffffffn) {
    throw new RangeError(`${value} does not fit a u64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}

/** A `str8`: one length byte, then that many bytes of UTF-8 (auth.md). */
export function str8(text: string): Uint8Array {
  const bytes = utf8(text);
  if (bytes.length > 255) {
    throw new RangeError(`"${text.slice(0, 20)}…" is ${bytes.length} bytes of UTF-8; a str8 holds at most 255`);
  }
  return concat(new Uint8Array([bytes.length]), bytes);
}

/** Whether two byte arrays hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Reads a byte string front to back, refusing to read past its end: the
 * parsers of the handshake answer and the frame header use it so that a
 * truncated input is an error with a name, not a wrong value.
 */
export class Reader {
  private at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  /** How many bytes are left. */
  get remaining(): number {
    return this.bytes.length - this.at;
  }

  /** The next `n` bytes. */
  take(n: number, field: string): Uint8Array {
    if (n > this.remaining) {
      throw new RangeError(`${this.what} is truncated: ${field} needs ${n} bytes, ${this.remaining} left`);
    }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  u8(field: string): number {
    return this.take(1, field)[0]!;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return (b[0]! << 8) | b[1]!;
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  /** Everything not read yet. */
  rest(): Uint8Array {
    return this.take(this.remaining, "the rest");
  }

  /** Throws when bytes are left over: trailing bytes are an error on this wire. */
  end(): void {
    if (this.remaining !== 0) {
      throw new RangeError(`${this.what} has ${this.remaining} trailing bytes`);
    }
  }
}
