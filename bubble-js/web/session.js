/**
 * Signing in: the server key to pin, a token (the development app's demo
 * token for a user name, or one pasted from an app's backend), and the
 * BubbleClient of this tab. Everything comes from the server that served
 * this page, so the page works on whatever address it was opened at.
 */
import { BubbleClient, WebStorageCursorStore } from "./bubble.js";

/** Thrown when the server issues no demo tokens; the page then asks for a token. */
export class NoDemoApp extends Error {}

/** A JSON request to this page's server; a refusal throws with the server's message. */
async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`the server at ${location.origin} did not answer ${path} (${error.message}); is bubble-server running?`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = answer.error?.message ?? `${path} answered ${response.status}`;
    throw response.status === 404 && path === "/v1/demo/token" ? new NoDemoApp(message) : new Error(message);
  }
  return answer;
}

/**
 * The server key to pin. The page itself came from this server, so asking
 * it for its key trusts nothing the page did not already trust; an app
 * served elsewhere ships its pin instead (bubble-js README).
 */
export async function serverKey() {
  const key = await api("GET", "/v1/server-key");
  return { pem: key.pem, fingerprint: key.fingerprint_sha256 };
}

/** A token of the development app for `user`: `{ app, token }`. */
export async function demoToken(user) {
  const answer = await api("POST", "/v1/demo/token", { user });
  return { app: answer.app, token: answer.token };
}

/**
 * This tab's device id. The server ends an older session of the same
 * device when a new one signs in, so each tab has its own (kept in
 * sessionStorage: a reload stays the same device).
 */
export function tabDevice() {
  const key = "bubble.device";
  let device = sessionStorage.getItem(key);
  if (!device) {
    const bytes = crypto.getRandomValues(new Uint8Array(5));
    device = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem(key, device);
  }
  return device;
}

/** The client of `user` in this tab, not yet connected. */
export function createClient({ app, user, token, key }) {
  const device = tabDevice();
  return new BubbleClient({
    selectors: [location.origin],
    serverKey: key,
    app,
    device,
    token,
    platform: "web",
    clientVersion: "bubble-web-chat/0.1",
    // A reload of the tab syncs on from where it was.
    cursorStore: new WebStorageCursorStore(sessionStorage, `bubble.cursor.${app}.${user}.${device}`),
    // Come back quickly after the network returns.
    reconnect: { minDelayMs: 200, maxDelayMs: 5000 },
  });
}

/** The user id a token is for, read from its payload (v1 and v2 formats of docs/auth.md). */
export function userOfToken(token) {
  const [format, payload = ""] = token.trim().split(".");
  const bytes = Uint8Array.from(atob(payload.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  if (format === "v1") return JSON.parse(new TextDecoder().decode(bytes)).u;
  if (format === "v2") return new TextDecoder().decode(bytes.subarray(1, 1 + bytes[0]));
  throw new Error(`a token starts with v1. or v2. (docs/auth.md); this one starts with ${format}.`);
}
