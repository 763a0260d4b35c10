/**
 * RSAES-OAEP encryption (RFC 8017 7.1.1) with SHA-256 and MGF1-SHA-256 and
 * an injected seed, in plain BigInt arithmetic: WebCrypto draws the seed
 * itself, so this is how the tests reproduce the vector's RSA block byte
 * for byte. Test-only: not constant time, and it needs no secret.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { concat, u32 } from "../../src/bytes.js";

const H_LEN = 32;

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function mgf1(seed: Uint8Array, length: number): Uint8Array {
  const out: Uint8Array[] = [];
  for (let counter = 0; out.length * H_LEN < length; counter++) out.push(sha256(concat(seed, u32(counter))));
  return concat(...out).subarray(0, length);
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((byte, i) => byte ^ b[i]!);
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + Buffer.from(bytes).toString("hex"));
}

function fromBigInt(value: bigint, length: number): Uint8Array {
  return new Uint8Array(Buffer.from(value.toString(16).padStart(length * 2, "0"), "hex"));
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  base %= modulus;
  for (; exponent > 0n; exponent >>= 1n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
  }
  return result;
}

/** RSA-OAEP-SHA256 of `message` to `publicKey` with the given 32-byte `seed`. */
export function oaepEncryptWithSeed(publicKey: KeyObject | string, message: Uint8Array, seed: Uint8Array): Uint8Array {
  const jwk = createPublicKey(publicKey).export({ format: "jwk" });
  const n = toBigInt(Buffer.from(jwk.n!, "base64url"));
  const e = toBigInt(Buffer.from(jwk.e!, "base64url"));
  const k = Buffer.from(jwk.n!, "base64url").length;
  if (message.length > k - 2 * H_LEN - 2) throw new Error(`message of ${message.length} bytes is too long for OAEP with a ${k}-byte modulus`);
  const db = concat(sha256(new Uint8Array(0)), new Uint8Array(k - message.length - 2 * H_LEN - 2), new Uint8Array([1]), message);
  const maskedDb = xor(db, mgf1(seed, k - H_LEN - 1));
  const maskedSeed = xor(seed, mgf1(maskedDb, H_LEN));
  const em = concat(new Uint8Array([0]), maskedSeed, maskedDb);
  return fromBigInt(modPow(toBigInt(em), e, n), k);
}
