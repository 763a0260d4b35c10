/**
 * What a BubbleClient tells the app, by event name. Inbox entries arrive in
 * version order, without gaps and once each; super-group entries in seq
 * order per group.
 */
import type { BubbleError } from "./errors.js";
import type { ChannelEntry, Conversation, Entry } from "./gen/bubble_pb.js";

export interface BubbleEvents {
  /** A session is up: the first one, or after a reconnect. */
  connected: { resumed: boolean; url: string };
  /** The connection dropped. `willReconnect` is false after close(), a kick, or a refused token. */
  disconnected: { reason: string; willReconnect: boolean };
  /** A new inbox entry: message, recall, delete, read receipt, read cursor or notice. */
  entry: Entry;
  /** A new entry of a super group this user belongs to. */
  channel: ChannelEntry;
  /** A new entry of the app-wide broadcast log (`~broadcast`), from a system push. */
  system: ChannelEntry;
  /** Someone types in a conversation (this user's view of it). */
  typing: { conversation: Conversation; userId: string };
  /** The server ended this session (another login, an admin); no reconnect follows. */
  kick: { reason: string };
  /** The token or handshake was refused; no reconnect follows: connect again with a new token. */
  authFailed: { error: BubbleError };
  /** A product-defined push (command >= 0x8000). */
  business: { command: number; body: Uint8Array };
  /** A catch-up finished (after each connect, and after each gap repair): the cursor is at `version`. */
  synced: { version: bigint };
  /** A gap was found and is being repaired: `after` is the cursor, `prev` what the push said came before it. */
  gap: { kind: "inbox" | "channel"; group: string | undefined; after: bigint; prev: bigint };
  /** Something went wrong in the background and was handled (a failed reconnect, a failed sync). */
  warning: { error: Error };
}
