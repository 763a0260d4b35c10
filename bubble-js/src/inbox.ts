/**
 * Turns pushes into ordered events: one queue of tasks, run one at a time,
 * so pushes, syncs, pulls and own-send acks move the cursor in the order
 * they arrived. A gap (protocol.md 4.3, 4.8) is repaired by syncing (or
 * pulling) from the cursor, which delivers the pushed entry with the rest.
 */
import { fromBinary } from "@bufbuild/protobuf";

import { Command } from "./commands.js";
import { BubbleError, ErrorCode } from "./errors.js";
import type { BubbleEvents } from "./events.js";
import type { Frame } from "./frame.js";
import {
  ChannelNotifySchema,
  PushSchema,
  SystemPushSchema,
  type ChannelEntry,
  type ChannelPage,
  type SendAck,
  type SyncPage,
} from "./gen/bubble_pb.js";
import { copyCursor, type Cursor, type CursorStore } from "./cursor.js";
import { cursorAfterOwnSend, decideChannelNotify, decideInboxPush, decideOwnChannelSend } from "./ordering.js";

/** The broadcast log's reserved group id (protocol.md 4.8). */
export const BROADCAST_GROUP = "~broadcast";

export interface InboxDeps {
  sync(afterVersion: bigint, limit: number): Promise<SyncPage>;
  pullChannel(groupId: string, afterSeq: bigint, limit: number): Promise<ChannelPage>;
  store: CursorStore;
  emit<K extends keyof BubbleEvents>(event: K, value: BubbleEvents[K]): void;
  pageSize: number;
}

export class Inbox {
  private cursor: Cursor = { version: 0n, channels: {} };
  private queue: Promise<void> = Promise.resolve();
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly deps: InboxDeps) {}

  /** Loads the saved cursor; call once before the first connect. */
  async load(): Promise<void> {
    const saved = await this.deps.store.load();
    if (saved) this.cursor = copyCursor(saved);
  }

  /** A copy of the cursor now. */
  get position(): Cursor {
    return copyCursor(this.cursor);
  }

  /** Resolves when every task queued so far has run. */
  idle(): Promise<void> {
    return this.queue.then(() => this.saving);
  }

  /** After each (re)connect: sync the inbox from the cursor, then pull the known super groups. */
  connected(): void {
    this.enqueue(async () => {
      if (!(await this.catchUp())) return;
      for (const group of Object.keys(this.cursor.channels)) await this.pullGap(group, this.cursor.channels[group]!);
      this.deps.emit("synced", { version: this.cursor.version });
    });
  }

  /** A push frame (Push, ChannelNotify or SystemPush). */
  push(frame: Frame): void {
    this.enqueue(async () => {
      switch (frame.command) {
        case Command.Push:
          return this.onInboxPush(frame.body);
        case Command.ChannelNotify: {
          const notify = fromBinary(ChannelNotifySchema, frame.body);
          return this.onChannel(notify.groupId, notify.seq, notify.prevSeq, notify.entry);
        }
        case Command.SystemPush: {
          const push = fromBinary(SystemPushSchema, frame.body);
          return this.onChannel(BROADCAST_GROUP, push.seq, push.prevSeq, push.entry);
        }
      }
    });
  }

  /** This device's own send was acknowledged (protocol.md 4.1). */
  ownSend(ack: SendAck, groupId: string | undefined): void {
    this.enqueue(async () => {
      if (ack.seq > 0n && groupId !== undefined) {
        const last = this.cursor.channels[groupId];
        const decision = decideOwnChannelSend(last, ack.seq);
        if (decision === "apply") this.moveChannel(groupId, ack.seq);
        else if (decision === "gap") {
          this.deps.emit("gap", { kind: "channel", group: groupId, after: last!, prev: ack.seq - 1n });
          await this.pullGap(groupId, last!);
        }
        return;
      }
      const next = cursorAfterOwnSend(this.cursor.version, ack);
      if (next !== this.cursor.version) {
        this.cursor.version = next;
        this.save();
      }
    });
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error: unknown) => {
      this.deps.emit("warning", { error: error instanceof Error ? error : new Error(String(error)) });
    });
  }

  private async onInboxPush(body: Uint8Array): Promise<void> {
    const push = fromBinary(PushSchema, body);
    const entry = push.entry;
    if (!entry) return;
    const decision = decideInboxPush(this.cursor.version, entry.version, push.prevVersion);
    if (decision === "stale") return;
    if (decision === "gap") {
      this.deps.emit("gap", { kind: "inbox", group: undefined, after: this.cursor.version, prev: push.prevVersion });
      if (await this.catchUp()) this.deps.emit("synced", { version: this.cursor.version });
      return;
    }
    this.cursor.version = entry.version;
    this.save();
    this.deps.emit("entry", entry);
  }

  /**
   * Syncs from the cursor until the server has no more, delivering each
   * entry once. False when a page failed (the connection dropped): the next
   * connect or push retries from where delivery stopped.
   */
  private async catchUp(): Promise<boolean> {
    for (;;) {
      let page: SyncPage;
      try {
        page = await this.deps.sync(this.cursor.version, this.deps.pageSize);
      } catch (error) {
        this.deps.emit("warning", { error: error as Error });
        return false;
      }
      for (const entry of page.entries) {
        if (entry.version <= this.cursor.version) continue;
        this.cursor.version = entry.version;
        this.deps.emit("entry", entry);
      }
      this.save();
      if (!page.hasMore || page.entries.length === 0) return true;
    }
  }

  private async onChannel(groupId: string, seq: bigint, prevSeq: bigint, entry: ChannelEntry | undefined): Promise<void> {
    const event = groupId === BROADCAST_GROUP ? "system" : "channel";
    const last = this.cursor.channels[groupId];
    let decision = decideChannelNotify(last, seq, prevSeq);
    // A notice without its entry (a large one) is pulled like a gap.
    if (decision === "apply" && !entry) decision = "gap";
    if (decision === "stale") return;
    if (decision === "gap") {
      const after = last ?? prevSeq;
      this.deps.emit("gap", { kind: "channel", group: groupId, after, prev: prevSeq });
      await this.pullGap(groupId, after);
      return;
    }
    this.moveChannel(groupId, seq);
    this.deps.emit(event, entry!);
  }

  /** Pulls a group's entries after `after`, in order, each once, up to its newest. */
  private async pullGap(groupId: string, after: bigint): Promise<void> {
    const event = groupId === BROADCAST_GROUP ? "system" : "channel";
    let from = after;
    for (;;) {
      let page: ChannelPage;
      try {
        page = await this.deps.pullChannel(groupId, from, this.deps.pageSize);
      } catch (error) {
        if (error instanceof BubbleError && (error.code === ErrorCode.PERMISSION_DENIED || error.code === ErrorCode.NOT_FOUND)) {
          // Left the group, or it is gone: stop following it.
          delete this.cursor.channels[groupId];
          this.save();
          return;
        }
        this.deps.emit("warning", { error: error as Error });
        return;
      }
      for (const entry of page.entries) {
        const last = this.cursor.channels[groupId];
        if (last !== undefined && entry.seq <= last) continue;
        this.moveChannel(groupId, entry.seq);
        this.deps.emit(event, entry);
        from = entry.seq;
      }
      if (!page.hasMore || page.entries.length === 0) return;
    }
  }

  private moveChannel(groupId: string, seq: bigint): void {
    this.cursor.channels[groupId] = seq;
    this.save();
  }

  /** Saves a copy of the cursor, one save at a time, in order. */
  private save(): void {
    const snapshot = copyCursor(this.cursor);
    this.saving = this.saving
      .then(() => this.deps.store.save(snapshot))
      .catch((error: unknown) => this.deps.emit("warning", { error: error instanceof Error ? error : new Error(String(error)) }));
  }
}
