/**
 * One connection to one gate: the handshake over a fresh WebSocket, then the
 * record channel with requests matched to answers by seq. Records are sealed
 * and opened strictly in wire order (the counter is implied), so outgoing
 * frames go through one queue and incoming ones through another.
 */
import { fromBinary } from "@bufbuild/protobuf";

import { Command, commandName } from "./commands.js";
import { BubbleError, ErrorCode } from "./errors.js";
import { FLAG_RESPONSE, type Frame } from "./frame.js";
import { ErrorSchema } from "./gen/bubble_pb.js";
import { finishHandshake, type PendingHandshake, type SessionKeys } from "./handshake.js";
import { RecordChannel } from "./records.js";
import { FrameSocket, type WebSocketConstructor } from "./transport.js";

/** What a connection tells its owner. */
export interface ConnectionEvents {
  /** A frame that answers no request of ours: a push (seq 0), already opened. */
  push(frame: Frame): void;
  /** The connection is over; every request still waiting has been failed. */
  closed(reason: string): void;
}

export interface ConnectOptions {
  WebSocket: WebSocketConstructor;
  url: string;
  maxBody: number;
  timeoutMs: number;
  /** Test hook: return true to drop an opened incoming frame as if it never came. */
  dropInbound?: ((frame: Frame) => boolean) | undefined;
}

interface Waiting {
  what: string;
  resolve(frame: Frame): void;
  reject(error: BubbleError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The hello's seq; requests count on from the next. */
const HELLO_SEQ = 1;

export class Connection {
  private nextSeq = HELLO_SEQ + 1;
  private readonly waiting = new Map<number, Waiting>();
  private sendQueue: Promise<void> = Promise.resolve();
  private receiveQueue: Promise<void> = Promise.resolve();
  private ended = false;
  /** When the last frame arrived (ms since the epoch): the heartbeat watches it. */
  lastHeard = Date.now();

  private constructor(
    private readonly socket: FrameSocket,
    private readonly channel: RecordChannel,
    readonly keys: SessionKeys,
    private readonly events: ConnectionEvents,
    private readonly dropInbound: ((frame: Frame) => boolean) | undefined,
  ) {}

  /**
   * Opens a WebSocket, sends the hello, and turns the answer into an
   * established connection. A refusal comes back as the server's
   * BubbleError (HANDSHAKE_FAILED, RATE_LIMITED, UNAVAILABLE…).
   */
  static async establish(options: ConnectOptions, pending: PendingHandshake, events: ConnectionEvents): Promise<Connection> {
    let settle: ((frame: Frame | string) => void) | undefined;
    const firstFrame = new Promise<Frame | string>((resolve) => (settle = resolve));
    // Until the handshake is done, frames and the close go to `firstFrame`;
    // afterwards to the connection.
    let established: Connection | undefined;
    const early: Frame[] = [];
    let earlyClose: string | undefined;
    const socket = await FrameSocket.open(
      options.WebSocket,
      options.url,
      {
        frame: (frame) => {
          if (established) established.receive(frame);
          else if (settle) {
            settle(frame);
            settle = undefined;
          } else early.push(frame);
        },
        closed: (reason) => {
          if (established) established.end(reason);
          else if (settle) {
            settle(reason);
            settle = undefined;
          } else earlyClose = reason;
        },
      },
      options.maxBody,
      options.timeoutMs,
    );
    const command = pending.resumed ? Command.ResumeHello : Command.HandshakeHello;
    socket.send({ flags: 0, command, seq: HELLO_SEQ, body: pending.hello });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no handshake answer within ${options.timeoutMs} ms`), options.timeoutMs);
    });
    const answer = await Promise.race([firstFrame, timeout]);
    clearTimeout(timer);
    const what = pending.resumed ? "resumption" : "handshake";
    if (typeof answer === "string") {
      socket.close();
      throw new BubbleError(ErrorCode.UNAVAILABLE, `${what} with ${options.url} failed: ${answer}`, { retryable: true });
    }
    if (answer.command === Command.Error) {
      socket.close();
      throw BubbleError.fromServerError(decodeError(answer.body), what);
    }
    if (answer.command !== Command.HandshakeAnswer || (answer.flags & FLAG_RESPONSE) === 0 || answer.seq !== HELLO_SEQ) {
      socket.close();
      throw BubbleError.protocol(`${what}: expected HandshakeAnswer for seq ${HELLO_SEQ}, got ${commandName(answer.command)} seq ${answer.seq}`);
    }
    let keys: SessionKeys;
    try {
      keys = await finishHandshake(pending, answer.body);
    } catch (e) {
      socket.close();
      throw e;
    }
    const connection = new Connection(socket, new RecordChannel(keys.c2sKey, keys.s2cKey), keys, events, options.dropInbound);
    established = connection;
    for (const frame of early) connection.receive(frame);
    if (earlyClose !== undefined) connection.end(earlyClose);
    return connection;
  }

  /** Whether requests can still be sent. */
  get isOpen(): boolean {
    return !this.ended && this.socket.isOpen;
  }

  /** The gate's URL. */
  get url(): string {
    return this.socket.url;
  }

  /** Sends a request and resolves with its answer frame (an Error answer rejects). */
  request(command: number, body: Uint8Array, what: string, timeoutMs: number): Promise<Frame> {
    if (!this.isOpen) return Promise.reject(BubbleError.disconnected(what, "not connected"));
    const seq = this.allocateSeq();
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(BubbleError.timeout(what, timeoutMs));
      }, timeoutMs);
      this.waiting.set(seq, { what, resolve, reject, timer });
      this.write({ flags: 0, command, seq, body });
    });
  }

  /** Sends a frame that gets no answer (Typing). */
  fire(command: number, body: Uint8Array): boolean {
    if (!this.isOpen) return false;
    this.write({ flags: 0, command, seq: this.allocateSeq(), body });
    return true;
  }

  /** Closes the connection; waiting requests fail as disconnected. */
  close(reason: string): void {
    this.socket.close(reason);
    this.end(reason);
  }

  private allocateSeq(): number {
    const seq = this.nextSeq;
    this.nextSeq = this.nextSeq >= 0xffffffff ? 1 : this.nextSeq + 1;
    return seq;
  }

  private write(frame: Frame): void {
    this.sendQueue = this.sendQueue.then(async () => {
      if (this.ended) return;
      const sealed = await this.channel.seal(frame);
      if (!this.socket.send(sealed)) this.end("the WebSocket closed while sending");
    });
  }

  private receive(frame: Frame): void {
    this.lastHeard = Date.now();
    this.receiveQueue = this.receiveQueue.then(async () => {
      if (this.ended) return;
      let plain: Frame;
      try {
        plain = await this.channel.open(frame);
      } catch (e) {
        this.close(`a record from the server failed: ${(e as Error).message}`);
        return;
      }
      if (this.dropInbound?.(plain)) return;
      this.dispatch(plain);
    });
  }

  private dispatch(frame: Frame): void {
    if ((frame.flags & FLAG_RESPONSE) !== 0) {
      const waiting = this.waiting.get(frame.seq);
      if (!waiting) return; // answered after its timeout: nobody waits any more
      this.waiting.delete(frame.seq);
      clearTimeout(waiting.timer);
      if (frame.command === Command.Error) waiting.reject(BubbleError.fromServerError(decodeError(frame.body), waiting.what));
      else waiting.resolve(frame);
      return;
    }
    this.events.push(frame);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const [seq, waiting] of this.waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(BubbleError.disconnected(waiting.what, reason));
      this.waiting.delete(seq);
    }
    this.events.closed(reason);
  }
}

/** An Error frame's body; one that does not decode still becomes an error. */
export function decodeError(body: Uint8Array) {
  try {
    return fromBinary(ErrorSchema, body);
  } catch {
    return fromBinary(ErrorSchema, new Uint8Array(0));
  }
}
