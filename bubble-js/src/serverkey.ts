/**
 * The pinned server key of auth.md "The server's RSA key": the client carries
 * the server's public key (SPKI PEM) and its SHA-256 fingerprint and refuses
 * to start when they disagree. There is no certificate chain: the pin is the
 * trust.
 */
import { equalBytes, fromHex, toHex } from "./bytes.js";
import { pemToDer, sha256, webCrypto } from "./crypto.js";
import { BubbleError } from "./errors.js";

export interface PinnedServerKey {
  /** The RSA-OAEP-SHA256 public key to seal hellos to. */
  publicKey: CryptoKey;
  /** SHA-256 of the SubjectPublicKeyInfo DER. */
  fingerprint: Uint8Array;
  /** The fingerprint's first 8 bytes: names the key in the hello. */
  keyId: Uint8Array;
  /** The modulus length in bytes (256, 384 or 512): the RSA block's size. */
  modulusBytes: number;
}

/**
 * Loads `pem` and checks it against `fingerprintHex` (64 hex digits; colons
 * and spaces are ignored, so `openssl` and `sha256sum` output both work).
 */
export async function pinServerKey(pem: string, fingerprintHex: string): Promise<PinnedServerKey> {
  const der = pemToDer(pem, "PUBLIC KEY");
  const expected = fingerprintHex.replace(/[\s:]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw BubbleError.invalid(`the server key fingerprint must be 64 hex digits (SHA-256 of the key's SPKI DER); got "${fingerprintHex}"`);
  }
  const fingerprint = await sha256(der);
  if (!equalBytes(fingerprint, fromHex(expected))) {
    throw BubbleError.invalid(
      `the server key does not match its pin: the PEM's fingerprint is ${toHex(fingerprint)}, the pin is ${expected}; ship the key and fingerprint the server prints (GET /v1/server-key)`,
    );
  }
  let publicKey: CryptoKey;
  try {
    publicKey = await webCrypto().subtle.importKey("spki", der as Uint8Array<ArrayBuffer>, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  } catch (cause) {
    throw BubbleError.invalid(`the pinned server key is not an RSA public key WebCrypto can use (${String(cause)}): pin the PEM of GET /v1/server-key`);
  }
  const modulusBits = (publicKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
  if (![2048, 3072, 4096].includes(modulusBits)) {
    throw BubbleError.invalid(`the server key is ${modulusBits} bits; bubble uses 2048 to 4096-bit keys of whole bytes (256, 384 or 512)`);
  }
  return { publicKey, fingerprint, keyId: fingerprint.slice(0, 8), modulusBytes: modulusBits / 8 };
}
