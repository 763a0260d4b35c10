/**
 * WebSocket as a frame pipe (protocol.md section 1): one binary message per
 * frame, in order. Works with the browser's WebSocket and, in Node 20 where
 * the global may be missing, with any constructor of the same shape (the
 * `ws` package's).
 */
import { BubbleError, ErrorCode } from "./errors.js";
import { decodeFrame, encodeFrame, type Frame } from "./frame.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * The parts of the WHATWG WebSocket this SDK uses. The handlers take `any`
 * so that both the DOM's WebSocket and the `ws` package's (whose event
 * classes differ) fit without a cast; the SDK reads only `data`, `code`
 * and `reason` from them.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** A WebSocket constructor: the global one, or e.g. `import { WebSocket } from "ws"`. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

/** What a connection reports to its owner. */
export interface FrameHandlers {
  /** One frame, in arrival order. */
  frame(frame: Frame): void;
  /** The connection ended (closed by either side, or not exactly one frame per message). */
  closed(reason: string): void;
}

/** The WebSocket constructor to use: the option, else the global one. */
export function resolveWebSocket(option: WebSocketConstructor | undefined): WebSocketConstructor {
  const ctor = option ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!ctor) {
    throw BubbleError.invalid(
      "no WebSocket: this runtime has no global WebSocket (Node 20); pass one as the `WebSocket` option, e.g. `import { WebSocket } from \"ws\"`",
    );
  }
  return ctor;
}

/** An open WebSocket carrying frames. */
export class FrameSocket {
  private ended = false;

  private constructor(
    private readonly socket: WebSocketLike,
    readonly url: string,
  ) {}

  /**
   * Opens `url` and resolves once the socket is open. Frames that arrive
   * later go to `handlers` (set before any can arrive).
   */
  static open(ctor: WebSocketConstructor, url: string, handlers: FrameHandlers, maxBody: number, timeoutMs: number): Promise<FrameSocket> {
    return new Promise((resolve, reject) => {
      let socket: WebSocketLike;
      try {
        socket = new ctor(url);
      } catch (cause) {
        reject(new BubbleError(ErrorCode.UNAVAILABLE, `cannot open a WebSocket to ${url}: ${String(cause)}`, { retryable: true, cause }));
        return;
      }
      socket.binaryType = "arraybuffer";
      const conn = new FrameSocket(socket, url);
      let opened = false;
      const timer = setTimeout(() => {
        if (opened) return;
        conn.finish(handlers, "open timed out");
        reject(new BubbleError(ErrorCode.UNAVAILABLE, `the WebSocket to ${url} did not open within ${timeoutMs} ms`, { retryable: true }));
      }, timeoutMs);
      socket.onopen = () => {
        opened = true;
        clearTimeout(timer);
        resolve(conn);
      };
      socket.onerror = () => {
        // The close event that follows carries the reason.
      };
      socket.onclose = (event: { code: number; reason: string }) => {
        clearTimeout(timer);
        const reason = `WebSocket closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`;
        if (!opened) {
          conn.ended = true;
          reject(new BubbleError(ErrorCode.UNAVAILABLE, `cannot connect to ${url}: ${reason}`, { retryable: true }));
          return;
        }
        conn.finish(handlers, reason);
      };
      socket.onmessage = (event: { data: unknown }) => {
        if (conn.ended) return;
        const data = event.data;
        if (!(data instanceof ArrayBuffer)) {
          conn.finish(handlers, "the server sent a text WebSocket message; frames are binary");
          return;
        }
        let frame: Frame;
        try {
          frame = decodeFrame(new Uint8Array(data), maxBody);
        } catch (e) {
          conn.finish(handlers, `the server sent a message that is not a frame: ${(e as Error).message}`);
          return;
        }
        handlers.frame(frame);
      };
    });
  }

  /** Whether frames can still be sent. */
  get isOpen(): boolean {
    return !this.ended && this.socket.readyState === OPEN;
  }

  /** Sends one frame as one binary message; false when the socket is gone. */
  send(frame: Frame): boolean {
    if (!this.isOpen) return false;
    try {
      this.socket.send(encodeFrame(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the socket (1000, normal closure) without reporting to the handlers. */
  close(reason = "closed by the client"): void {
    this.ended = true;
    try {
      this.socket.close(1000, reason.slice(0, 120));
    } catch {
      // already closed
    }
  }

  private finish(handlers: FrameHandlers, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.socket.close(1000);
    } catch {
      // already closed
    }
    handlers.closed(reason);
  }
}
