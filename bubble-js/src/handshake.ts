/**
 * The client side of auth.md's handshake: the full hello (RSA-OAEP to the
 * pinned key, P-256 ECDH, HKDF key schedule), the resume hello with a
 * ticket, and opening the server's answer into a session's record keys and
 * next ticket. Pure functions over WebCrypto: no sockets, so the test vectors
 * drive them with fixed randomness.
 */
import { concat, Reader, str8, u16, utf8 } from "./bytes.js";
import {
  ecdhSharedX,
  generateEcdhKeyPair,
  hkdf,
  importPeerPoint,
  open,
  randomBytes,
  rsaOaepEncrypt,
  seal,
  sha256,
  ZERO_NONCE,
  type EcdhKeyPair,
} from "./crypto.js";
import { BubbleError } from "./errors.js";
import type { PinnedServerKey } from "./serverkey.js";

/** The HKDF info strings of auth.md "HKDF info strings". */
export const Info = {
  hello: "bubble/v1 hello",
  answer: "bubble/v1 answer",
  wrap: "bubble/v1 wrap",
  c2s: "bubble/v1 c2s",
  s2c: "bubble/v1 s2c",
  resumption: "bubble/v1 resumption",
  resumeHello: "bubble/v1 resume hello",
  resumeAnswer: "bubble/v1 resume answer",
} as const;

const HANDSHAKE_VERSION = 0x01;
const POINT_LEN = 65;
const WRAPPED_KEY_LEN = 48;
/** R (32) + C (65): what the RSA block holds before the token. */
const RSA_FIXED = 32 + POINT_LEN;
/** OAEP-SHA256 overhead: 2 * 32 + 2. */
const OAEP_OVERHEAD = 66;

/** Who this device is, sealed into every hello. */
export interface ClientMeta {
  appId: string;
  deviceId: string;
  /** "web", "ios", "android", "desktop"… */
  platform: string;
  clientVersion: string;
}

/** A resumption ticket with the secret that proves its owner (auth.md "Resumption"). */
export interface ResumeTicket {
  /** Opaque to the client. */
  ticket: Uint8Array;
  /** Never sent: both sides derive it from the session key. */
  resumptionSecret: Uint8Array;
  /** When the ticket stops working (ms since the epoch, client clock). */
  expiresAt: number;
}

/** What the handshake draws at random; tests inject fixed values. */
export interface HandshakeRandomness {
  /** Random bytes, drawn in the order auth.md gives. */
  bytes(n: number): Uint8Array;
  /** An ephemeral P-256 key pair (drawn after R, or after the resume nonce). */
  ecdhKeyPair(): Promise<EcdhKeyPair>;
  /** RSA-OAEP-SHA256 of the block (WebCrypto draws the seed itself). */
  rsaEncrypt(key: CryptoKey, plaintext: Uint8Array): Promise<Uint8Array>;
}

/** The platform's randomness: what every real connection uses. */
export const platformRandomness: HandshakeRandomness = {
  bytes: randomBytes,
  ecdhKeyPair: generateEcdhKeyPair,
  rsaEncrypt: rsaOaepEncrypt,
};

/** A hello sent and waiting for its answer. */
export interface PendingHandshake {
  resumed: boolean;
  /** The hello body: the frame's body (HandshakeHello 4 or ResumeHello 6). */
  hello: Uint8Array;
  /** SHA-256 of the hello body: salts every later key. */
  transcript: Uint8Array;
  /** The key that opens the answer. */
  answerKey: Uint8Array;
  ecdh: EcdhKeyPair;
}

/** What a successful handshake yields. */
export interface SessionKeys {
  resumed: boolean;
  transcript: Uint8Array;
  /** Records client -> server. */
  c2sKey: Uint8Array;
  /** Records server -> client. */
  s2cKey: Uint8Array;
  resumptionSecret: Uint8Array;
  /** The ticket for the next connection, when the server issued one. */
  ticket: ResumeTicket | undefined;
}

function encodeMeta(meta: ClientMeta): Uint8Array {
  return concat(str8(meta.appId), str8(meta.deviceId), str8(meta.platform), str8(meta.clientVersion));
}

/** The longest token a key of `modulusBytes` can carry (auth.md "Token capacity"). */
export function maxTokenBytes(modulusBytes: number): number {
  return modulusBytes - OAEP_OVERHEAD - RSA_FIXED;
}

/** Builds a full hello (command HandshakeHello) for `token`. */
export async function startFullHandshake(
  server: PinnedServerKey,
  token: string,
  meta: ClientMeta,
  random: HandshakeRandomness = platformRandomness,
): Promise<PendingHandshake> {
  const tokenBytes = utf8(token);
  const room = maxTokenBytes(server.modulusBytes);
  if (tokenBytes.length > room) {
    throw BubbleError.invalid(
      `the token is ${tokenBytes.length} bytes; a ${server.modulusBytes * 8}-bit server key carries at most ${room} (auth.md "Token capacity"): issue shorter tokens or use a larger server key`,
    );
  }
  const r = random.bytes(32);
  const ecdh = await random.ecdhKeyPair();
  const rsaBlock = await random.rsaEncrypt(server.publicKey, concat(r, ecdh.publicPoint, tokenBytes));
  if (rsaBlock.length !== server.modulusBytes) {
    throw BubbleError.protocol(`RSA-OAEP gave ${rsaBlock.length} bytes for a ${server.modulusBytes}-byte modulus`);
  }
  const head = concat(new Uint8Array([HANDSHAKE_VERSION]), server.keyId, u16(server.modulusBytes), rsaBlock);
  const helloKey = await hkdf(r, new Uint8Array(0), Info.hello);
  const sealedMeta = await seal(helloKey, ZERO_NONCE, head, concat(server.keyId, encodeMeta(meta)));
  const hello = concat(head, sealedMeta);
  const transcript = await sha256(hello);
  const answerKey = await hkdf(r, transcript, Info.answer);
  return { resumed: false, hello, transcript, answerKey, ecdh };
}

/** Builds a resume hello (command ResumeHello) from the last session's ticket. */
export async function startResumption(
  ticket: ResumeTicket,
  meta: ClientMeta,
  random: HandshakeRandomness = platformRandomness,
): Promise<PendingHandshake> {
  const nonce = random.bytes(32);
  const ecdh = await random.ecdhKeyPair();
  const head = concat(new Uint8Array([HANDSHAKE_VERSION]), u16(ticket.ticket.length), ticket.ticket, nonce, ecdh.publicPoint);
  const helloKey = await hkdf(ticket.resumptionSecret, nonce, Info.resumeHello);
  const hello = concat(head, await seal(helloKey, ZERO_NONCE, head, encodeMeta(meta)));
  const transcript = await sha256(hello);
  const answerKey = await hkdf(ticket.resumptionSecret, transcript, Info.resumeAnswer);
  return { resumed: true, hello, transcript, answerKey, ecdh };
}

/** The server's answer, opened (the inner layout of auth.md "Answer"). */
export interface OpenedAnswer {
  serverPoint: Uint8Array;
  wrappedKey: Uint8Array;
  ticketLifetimeSecs: number;
  ticket: Uint8Array;
}

/** Opens a HandshakeAnswer body with the pending hello's answer key. */
export async function openAnswer(pending: PendingHandshake, answer: Uint8Array): Promise<OpenedAnswer> {
  if (answer.length < 1 || answer[0] !== HANDSHAKE_VERSION) {
    throw BubbleError.protocol(`the handshake answer has version ${answer[0]}; this SDK speaks version ${HANDSHAKE_VERSION}`);
  }
  let inner: Uint8Array;
  try {
    inner = await open(pending.answerKey, ZERO_NONCE, answer.subarray(0, 1), answer.subarray(1));
  } catch (cause) {
    throw BubbleError.protocol("the handshake answer does not open: the peer does not hold the pinned server key", cause);
  }
  try {
    const reader = new Reader(inner, "the handshake answer");
    const serverPoint = reader.take(POINT_LEN, "S");
    const wrappedKey = reader.take(WRAPPED_KEY_LEN, "W");
    const ticketLifetimeSecs = reader.u32("ticket lifetime");
    const ticket = reader.take(reader.u16("ticket length"), "ticket");
    reader.end();
    return { serverPoint, wrappedKey, ticketLifetimeSecs, ticket };
  } catch (cause) {
    throw BubbleError.protocol(`the handshake answer is malformed: ${String(cause)}`, cause);
  }
}

/** Finishes the handshake: ECDH with S, unwraps K, derives the record keys and keeps the ticket. */
export async function finishHandshake(pending: PendingHandshake, answer: Uint8Array, now = Date.now()): Promise<SessionKeys> {
  const opened = await openAnswer(pending, answer);
  const z = await ecdhSharedX(pending.ecdh.privateKey, await importPeerPoint(opened.serverPoint));
  const wrapKey = await hkdf(z, pending.transcript, Info.wrap);
  let sessionKey: Uint8Array;
  try {
    sessionKey = await open(wrapKey, ZERO_NONCE, opened.serverPoint, opened.wrappedKey);
  } catch (cause) {
    throw BubbleError.protocol("the wrapped session key does not open: the answer was not made for this hello", cause);
  }
  const th = pending.transcript;
  const [c2sKey, s2cKey, resumptionSecret] = await Promise.all([
    hkdf(sessionKey, th, Info.c2s),
    hkdf(sessionKey, th, Info.s2c),
    hkdf(sessionKey, th, Info.resumption),
  ]);
  const ticket =
    opened.ticket.length > 0 && opened.ticketLifetimeSecs > 0
      ? { ticket: opened.ticket, resumptionSecret, expiresAt: now + opened.ticketLifetimeSecs * 1000 }
      : undefined;
  return { resumed: pending.resumed, transcript: th, c2sKey, s2cKey, resumptionSecret, ticket };
}

/** Whether `ticket` can still be offered at `now`. */
export function ticketUsable(ticket: ResumeTicket | undefined, now = Date.now()): ticket is ResumeTicket {
  return ticket !== undefined && ticket.expiresAt > now && ticket.ticket.length > 0 && ticket.ticket.length <= 1024;
}

