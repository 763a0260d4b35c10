/**
 * bubble-js: the browser and Node client SDK of bubble.
 *
 * Start with BubbleClient; the lower layers (frame, handshake, records) are
 * exported for tools and tests that speak the protocol themselves.
 */
export { BubbleClient, newClientMsgId, SDK_VERSION, type BubbleClientOptions, type SendOptions, type SettingsChange } from "./client.js";
export type { BubbleEvents } from "./events.js";
export { BubbleError, ErrorCode } from "./errors.js";
export { MemoryCursorStore, WebStorageCursorStore, type Cursor, type CursorStore, type StorageLike } from "./cursor.js";
export {
  conversationKey,
  customOf,
  direct,
  group,
  jsonContent,
  mediaContent,
  mediaOf,
  superGroup,
  systemConversation,
  textContent,
  textOf,
  voiceContent,
  voiceOf,
} from "./content.js";
export { BROADCAST_GROUP } from "./inbox.js";
export { Command, BUSINESS_COMMAND_MIN, commandName, isBusinessCommand } from "./commands.js";
export { decodeFrame, decodeHeader, encodeFrame, encodeHeader, FLAG_ENCRYPTED, FLAG_RESPONSE, FrameError, HEADER_LEN, type Frame } from "./frame.js";
export { finishHandshake, maxTokenBytes, startFullHandshake, startResumption, type ClientMeta, type ResumeTicket, type SessionKeys } from "./handshake.js";
export { RecordChannel, RecordError, openRecord, sealRecord } from "./records.js";
export { pinServerKey, type PinnedServerKey } from "./serverkey.js";
export { askSelector, type GateChoice, type FetchLike } from "./selector.js";
export { backoffDelay, type BackoffPolicy } from "./backoff.js";
export { cursorAfterOwnSend, decideChannelNotify, decideInboxPush, decideOwnChannelSend, type PushDecision } from "./ordering.js";
export type { WebSocketConstructor, WebSocketLike } from "./transport.js";
export * from "./gen/bubble_pb.js";
