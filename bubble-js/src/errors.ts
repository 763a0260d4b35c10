/**
 * BubbleError: every failure the SDK reports, server-made or local, with the
 * protocol's error code (protocol.md section 3) so that an app branches on
 * one thing.
 */
import { ErrorCode } from "./gen/bubble_pb.js";
import type { Error as ErrorMessage } from "./gen/bubble_pb.js";

export { ErrorCode };

/** What the app should do about each code, appended to server messages. */
const ADVICE: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.MALFORMED_FRAME]: "a bug in the client or a corrupted connection; it reconnects",
  [ErrorCode.UNKNOWN_COMMAND]: "the server is older than this client",
  [ErrorCode.HANDSHAKE_FAILED]: "check the token, app id and pinned server key",
  [ErrorCode.UNAUTHENTICATED]: "get a new token",
  [ErrorCode.RATE_LIMITED]: "slow down and retry later",
  [ErrorCode.UNAVAILABLE]: "retry later (sends retry with the same client_msg_id)",
  [ErrorCode.RECALL_EXPIRED]: "the recall window passed",
  [ErrorCode.GOING_AWAY]: "reconnect and sync",
  [ErrorCode.TIMEOUT]: "it may have happened: retry with the same ids",
};

export class BubbleError extends Error {
  override name = "BubbleError";
  /** The protocol's error code (ErrorCode.UNSPECIFIED only for local misuse). */
  readonly code: ErrorCode;
  /** Whether the same request may succeed later. */
  readonly retryable: boolean;
  /** True when the server sent this error; false when the SDK made it. */
  readonly fromServer: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; fromServer?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.fromServer = options.fromServer ?? false;
  }

  /** The code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return ErrorCode[this.code] ?? `CODE_${this.code}`;
  }

  /** An `Error` frame's body from the server, as a BubbleError. */
  static fromServerError(error: ErrorMessage, command: string): BubbleError {
    const name = ErrorCode[error.code] ?? `CODE_${error.code}`;
    const advice = ADVICE[error.code];
    const text = `${command} failed: ${name}: ${error.message || "(no message)"}${advice ? ` (${advice})` : ""}`;
    return new BubbleError(error.code, text, { retryable: error.retryable, fromServer: true });
  }

  /** The connection dropped before the answer came; retrying is safe for sends. */
  static disconnected(what: string, reason: string): BubbleError {
    return new BubbleError(ErrorCode.UNAVAILABLE, `${what}: the connection dropped before the answer (${reason}); retry once reconnected`, {
      retryable: true,
    });
  }

  /** No answer within the time allowed; the request may still have happened. */
  static timeout(what: string, ms: number): BubbleError {
    return new BubbleError(ErrorCode.TIMEOUT, `${what}: no answer within ${ms} ms; it may have happened: retry with the same ids`, {
      retryable: true,
    });
  }

  /** The client was closed by the app. */
  static closed(what: string): BubbleError {
    return new BubbleError(ErrorCode.GOING_AWAY, `${what}: the client is closed; create a new BubbleClient to talk to the server again`);
  }

  /** The server broke the protocol (an answer that does not decode, a bad record). */
  static protocol(message: string, cause?: unknown): BubbleError {
    return new BubbleError(ErrorCode.MALFORMED_FRAME, message, { cause });
  }

  /** The app passed something this SDK cannot use. */
  static invalid(message: string): BubbleError {
    return new BubbleError(ErrorCode.INVALID_ARGUMENT, message);
  }
}
