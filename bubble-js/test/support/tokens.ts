/**
 * The default token format of docs/auth.md "Tokens", issued the way an app
 * backend in another language would (HMAC-SHA256 and base64url). Test-only:
 * an app secret never belongs in a client.
 */
import { concat, u32, utf8 } from "../../src/bytes.js";

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

/** The v2 payload bytes: user, expiry, devices. */
export function v2Payload(user: string, expirySecs: number, devices: string[] = []): Uint8Array {
  const u = utf8(user);
  const parts = [new Uint8Array([u.length]), u, u32(expirySecs), new Uint8Array([devices.length])];
  for (const d of devices) {
    const b = utf8(d);
    parts.push(new Uint8Array([b.length]), b);
  }
  return concat(...parts);
}

/** A v2 token: "v2." payload "." first 16 bytes of HMAC(secret, len(app) | app | "v2." payload). */
export async function issueV2(secret: Uint8Array, app: string, user: string, expirySecs: number, devices: string[] = []): Promise<string> {
  const signed = "v2." + base64url(v2Payload(user, expirySecs, devices));
  const a = utf8(app);
  const mac = await hmacSha256(secret, concat(new Uint8Array([a.length]), a, utf8(signed)));
  return `${signed}.${base64url(mac.subarray(0, 16))}`;
}

/** A v1 token: "v1." base64url(JSON) "." HMAC(secret, "v1." payload). */
export async function issueV1(secret: Uint8Array, json: string): Promise<string> {
  const signed = "v1." + base64url(utf8(json));
  return `${signed}.${base64url(await hmacSha256(secret, utf8(signed)))}`;
}
