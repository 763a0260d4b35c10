/**
 * Randomness that hands out fixed values in draw order, so a handshake
 * reproduces the test vectors of docs/auth.md.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { concat, fromHex } from "../../src/bytes.js";
import type { EcdhKeyPair } from "../../src/crypto.js";
import type { HandshakeRandomness } from "../../src/handshake.js";

/** PKCS#8 for a P-256 private key without its public half: the prefix before the 32-byte scalar. */
const P256_PKCS8_PREFIX = fromHex("304102010030130607 2a8648ce3d020106082a8648ce3d030107042730250201010420");

/** A P-256 key pair from a fixed scalar (WebCrypto cannot derive the public point itself). */
export async function ecdhKeyPairFromScalar(scalar: Uint8Array): Promise<EcdhKeyPair> {
  const der = concat(P256_PKCS8_PREFIX, scalar);
  const spki = createPublicKey(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" })).export({ format: "der", type: "spki" });
  const publicPoint = new Uint8Array(spki.subarray(spki.length - 65));
  const privateKey = await crypto.subtle.importKey("pkcs8", der as Uint8Array<ArrayBuffer>, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  return { privateKey, publicPoint };
}

/**
 * Draws are taken from `draws` in order; the ECDH key pair takes one draw
 * as its scalar. `rsaEncrypt` stands in for OAEP with a fixed seed, which
 * WebCrypto cannot take.
 */
export function fixedRandomness(
  draws: Uint8Array[],
  rsaEncrypt: HandshakeRandomness["rsaEncrypt"] = () => Promise.reject(new Error("this test draws no RSA")),
): HandshakeRandomness & { left(): number } {
  const queue = [...draws];
  const next = (n: number): Uint8Array => {
    const value = queue.shift();
    if (!value) throw new Error(`drew ${n} random bytes beyond the fixed values`);
    if (value.length !== n) throw new Error(`drew ${n} random bytes; the next fixed value has ${value.length}`);
    return value;
  };
  return {
    bytes: next,
    ecdhKeyPair: () => ecdhKeyPairFromScalar(next(32)),
    rsaEncrypt,
    left: () => queue.length,
  };
}
