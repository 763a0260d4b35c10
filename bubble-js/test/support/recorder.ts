/**
 * Records every event of a client from the moment it is made, so a test
 * can wait for "the third entry" without racing the event that brings it.
 */
import type { BubbleClient } from "../../src/client.js";
import { textOf } from "../../src/content.js";
import type { BubbleEvents } from "../../src/events.js";
import type { ChannelEntry, Entry } from "../../src/gen/bubble_pb.js";
import { EntryKind } from "../../src/gen/bubble_pb.js";

type Recorded = { [K in keyof BubbleEvents]: { event: K; value: BubbleEvents[K] } }[keyof BubbleEvents];

const EVENTS: (keyof BubbleEvents)[] = [
  "connected",
  "disconnected",
  "entry",
  "channel",
  "system",
  "typing",
  "kick",
  "authFailed",
  "business",
  "synced",
  "gap",
  "warning",
];

export class Recorder {
  readonly log: Recorded[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly name: string, client: BubbleClient) {
    for (const event of EVENTS) {
      client.on(event, (value) => {
        this.log.push({ event, value } as Recorded);
        for (const wake of [...this.waiters]) wake();
      });
    }
  }

  /** The recorded values of one event, in order. */
  all<K extends keyof BubbleEvents>(event: K): BubbleEvents[K][] {
    return this.log.filter((r) => r.event === event).map((r) => r.value as BubbleEvents[K]);
  }

  /** Inbox entries of kind MESSAGE, in delivery order. */
  messages(): Entry[] {
    return this.all("entry").filter((e) => e.kind === EntryKind.MESSAGE);
  }

  /** The texts of the delivered MESSAGE entries. */
  texts(): string[] {
    return this.messages().map((e) => textOf(e) ?? "");
  }

  /** The texts of the delivered super-group entries. */
  channelTexts(): string[] {
    return this.all("channel").map((e: ChannelEntry) => textOf(e) ?? "");
  }

  /** Resolves once `check()` holds (checked now and after every event); fails after `ms` with the log. */
  until(check: () => boolean, ms: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!check()) return;
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`${this.name}: timed out after ${ms} ms waiting for ${what}; events so far:\n${this.describe()}`));
      }, ms);
      this.waiters.add(wake);
    });
  }

  /** Waits for `count` recorded `event`s in all (counting those already here). */
  untilCount<K extends keyof BubbleEvents>(event: K, count: number, ms: number, accept: (value: BubbleEvents[K]) => boolean = () => true): Promise<void> {
    return this.until(() => this.all(event).filter(accept).length >= count, ms, `${count} "${event}" events`);
  }

  /** The log, one line per event, for failure messages. */
  describe(): string {
    return this.log
      .map(({ event, value }) => {
        if (event === "entry") return `  entry v${value.version} ${EntryKind[value.kind]} ${textOf(value) ?? ""}`;
        if (event === "warning") return `  warning ${value.error.message}`;
        return `  ${event} ${JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v))}`;
      })
      .join("\n");
  }
}
