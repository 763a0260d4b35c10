/**
 * The cursor rules of protocol.md 4.1, 4.3 and 4.8 as pure functions, so
 * the client applies them in one place and the tests state them directly.
 */

/** What to do with a pushed entry or channel notice. */
export type PushDecision =
  /** The next one: deliver it and move the cursor to it. */
  | "apply"
  /** Already delivered (a sync overtook the push): ignore it. */
  | "stale"
  /** Entries are missing before it: sync (or pull) from the cursor; that delivers it too. */
  | "gap";

/**
 * An inbox `Push { entry, prev_version }` against the device's newest
 * delivered version `cursor` (protocol.md 4.3).
 */
export function decideInboxPush(cursor: bigint, entryVersion: bigint, prevVersion: bigint): PushDecision {
  if (entryVersion <= cursor) return "stale";
  if (prevVersion > cursor) return "gap";
  return "apply";
}

/**
 * A `ChannelNotify { seq, prev_seq }` (or a broadcast `SystemPush`) against
 * the device's newest seq of that group, `last` (undefined: the first this
 * device hears of the group, which starts its cursor there).
 */
export function decideChannelNotify(last: bigint | undefined, seq: bigint, prevSeq: bigint): PushDecision {
  if (last === undefined) return "apply";
  if (seq <= last) return "stale";
  if (prevSeq > last) return "gap";
  return "apply";
}

/** The parts of a SendAck the own-send rule reads. */
export interface AckPosition {
  version: bigint;
  prevVersion: bigint;
  duplicate: boolean;
}

/**
 * protocol.md 4.1: the sending device is not pushed its own message, so a
 * device that holds exactly `prev_version` (and the ack is not a duplicate)
 * moves its cursor to `version`; otherwise something came between and the
 * sync that the next push's gap starts delivers the own copy with the rest.
 * Returns the new cursor.
 */
export function cursorAfterOwnSend(cursor: bigint, ack: AckPosition): bigint {
  if (ack.duplicate || ack.version === 0n) return cursor;
  return ack.prevVersion === cursor ? ack.version : cursor;
}

/**
 * A super group's own send acknowledged at `seq` (the ack carries no
 * prev_seq): the cursor moves over it when it is the next seq or the first
 * this device hears of the group; a seq further ahead means notices were
 * missed, so the group is pulled from `last`.
 */
export function decideOwnChannelSend(last: bigint | undefined, seq: bigint): PushDecision {
  if (last === undefined) return "apply";
  if (seq <= last) return "stale";
  if (seq > last + 1n) return "gap";
  return "apply";
}
