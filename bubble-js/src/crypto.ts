/**
 * The primitives of auth.md over WebCrypto (browsers, and Node 20's
 * globalThis.crypto): SHA-256, HKDF-SHA256 with 32 bytes of output,
 * AES-256-GCM with a 16-byte tag appended, P-256 ECDH, RSA-OAEP-SHA256.
 */
import { BubbleError } from "./errors.js";
import { concat, utf8 } from "./bytes.js";

/** The platform's WebCrypto, or a clear error where there is none. */
export function webCrypto(): Crypto {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c?.subtle) {
    throw BubbleError.invalid(
      "WebCrypto (globalThis.crypto.subtle) is not available: use Node 20 or later, or a browser page served over https or from localhost",
    );
  }
  return c;
}

function subtle(): SubtleCrypto {
  return webCrypto().subtle;
}

/** WebCrypto wants a BufferSource backed by an ArrayBuffer; copy views of anything else. */
function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** `n` bytes from the platform's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  webCrypto().getRandomValues(out);
  return out;
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", buf(data)));
}

/**
 * HKDF-SHA256 (RFC 5869), 32 bytes out. An empty salt is HKDF's default
 * (32 zero bytes), which WebCrypto applies itself. `info` is ASCII.
 */
export async function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string): Promise<Uint8Array> {
  const key = await subtle().importKey("raw", buf(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt: buf(salt), info: buf(utf8(info)) }, key, 256);
  return new Uint8Array(bits);
}

/** The AES-GCM nonce of a key that seals exactly one message: 12 zero bytes. */
export const ZERO_NONCE = new Uint8Array(12);

async function aesKey(key: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  if (key.length !== 32) throw BubbleError.invalid(`an AES-256 key is 32 bytes; got ${key.length}`);
  return subtle().importKey("raw", buf(key), "AES-GCM", false, [usage]);
}

/** AES-256-GCM: ciphertext || 16-byte tag. */
export async function seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const k = await aesKey(key, "encrypt");
  const out = await subtle().encrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(plaintext));
  return new Uint8Array(out);
}

/** Opens `seal`'s output; throws when the tag does not verify. */
export async function open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  const k = await aesKey(key, "decrypt");
  const out = await subtle().decrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(sealed));
  return new Uint8Array(out);
}

/** A P-256 key pair for one ECDH: the private key and the SEC1 uncompressed public point (65 bytes). */
export interface EcdhKeyPair {
  privateKey: CryptoKey;
  publicPoint: Uint8Array;
}

const P256 = { name: "ECDH", namedCurve: "P-256" } as const;

/** A fresh ephemeral P-256 key pair. */
export async function generateEcdhKeyPair(): Promise<EcdhKeyPair> {
  const pair = (await subtle().generateKey(P256, false, ["deriveBits"])) as CryptoKeyPair;
  const publicPoint = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicPoint };
}

/** A P-256 public point as the peer sent it: only uncompressed points are accepted (auth.md). */
export async function importPeerPoint(point: Uint8Array): Promise<CryptoKey> {
  if (point.length !== 65 || point[0] !== 0x04) {
    throw BubbleError.protocol(`the server's P-256 point is not an uncompressed SEC1 point (65 bytes starting 04)`);
  }
  return subtle().importKey("raw", buf(point), P256, false, []);
}

/** The ECDH shared secret: the 32-byte x-coordinate of d*Q. */
export async function ecdhSharedX(privateKey: CryptoKey, peer: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle().deriveBits({ name: "ECDH", public: peer }, privateKey, 256));
}

/** RSA-OAEP with SHA-256 as the hash and the MGF1 hash, empty label. */
export async function rsaOaepEncrypt(publicKey: CryptoKey, plaintext: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().encrypt({ name: "RSA-OAEP" }, publicKey, buf(plaintext)));
}

/** The DER bytes inside a PEM block with this label. */
export function pemToDer(pem: string, label: string): Uint8Array {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!match) throw BubbleError.invalid(`not a PEM "${label}" block: expected -----BEGIN ${label}-----`);
  const b64 = match[1]!.replace(/\s+/g, "");
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Joins byte strings (re-exported for the handshake's layouts). */
export { concat };
