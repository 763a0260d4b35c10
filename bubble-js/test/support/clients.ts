/**
 * BubbleClients for the integration tests: Node 20 has no global WebSocket,
 * so they get the `ws` package's; they find the gate through the selector,
 * like an app would, and every event they emit is recorded.
 */
import { WebSocket } from "ws";

import { BubbleClient, type BubbleClientOptions } from "../../src/client.js";
import type { CursorStore } from "../../src/cursor.js";
import { Recorder } from "./recorder.js";
import type { TestServer } from "./server.js";
import { within } from "./wait.js";

export interface TestClient {
  client: BubbleClient;
  events: Recorder;
  user: string;
}

/** Short timeouts and backoff so a test notices a reconnect in well under a second. */
export function clientOptions(server: TestServer, user: string, token: string, overrides: Partial<BubbleClientOptions> = {}): BubbleClientOptions {
  return {
    selectors: [server.httpUrl],
    serverKey: server.serverKey,
    app: "demo",
    device: `${user}-device`,
    token,
    platform: "node-test",
    WebSocket,
    requestTimeoutMs: 5000,
    reconnect: { minDelayMs: 50, maxDelayMs: 500 },
    ...overrides,
  };
}

/** A connected client for `user`, its first catch-up sync done. */
export async function connectClient(
  server: TestServer,
  user: string,
  options: { device?: string; cursorStore?: CursorStore; overrides?: Partial<BubbleClientOptions> } = {},
): Promise<TestClient> {
  const token = await server.token(user);
  const overrides: Partial<BubbleClientOptions> = { ...options.overrides };
  if (options.device) overrides.device = options.device;
  if (options.cursorStore) overrides.cursorStore = options.cursorStore;
  const client = new BubbleClient(clientOptions(server, user, token, overrides));
  const events = new Recorder(user, client);
  await within(client.connect(), 15_000, `${user} to connect`, () => events.describe());
  await events.untilCount("synced", 1, 15_000);
  return { client, events, user };
}
