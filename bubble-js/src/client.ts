/**
 * BubbleClient: one device's session with a bubble server, kept up by
 * itself. It connects (through the selector or to a gate URL), handshakes
 * with the pinned server key, resumes with tickets, reconnects with backoff
 * and jitter, syncs on every connect, repairs gaps, retries unacknowledged
 * sends with the same client_msg_id, and offers every request of
 * docs/protocol.md as a typed method.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

import { backoffDelay, type BackoffPolicy } from "./backoff.js";
import { toHex } from "./bytes.js";
import { Command, commandName, isBusinessCommand } from "./commands.js";
import { Connection, decodeError } from "./connection.js";
import { conversationKey, textContent } from "./content.js";
import { MemoryCursorStore, type Cursor, type CursorStore } from "./cursor.js";
import { BubbleError, ErrorCode } from "./errors.js";
import { Emitter } from "./emitter.js";
import type { BubbleEvents } from "./events.js";
import { DEFAULT_MAX_BODY, type Frame } from "./frame.js";
import {
  BlockedListSchema,
  BlockedRequestSchema,
  ChannelPageSchema,
  ChannelPullRequestSchema,
  ConversationKind,
  ConversationListSchema,
  ConversationsRequestSchema,
  DeleteRequestSchema,
  EditRequestSchema,
  GroupCreateRequestSchema,
  GroupDismissRequestSchema,
  GroupInfoSchema,
  GroupListSchema,
  GroupMembersChangeRequestSchema,
  GroupMuteRequestSchema,
  GroupRoleRequestSchema,
  GroupsRequestSchema,
  GroupTransferRequestSchema,
  GroupUpdateRequestSchema,
  GroupJoinRequestSchema,
  GroupLeaveRequestSchema,
  GroupMembersRequestSchema,
  GroupMembersSchema,
  HistoryPageSchema,
  HistoryRequestSchema,
  KickSchema,
  MemberRole,
  MarkReadAckSchema,
  MarkReadRequestSchema,
  OkSchema,
  PingSchema,
  PongSchema,
  PresenceQuerySchema,
  PresenceResultSchema,
  ReactRequestSchema,
  ReadStateRequestSchema,
  ReadStateSchema,
  RecallRequestSchema,
  SearchRequestSchema,
  SearchResultsSchema,
  SendAckSchema,
  SendRequestSchema,
  SettingsAckSchema,
  SettingsRequestSchema,
  SyncPageSchema,
  SyncRequestSchema,
  TypingSchema,
  UnreadCountsSchema,
  UnreadRequestSchema,
  AppStateRequestSchema,
  MediaUploadRequestSchema,
  MediaUploadTicketSchema,
  PushRegisterRequestSchema,
  PushUnregisterRequestSchema,
  type ChannelPage,
  type MediaUploadTicket,
  type Content,
  type Conversation,
  type ConversationList,
  type GroupInfo,
  type GroupMembers,
  type HistoryPage,
  type Member,
  type ReadState,
  type SearchResults,
  type SendAck,
  type SendRequest,
  type SettingsAck,
  type SyncPage,
  type UnreadCount,
  type UserPresence,
} from "./gen/bubble_pb.js";
import { platformRandomness, startFullHandshake, startResumption, ticketUsable, type ClientMeta, type ResumeTicket } from "./handshake.js";
import { Inbox } from "./inbox.js";
import { pickGate, type FetchLike } from "./selector.js";
import { pinServerKey, type PinnedServerKey } from "./serverkey.js";
import { resolveWebSocket, type WebSocketConstructor } from "./transport.js";

/** The version this SDK reports in its hello. */
export const SDK_VERSION = "0.1.0";

export interface BubbleClientOptions {
  /** A gate's WebSocket URL, e.g. "ws://127.0.0.1:7701/". Give this or `selectors`. */
  url?: string;
  /**
   * Selector base URLs (the server's HTTP address, e.g. "http://127.0.0.1:7780"):
   * `GET /v1/gate` is asked on every (re)connect, the URLs in turn.
   */
  selectors?: string[];
  /** The server's public key (SPKI PEM) and its SHA-256 fingerprint (hex): the pin. */
  serverKey: { pem: string; fingerprint: string };
  /** The app id. */
  app: string;
  /** This device's id (stable across app restarts). */
  device: string;
  /** The user's token, or a function that returns a fresh one (called before each full handshake). */
  token: string | (() => string | Promise<string>);
  /** "web" unless given. */
  platform?: string;
  /** Reported in the hello; the SDK's version unless given. */
  clientVersion?: string;
  /** The WebSocket constructor; the global one unless given (Node 20: pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** The fetch used for the selector; the global one unless given. */
  fetch?: FetchLike;
  /** Where the cursor is kept; in memory unless given. */
  cursorStore?: CursorStore;
  /** How long a request waits for its answer (default 10 s). */
  requestTimeoutMs?: number;
  /** How often to ping (default 20 s; the server's heartbeat timeout is 90 s). */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff: first ceiling and largest ceiling (default 200 ms and 10 s). */
  reconnect?: Partial<BackoffPolicy>;
  /** How long `send` keeps retrying a retryable failure, reconnects included (default 60 s). */
  sendRetryForMs?: number;
  /** Entries per sync or pull page (default 200). */
  syncPageSize?: number;
  /** Largest frame body accepted (default 1 MiB, the server's default). */
  maxFrameBytes?: number;
  /** For tests: return true to drop an incoming frame (after its record is opened) as if it never came. */
  testHooks?: { dropInbound?: (frame: Frame) => boolean };
}

/** Options of one send. */
export interface SendOptions {
  /** Reuse to resend a message after an app restart; a fresh random id otherwise. */
  clientMsgId?: string;
  /** The sender's per-conversation counter; the SDK counts per conversation otherwise. */
  clientSeq?: bigint;
  /** The server_msg_id of the message this one answers, in the same conversation (protocol.md 4.1a). */
  replyTo?: Uint8Array;
  /** Groups: members mentioned (at most 50). */
  mentions?: string[];
  /** Groups: everyone mentioned (the owner and admins only). */
  mentionAll?: boolean;
}

/** Changes to one's settings of a conversation; what is left out keeps its value (protocol.md 4.6c). */
export interface SettingsChange {
  pinned?: boolean;
  muted?: boolean;
  archived?: boolean;
  draft?: string;
  /** DIRECT only: refuse the peer's 1:1 messages. */
  blocked?: boolean;
}

type State = "idle" | "connecting" | "connected" | "reconnecting" | "closed";

/** Why the client stopped for good (close, kick, refused token). */
interface Stopped {
  error: BubbleError;
}

export class BubbleClient {
  private readonly options: Required<Pick<BubbleClientOptions, "requestTimeoutMs" | "heartbeatIntervalMs" | "sendRetryForMs" | "syncPageSize" | "maxFrameBytes">> & {
    backoff: BackoffPolicy;
  };
  private readonly emitter: Emitter<BubbleEvents>;
  private readonly inbox: Inbox;
  private readonly meta: ClientMeta;
  private readonly WebSocketCtor: WebSocketConstructor;
  private state: State = "idle";
  private stopped: Stopped | undefined;
  private pin: PinnedServerKey | undefined;
  private connection: Connection | undefined;
  private ticket: ResumeTicket | undefined;
  private selectorIndex = 0;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private retryTimer: { timer: ReturnType<typeof setTimeout>; wake(): void } | undefined;
  /** Whether the connect loop runs (one at a time). */
  private connecting = false;
  private readonly readyWaiters = new Set<{ resolve(): void; reject(e: BubbleError): void }>();
  private readonly clientSeqs = new Map<string, bigint>();

  constructor(private readonly config: BubbleClientOptions) {
    if (!config.url && !config.selectors?.length) throw BubbleError.invalid("give `url` (a gate's WebSocket URL) or `selectors` (the server's HTTP addresses)");
    if (!config.app || !config.device) throw BubbleError.invalid("`app` and `device` are required");
    this.options = {
      requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
      heartbeatIntervalMs: config.heartbeatIntervalMs ?? 20_000,
      sendRetryForMs: config.sendRetryForMs ?? 60_000,
      syncPageSize: config.syncPageSize ?? 200,
      maxFrameBytes: config.maxFrameBytes ?? DEFAULT_MAX_BODY,
      backoff: { minDelayMs: config.reconnect?.minDelayMs ?? 200, maxDelayMs: config.reconnect?.maxDelayMs ?? 10_000 },
    };
    this.WebSocketCtor = resolveWebSocket(config.WebSocket);
    this.meta = { appId: config.app, deviceId: config.device, platform: config.platform ?? "web", clientVersion: config.clientVersion ?? `bubble-js/${SDK_VERSION}` };
    this.emitter = new Emitter<BubbleEvents>((error, event) => {
      if (event !== "warning") this.emitter.emit("warning", { error: new Error(`a "${String(event)}" listener threw: ${String(error)}`, { cause: error }) });
    });
    this.inbox = new Inbox({
      sync: (after, limit) => this.sync(after, limit),
      pullChannel: (group, after, limit) => this.channelPull(group, after, limit),
      store: config.cursorStore ?? new MemoryCursorStore(),
      emit: (event, value) => this.emitter.emit(event, value),
      pageSize: this.options.syncPageSize,
    });
  }

  // ------------------------------------------------------------ events

  /** Listens to `event`; returns a function that stops listening. */
  on<K extends keyof BubbleEvents>(event: K, listener: (value: BubbleEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  off<K extends keyof BubbleEvents>(event: K, listener: (value: BubbleEvents[K]) => void): void {
    this.emitter.off(event, listener);
  }

  /** The next `event` that `accept` takes, as a promise (rejected after `timeoutMs`, when given). */
  once<K extends keyof BubbleEvents>(event: K, accept?: (value: BubbleEvents[K]) => boolean, timeoutMs?: number): Promise<BubbleEvents[K]> {
    return this.emitter.once(event, accept, timeoutMs);
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Connects and resolves once the first session is up (its catch-up sync
   * runs right after, see the `synced` event). Failures that may pass
   * (server down, rate limited) are retried with backoff; a refused token,
   * a wrong pin or close() reject.
   */
  async connect(): Promise<void> {
    if (this.state === "closed") throw this.stopped?.error ?? BubbleError.closed("connect");
    if (this.state === "idle") {
      this.state = "connecting";
      try {
        this.pin = await pinServerKey(this.config.serverKey.pem, this.config.serverKey.fingerprint);
        await this.inbox.load();
      } catch (error) {
        this.stop(error as BubbleError, false);
        throw error;
      }
      this.startConnectLoop();
    }
    await this.whenConnected(undefined, "connect");
  }

  /** Ends the session for good: the connection closes, waiting requests fail, no reconnect. */
  close(): void {
    this.stop(BubbleError.closed("the request"), this.state === "connected");
  }

  /**
   * Drops the current connection and connects again at once (resuming with
   * the ticket): what an app does when the network changes.
   */
  reconnect(): void {
    if (this.state === "closed" || this.state === "idle") return;
    if (this.connection) this.connection.close("reconnect() was called");
    else this.retryTimer?.wake();
  }

  /** "idle", "connecting", "connected", "reconnecting" or "closed". */
  get connectionState(): State {
    return this.state;
  }

  /** The device's cursor: newest inbox version delivered, and per super group the newest seq. */
  get cursor(): Cursor {
    return this.inbox.position;
  }

  /** Resolves when every push and sync received so far has been delivered as events. */
  settled(): Promise<void> {
    return this.inbox.idle();
  }

  /** A method, not a field read, so TypeScript does not narrow it across awaits. */
  private isClosed(): boolean {
    return this.state === "closed";
  }

  private stop(error: BubbleError, wasConnected: boolean): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopped = { error };
    this.stopHeartbeat();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer.timer);
      this.retryTimer.wake();
    }
    const connection = this.connection;
    this.connection = undefined;
    connection?.close(error.message);
    for (const waiter of this.readyWaiters) waiter.reject(error);
    this.readyWaiters.clear();
    if (wasConnected) this.emitter.emit("disconnected", { reason: error.message, willReconnect: false });
  }

  private startConnectLoop(): void {
    if (this.connecting) return;
    this.connecting = true;
    void this.runConnectLoop();
  }

  /**
   * Tries to establish a session until one is up or the client stops. It
   * checks the state before each attempt, so a connection lost while an
   * attempt was finishing (a listener of "connected" calling reconnect())
   * is picked up by the same loop.
   */
  private async runConnectLoop(): Promise<void> {
    for (let attempt = 1; ; ) {
      if (this.isClosed() || this.state === "connected") {
        this.connecting = false;
        return;
      }
      try {
        await this.establish();
        attempt = 1;
      } catch (e) {
        if (this.isClosed()) continue;
        const error = e instanceof BubbleError ? e : new BubbleError(ErrorCode.UNAVAILABLE, String(e), { retryable: true, cause: e });
        if (isFatalHandshakeError(error)) {
          this.emitter.emit("authFailed", { error });
          this.stop(error, false);
          continue;
        }
        this.emitter.emit("warning", { error });
        await this.pause(backoffDelay(this.options.backoff, attempt++));
      }
    }
  }

  /** Waits `ms`, or less when reconnect() or close() wakes it. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryTimer = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.retryTimer = { timer, wake };
    });
  }

  /** One attempt: pick a gate, resume (or fall back to a full handshake), go live. */
  private async establish(): Promise<void> {
    const url = await this.gateUrl();
    const connectOptions = {
      WebSocket: this.WebSocketCtor,
      url,
      maxBody: this.options.maxFrameBytes,
      timeoutMs: this.options.requestTimeoutMs,
      dropInbound: this.config.testHooks?.dropInbound,
    };
    const events = {
      push: (frame: Frame) => this.onPush(frame),
      closed: (reason: string) => this.onClosed(connection, reason),
    };
    let connection: Connection | undefined;
    const ticket = this.ticket;
    this.ticket = undefined; // single use, whatever happens next
    if (ticketUsable(ticket)) {
      try {
        connection = await Connection.establish(connectOptions, await startResumption(ticket, this.meta, platformRandomness), events);
      } catch (error) {
        // A spent, expired or foreign ticket (a restarted server makes new
        // ticket keys): auth.md says retry once with a full handshake.
        if (!(error instanceof BubbleError && error.code === ErrorCode.HANDSHAKE_FAILED)) {
          // The server was not reached, or refused for a passing reason: the
          // ticket is kept for the next attempt (if the server did claim it,
          // that attempt's refusal falls back to a full handshake).
          this.ticket = ticket;
          throw error;
        }
      }
    }
    if (!connection) {
      const token = typeof this.config.token === "function" ? await this.config.token() : this.config.token;
      connection = await Connection.establish(connectOptions, await startFullHandshake(this.pin!, token, this.meta, platformRandomness), events);
    }
    if (this.isClosed()) {
      connection.close("the client was closed");
      return;
    }
    this.connection = connection;
    this.ticket = connection.keys.ticket;
    this.state = "connected";
    this.startHeartbeat(connection);
    this.inbox.connected();
    for (const waiter of this.readyWaiters) waiter.resolve();
    this.readyWaiters.clear();
    this.emitter.emit("connected", { resumed: connection.keys.resumed, url });
  }

  private async gateUrl(): Promise<string> {
    if (this.config.url) return this.config.url;
    const { gate, index } = await pickGate(this.config.selectors!, this.selectorIndex, this.options.requestTimeoutMs, this.config.fetch);
    // Next time start at the one after: reconnects spread over the selectors.
    this.selectorIndex = index + 1;
    return gate.ws;
  }

  private onClosed(connection: Connection | undefined, reason: string): void {
    if (connection === undefined || connection !== this.connection) return;
    this.connection = undefined;
    this.stopHeartbeat();
    if (this.state === "closed") return;
    this.state = "reconnecting";
    this.emitter.emit("disconnected", { reason, willReconnect: true });
    this.startConnectLoop();
  }

  private onPush(frame: Frame): void {
    switch (frame.command) {
      case Command.Push:
      case Command.ChannelNotify:
      case Command.SystemPush:
        this.inbox.push(frame);
        return;
      case Command.Typing: {
        const typing = fromBinary(TypingSchema, frame.body);
        if (typing.conversation) this.emitter.emit("typing", { conversation: typing.conversation, userId: typing.userId });
        return;
      }
      case Command.Kick: {
        const kick = fromBinary(KickSchema, frame.body);
        const error = new BubbleError(ErrorCode.GOING_AWAY, `the server ended this session: ${kick.reason || "(no reason)"}`);
        this.emitter.emit("kick", { reason: kick.reason });
        this.stop(error, true);
        return;
      }
      case Command.Error: {
        // GOING_AWAY (shutdown, slow consumer): the server closes next; reconnect and sync.
        const error = decodeError(frame.body);
        this.connection?.close(`the server is closing the connection: ${ErrorCode[error.code] ?? error.code}: ${error.message}`);
        return;
      }
      default:
        if (isBusinessCommand(frame.command)) this.emitter.emit("business", { command: frame.command, body: frame.body });
    }
  }

  private startHeartbeat(connection: Connection): void {
    this.stopHeartbeat();
    const interval = this.options.heartbeatIntervalMs;
    this.heartbeat = setInterval(() => {
      if (connection !== this.connection) return;
      if (Date.now() - connection.lastHeard > interval * 3) {
        connection.close(`nothing heard from the server for ${interval * 3} ms`);
        return;
      }
      connection
        .request(Command.Ping, toBinary(PingSchema, create(PingSchema, { clientTime: BigInt(Date.now()) })), "Ping", this.options.requestTimeoutMs)
        .catch(() => {
          // A lost connection is noticed by its close; a late pong by the silence check.
        });
    }, interval);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Resolves when a session is up; rejects after `timeoutMs` (when given) or when the client stops. */
  private whenConnected(timeoutMs: number | undefined, what: string): Promise<void> {
    if (this.state === "connected" && this.connection?.isOpen) return Promise.resolve();
    if (this.state === "closed") return Promise.reject(this.stopped?.error ?? BubbleError.closed(what));
    if (this.state === "idle") return Promise.reject(BubbleError.invalid(`${what}: call connect() first`));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: BubbleError) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.readyWaiters.delete(waiter);
          reject(new BubbleError(ErrorCode.UNAVAILABLE, `${what}: not connected within ${timeoutMs} ms; the client keeps reconnecting`, { retryable: true }));
        }, timeoutMs);
      }
      this.readyWaiters.add(waiter);
    });
  }

  // ------------------------------------------------------------ requests

  /**
   * Sends a request and decodes its answer. Waits for a session first (up
   * to the request timeout); an Error answer rejects with its BubbleError.
   */
  private async call<Req extends DescMessage, Res extends DescMessage>(
    command: number,
    requestSchema: Req,
    request: MessageInitShape<Req>,
    answerCommand: number,
    answerSchema: Res,
  ): Promise<MessageShape<Res>> {
    const what = commandName(command);
    const frame = await this.requestRaw(command, toBinary(requestSchema, create(requestSchema, request)), what);
    if (frame.command !== answerCommand) {
      throw BubbleError.protocol(`${what} was answered with ${commandName(frame.command)}; expected ${commandName(answerCommand)}`);
    }
    try {
      return fromBinary(answerSchema, frame.body);
    } catch (cause) {
      throw BubbleError.protocol(`the ${commandName(answerCommand)} answer to ${what} does not decode: ${String(cause)}`, cause);
    }
  }

  private async requestRaw(command: number, body: Uint8Array, what: string): Promise<Frame> {
    const timeout = this.options.requestTimeoutMs;
    const started = Date.now();
    await this.whenConnected(timeout, what);
    const connection = this.connection;
    if (!connection) throw BubbleError.disconnected(what, "not connected");
    return connection.request(command, body, what, Math.max(1, timeout - (Date.now() - started)));
  }

  /**
   * Sends a message (text or any Content). Resolves with the SendAck once
   * the message is durable in every recipient's inbox. Retryable failures,
   * a dropped connection included, are retried with the same client_msg_id
   * (the server deduplicates) for up to `sendRetryForMs`.
   */
  async send(to: Conversation, content: Content | string, options: SendOptions = {}): Promise<SendAck> {
    const request = create(SendRequestSchema, {
      to,
      clientMsgId: options.clientMsgId ?? newClientMsgId(),
      clientSeq: options.clientSeq ?? this.nextClientSeq(to),
      createTime: BigInt(Date.now()),
      content: typeof content === "string" ? textContent(content) : content,
      replyTo: options.replyTo,
      mentions: options.mentions,
      mentionAll: options.mentionAll,
    });
    if (!request.clientMsgId || new TextEncoder().encode(request.clientMsgId).length > 128) {
      throw BubbleError.invalid(`client_msg_id must be 1 to 128 bytes; got "${request.clientMsgId.slice(0, 40)}"`);
    }
    return this.sendRequest(request);
  }

  private async sendRequest(request: SendRequest): Promise<SendAck> {
    const deadline = Date.now() + this.options.sendRetryForMs;
    const body = toBinary(SendRequestSchema, request);
    const groupId = request.to ? groupIdOf(request.to) : undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const frame = await this.requestRaw(Command.Send, body, `Send ${request.clientMsgId}`);
        if (frame.command !== Command.SendAck) throw BubbleError.protocol(`Send was answered with ${commandName(frame.command)}`);
        const ack = fromBinary(SendAckSchema, frame.body);
        this.inbox.ownSend(ack, groupId);
        return ack;
      } catch (e) {
        const error = e instanceof BubbleError ? e : BubbleError.protocol(String(e), e);
        const wait = Math.min(2000, 50 * 2 ** (attempt - 1));
        if (!error.retryable || Date.now() + wait >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  private nextClientSeq(to: Conversation): bigint {
    const key = conversationKey(to);
    const next = (this.clientSeqs.get(key) ?? 0n) + 1n;
    this.clientSeqs.set(key, next);
    return next;
  }

  /** One page of inbox entries after `afterVersion` (the client syncs by itself; this is the raw request). */
  sync(afterVersion: bigint, limit = 0): Promise<SyncPage> {
    return this.call(Command.Sync, SyncRequestSchema, { afterVersion, limit }, Command.SyncPage, SyncPageSchema);
  }

  /**
   * One page of a conversation's history, newest first: entries older than
   * `before` (a version; a seq for super groups; 0: from the newest). While
   * `hasMore`, ask again with `before` = the last entry's version (or seq).
   */
  history(conversation: Conversation, before = 0n, limit = 0): Promise<HistoryPage> {
    return this.call(Command.History, HistoryRequestSchema, { conversation, before, limit }, Command.HistoryPage, HistoryPageSchema);
  }

  /**
   * One page of the conversation list, newest activity first. While
   * `hasMore`, ask again with `before` = the last summary's `activity`.
   */
  conversations(before = 0n, limit = 0): Promise<ConversationList> {
    return this.call(Command.Conversations, ConversationsRequestSchema, { before, limit }, Command.ConversationList, ConversationListSchema);
  }

  /** Marks a conversation read up to a version (a seq for super groups); resolves with how many became read. */
  async markRead(conversation: Conversation, upTo: bigint): Promise<bigint> {
    const ack = await this.call(Command.MarkRead, MarkReadRequestSchema, { conversation, upTo }, Command.MarkReadAck, MarkReadAckSchema);
    return ack.marked;
  }

  /** Unread counts per conversation (conversations with none are left out). */
  async unread(): Promise<UnreadCount[]> {
    const counts = await this.call(Command.Unread, UnreadRequestSchema, {}, Command.UnreadCounts, UnreadCountsSchema);
    return counts.counts;
  }

  /**
   * Recalls a message this user sent (within the app's recall window). The
   * ack is the recall entry's: like a send's, it moves the cursor over this
   * device's own entry when nothing came between (protocol.md 4.1).
   */
  async recall(conversation: Conversation, serverMsgId: Uint8Array): Promise<SendAck> {
    const ack = await this.call(Command.Recall, RecallRequestSchema, { conversation, serverMsgId }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }

  /**
   * Replaces the content of a message this user sent, within the app's edit
   * window (protocol.md 4.6a). The ack is the EDIT entry's and moves the
   * cursor like a send's.
   */
  async edit(conversation: Conversation, serverMsgId: Uint8Array, content: Content | string): Promise<SendAck> {
    const request = { conversation, serverMsgId, content: typeof content === "string" ? textContent(content) : content };
    const ack = await this.call(Command.Edit, EditRequestSchema, request, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }

  /**
   * Adds a reaction (one emoji or short key) to a message, or takes it back
   * with `remove` (protocol.md 4.6b). The ack is the REACTION entry's;
   * `duplicate` when nothing changed.
   */
  async react(conversation: Conversation, serverMsgId: Uint8Array, emoji: string, { remove = false } = {}): Promise<SendAck> {
    const ack = await this.call(Command.React, ReactRequestSchema, { conversation, serverMsgId, emoji, remove }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }

  /**
   * Changes this user's settings of a conversation (pinned, muted, archived,
   * draft, blocked; protocol.md 4.6c); resolves with all of them after the
   * change. A change is a SETTINGS entry in this user's inbox, which the
   * user's other devices receive; its version moves this device's cursor as
   * a send's ack does.
   */
  async settings(conversation: Conversation, change: SettingsChange): Promise<SettingsAck> {
    const ack = await this.call(Command.Settings, SettingsRequestSchema, { conversation, ...change }, Command.SettingsAck, SettingsAckSchema);
    if (ack.version > 0n) this.inbox.ownSend(create(SendAckSchema, { version: ack.version, prevVersion: ack.prevVersion }), undefined);
    return ack;
  }

  /**
   * Deletes a message from this user's view; the ack is the DELETE entry's
   * and moves the cursor like a send's (protocol.md 4.1).
   */
  async delete(serverMsgId: Uint8Array): Promise<SendAck> {
    const ack = await this.call(Command.Delete, DeleteRequestSchema, { serverMsgId }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, undefined);
    return ack;
  }

  /**
   * Registers this device's push-notification token (protocol.md 4.9a):
   * `platform` is "apns", "fcm" or "webhook"; `quietUntil` (ms since the
   * epoch, 0: off) is do-not-disturb. Registering again replaces it.
   */
  async registerPush(platform: "apns" | "fcm" | "webhook", token: string, options: { locale?: string; quietUntil?: number } = {}): Promise<void> {
    await this.call(
      Command.PushRegister,
      PushRegisterRequestSchema,
      { platform, token, locale: options.locale ?? "", quietUntil: BigInt(options.quietUntil ?? 0) },
      Command.Ok,
      OkSchema,
    );
  }

  /** No more push notifications to this device (at sign-out; protocol.md 4.9a). */
  async unregisterPush(): Promise<void> {
    await this.call(Command.PushUnregister, PushUnregisterRequestSchema, {}, Command.Ok, OkSchema);
  }

  /**
   * Tells the server the app went to the background (true) or came back
   * (false): while no device of the user is in the foreground, new messages
   * also make push notifications (protocol.md 4.9a). A browser calls it on
   * `visibilitychange`.
   */
  async setBackground(background: boolean): Promise<void> {
    await this.call(Command.AppState, AppStateRequestSchema, { background }, Command.Ok, OkSchema);
  }

  /**
   * Asks where to upload a file (protocol.md 4.9b): PUT the bytes to
   * `uploadUrl` with `headers`, then send a media message whose MediaRef
   * carries `mediaUrl`.
   */
  mediaUploadTicket(mime: string, size: number, fileName = ""): Promise<MediaUploadTicket> {
    return this.call(
      Command.MediaUpload,
      MediaUploadRequestSchema,
      { mime, size: BigInt(size), fileName },
      Command.MediaUploadTicket,
      MediaUploadTicketSchema,
    );
  }

  /** The users this user blocked, in id order (protocol.md 4.6c). */
  async blocked(): Promise<string[]> {
    const list = await this.call(Command.Blocked, BlockedRequestSchema, {}, Command.BlockedList, BlockedListSchema);
    return list.userIds;
  }

  /** Who of a normal group's members has read a message: "read by N of M" (protocol.md 4.6d). */
  readState(groupId: string, serverMsgId: Uint8Array): Promise<ReadState> {
    return this.call(Command.ReadStateQuery, ReadStateRequestSchema, { groupId, serverMsgId }, Command.ReadState, ReadStateSchema);
  }

  /** The groups this user is a member of, each with its member count (protocol.md 4.7a). */
  async myGroups(): Promise<GroupInfo[]> {
    const list = await this.call(Command.GroupsQuery, GroupsRequestSchema, {}, Command.GroupList, GroupListSchema);
    return list.groups;
  }

  /** Changes a group's name, avatar, announcement or group-wide mute (owner and admins). */
  updateGroup(
    groupId: string,
    change: { name?: string; avatarUrl?: string; announcement?: string; muted?: boolean },
  ): Promise<GroupInfo> {
    return this.call(Command.GroupUpdate, GroupUpdateRequestSchema, { groupId, ...change }, Command.GroupInfo, GroupInfoSchema);
  }

  /** Makes a member an admin, or a plain member again (the owner only). */
  async setGroupRole(groupId: string, userId: string, admin: boolean): Promise<void> {
    const role = admin ? MemberRole.ADMIN : MemberRole.MEMBER;
    await this.call(Command.GroupSetRole, GroupRoleRequestSchema, { groupId, userId, role }, Command.Ok, OkSchema);
  }

  /** Hands the group to another member (the owner only); the old owner becomes an admin. */
  async transferGroup(groupId: string, userId: string): Promise<void> {
    await this.call(Command.GroupTransfer, GroupTransferRequestSchema, { groupId, userId }, Command.Ok, OkSchema);
  }

  /** Mutes a member until `until` (ms since the epoch; 0n lifts it): owner and admins. */
  async muteGroupMember(groupId: string, userId: string, until: bigint): Promise<void> {
    await this.call(Command.GroupMute, GroupMuteRequestSchema, { groupId, userId, until }, Command.Ok, OkSchema);
  }

  /** Dismisses the group (the owner only). */
  async dismissGroup(groupId: string): Promise<void> {
    await this.call(Command.GroupDismiss, GroupDismissRequestSchema, { groupId }, Command.Ok, OkSchema);
  }

  /** Adds members (owner and admins). */
  async addGroupMembers(groupId: string, userIds: string[]): Promise<void> {
    await this.call(Command.GroupAddMembers, GroupMembersChangeRequestSchema, { groupId, userIds }, Command.Ok, OkSchema);
  }

  /** Removes members (owner and admins; never the owner). */
  async removeGroupMembers(groupId: string, userIds: string[]): Promise<void> {
    await this.call(Command.GroupRemoveMembers, GroupMembersChangeRequestSchema, { groupId, userIds }, Command.Ok, OkSchema);
  }

  /** Creates a group owned by this user (an empty id lets the server pick one). */
  createGroup(group: { groupId?: string; name: string; members: string[]; superGroup?: boolean }): Promise<GroupInfo> {
    return this.call(Command.GroupCreate, GroupCreateRequestSchema, group, Command.GroupInfo, GroupInfoSchema);
  }

  async joinGroup(groupId: string): Promise<void> {
    await this.call(Command.GroupJoin, GroupJoinRequestSchema, { groupId }, Command.Ok, OkSchema);
  }

  async leaveGroup(groupId: string): Promise<void> {
    await this.call(Command.GroupLeave, GroupLeaveRequestSchema, { groupId }, Command.Ok, OkSchema);
  }

  /** One page of a group's members in user id order, after `afterUserId`. */
  groupMembers(groupId: string, afterUserId = "", limit = 0): Promise<GroupMembers> {
    return this.call(Command.GroupMembersQuery, GroupMembersRequestSchema, { groupId, afterUserId, limit }, Command.GroupMembers, GroupMembersSchema);
  }

  /** Every member of a group, page after page. */
  async allGroupMembers(groupId: string): Promise<Member[]> {
    const members: Member[] = [];
    for (let after = ""; ; ) {
      const page = await this.groupMembers(groupId, after);
      members.push(...page.members);
      const last = page.members.at(-1);
      if (!page.hasMore || !last) return members;
      after = last.userId;
    }
  }

  /** A super group's (or "~broadcast"'s) entries after `afterSeq`. */
  channelPull(groupId: string, afterSeq = 0n, limit = 0): Promise<ChannelPage> {
    return this.call(Command.ChannelPull, ChannelPullRequestSchema, { groupId, afterSeq, limit }, Command.ChannelPage, ChannelPageSchema);
  }

  /** Who of `userIds` is online, on which devices. */
  async presence(userIds: string[]): Promise<UserPresence[]> {
    const result = await this.call(Command.PresenceQuery, PresenceQuerySchema, { userIds }, Command.PresenceResult, PresenceResultSchema);
    return result.users;
  }

  /** Searches this user's own messages. */
  search(query: MessageInitShape<typeof SearchRequestSchema>): Promise<SearchResults> {
    return this.call(Command.Search, SearchRequestSchema, query, Command.SearchResults, SearchResultsSchema);
  }

  /** Tells the conversation this user is typing (fire and forget; the server passes one per 2 s). */
  typing(conversation: Conversation): void {
    const body = toBinary(TypingSchema, create(TypingSchema, { conversation }));
    this.connection?.fire(Command.Typing, body);
  }

  /** One round trip; resolves with its duration in ms. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.call(Command.Ping, PingSchema, { clientTime: BigInt(started) }, Command.Pong, PongSchema);
    return Date.now() - started;
  }

  /** A product-defined request (command >= 0x8000): the handler's answer body. */
  async business(command: number, body: Uint8Array): Promise<Uint8Array> {
    if (!isBusinessCommand(command)) throw BubbleError.invalid(`0x${command.toString(16)} is not a business command (0x8000 to 0xffff)`);
    const frame = await this.requestRaw(command, body, commandName(command));
    if (frame.command !== command) throw BubbleError.protocol(`${commandName(command)} was answered with ${commandName(frame.command)}`);
    return frame.body;
  }
}

/** The group id of a GROUP or SUPER_GROUP conversation (either kind may name a super group). */
function groupIdOf(conversation: Conversation): string | undefined {
  return conversation.kind === ConversationKind.GROUP || conversation.kind === ConversationKind.SUPER_GROUP ? conversation.id : undefined;
}

/** Only a refusal of the token or of the handshake itself stops the client; the rest may pass. */
function isFatalHandshakeError(error: BubbleError): boolean {
  if (!error.fromServer) return error.code === ErrorCode.INVALID_ARGUMENT || error.code === ErrorCode.MALFORMED_FRAME;
  if (error.retryable) return false;
  return ![ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.RATE_LIMITED, ErrorCode.GOING_AWAY, ErrorCode.INTERNAL].includes(error.code);
}

/** A random 128-bit client message id, as 32 hex digits. */
export function newClientMsgId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return toHex(bytes);
}
