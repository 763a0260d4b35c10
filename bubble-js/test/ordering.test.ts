/**
 * The cursor rules of protocol.md 4.1, 4.3 and 4.8, and the inbox that
 * applies them, driven by a fake server: pushes in, events out.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";

import { backoffDelay } from "../src/backoff.js";
import { Command } from "../src/commands.js";
import { textContent, textOf } from "../src/content.js";
import { MemoryCursorStore, WebStorageCursorStore } from "../src/cursor.js";
import type { BubbleEvents } from "../src/events.js";
import {
  ChannelNotifySchema,
  ChannelPageSchema,
  EntryKind,
  EntrySchema,
  PushSchema,
  SendAckSchema,
  SyncPageSchema,
  type Entry,
} from "../src/gen/bubble_pb.js";
import { Inbox } from "../src/inbox.js";
import { cursorAfterOwnSend, decideChannelNotify, decideInboxPush, decideOwnChannelSend } from "../src/ordering.js";

describe("protocol.md 4.3: an inbox push against the cursor", () => {
  it("prev_version equal to the cursor: apply", () => assert.equal(decideInboxPush(5n, 6n, 5n), "apply"));
  it("prev_version ahead of the cursor: a gap, sync from the cursor", () => assert.equal(decideInboxPush(5n, 9n, 8n), "gap"));
  it("an entry at or below the cursor: a sync overtook the push, ignore", () => {
    assert.equal(decideInboxPush(9n, 9n, 8n), "stale");
    assert.equal(decideInboxPush(9n, 7n, 6n), "stale");
  });
  it("versions may have gaps: prev_version, not version - 1, is what counts", () => assert.equal(decideInboxPush(5n, 40n, 5n), "apply"));
});

describe("protocol.md 4.1: the own-send rule", () => {
  const ack = (version: bigint, prevVersion: bigint, duplicate = false) => ({ version, prevVersion, duplicate });
  it("a device holding exactly prev_version moves to the ack's version", () => assert.equal(cursorAfterOwnSend(5n, ack(6n, 5n)), 6n));
  it("something came between: the cursor stays, the next push's gap syncs it all", () => assert.equal(cursorAfterOwnSend(4n, ack(6n, 5n)), 4n));
  it("a duplicate never moves the cursor", () => assert.equal(cursorAfterOwnSend(5n, ack(6n, 0n, true)), 5n));
  it("a super-group ack (version 0) never moves the inbox cursor", () => assert.equal(cursorAfterOwnSend(0n, ack(0n, 0n)), 0n));
  it("a first message of a fresh inbox: prev_version 0 is the cursor 0", () => assert.equal(cursorAfterOwnSend(0n, ack(1n, 0n)), 1n));
});

describe("protocol.md 4.8: channel notices and own super-group sends", () => {
  it("the first notice of a group starts its cursor", () => assert.equal(decideChannelNotify(undefined, 7n, 6n), "apply"));
  it("the next seq applies, an older one is stale, a prev_seq ahead is a gap", () => {
    assert.equal(decideChannelNotify(6n, 7n, 6n), "apply");
    assert.equal(decideChannelNotify(7n, 7n, 6n), "stale");
    assert.equal(decideChannelNotify(5n, 7n, 6n), "gap");
  });
  it("an own send one past the cursor moves it; further ahead, the group is pulled", () => {
    assert.equal(decideOwnChannelSend(6n, 7n), "apply");
    assert.equal(decideOwnChannelSend(5n, 7n), "gap");
    assert.equal(decideOwnChannelSend(7n, 7n), "stale");
    assert.equal(decideOwnChannelSend(undefined, 3n), "apply");
  });
});

describe("reconnect backoff", () => {
  const policy = { minDelayMs: 100, maxDelayMs: 1000 };
  it("doubles its ceiling per attempt up to the maximum", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  });
  it("jitters between half the ceiling and the ceiling", () => {
    assert.equal(backoffDelay(policy, 3, () => 0), 200);
    assert.equal(backoffDelay(policy, 3, () => 0.5), 300);
  });
});

/** A fake server's inbox: entries by version, answering sync pages. */
function fakeInbox(entries: Entry[]) {
  const syncs: bigint[] = [];
  const events: { event: keyof BubbleEvents; value: unknown }[] = [];
  const store = new MemoryCursorStore();
  const inbox = new Inbox({
    sync: async (after, limit) => {
      syncs.push(after);
      const newer = entries.filter((e) => e.version > after);
      return create(SyncPageSchema, { entries: newer.slice(0, limit), hasMore: newer.length > limit, maxVersion: entries.at(-1)?.version ?? 0n });
    },
    pullChannel: async (groupId) => create(ChannelPageSchema, { groupId }),
    store,
    emit: (event, value) => events.push({ event, value }),
    pageSize: 2,
  });
  const delivered = () => events.filter((e) => e.event === "entry").map((e) => textOf(e.value as Entry));
  return { inbox, syncs, events, store, delivered };
}

function entry(version: bigint, text: string): Entry {
  return create(EntrySchema, { version, kind: EntryKind.MESSAGE, content: textContent(text) });
}

function pushFrame(e: Entry, prevVersion: bigint) {
  return { flags: 0, command: Command.Push, seq: 0, body: toBinary(PushSchema, create(PushSchema, { entry: e, prevVersion })) };
}

describe("the inbox: pushes in, ordered events out", () => {
  it("a connect syncs from the cursor page by page and saves the cursor", async () => {
    const server = [entry(1n, "a"), entry(2n, "b"), entry(4n, "c")];
    const { inbox, syncs, delivered, store, events } = fakeInbox(server);
    inbox.connected();
    await inbox.idle();
    assert.deepEqual(delivered(), ["a", "b", "c"]);
    assert.deepEqual(syncs, [0n, 2n], "two pages of two");
    assert.equal((await store.load())!.version, 4n);
    assert.deepEqual(events.at(-1), { event: "synced", value: { version: 4n } });
  });

  it("a missed push is repaired: the next push's prev_version is ahead, a sync delivers both in order", async () => {
    const server = [entry(1n, "a"), entry(2n, "b"), entry(3n, "c")];
    const { inbox, syncs, delivered, events } = fakeInbox(server);
    inbox.push(pushFrame(server[0]!, 0n));
    // the push of version 2 is lost
    inbox.push(pushFrame(server[2]!, 2n));
    await inbox.idle();
    assert.deepEqual(delivered(), ["a", "b", "c"]);
    assert.deepEqual(syncs, [1n]);
    assert.deepEqual(events.find((e) => e.event === "gap")?.value, { kind: "inbox", group: undefined, after: 1n, prev: 2n });
  });

  it("a push a sync already delivered is ignored", async () => {
    const server = [entry(1n, "a"), entry(2n, "b")];
    const { inbox, delivered } = fakeInbox(server);
    inbox.connected();
    inbox.push(pushFrame(server[1]!, 1n));
    await inbox.idle();
    assert.deepEqual(delivered(), ["a", "b"]);
  });

  it("an own send's ack at the cursor moves it, so the next push is no false gap", async () => {
    const server = [entry(1n, "mine"), entry(2n, "theirs")];
    const { inbox, syncs, delivered } = fakeInbox(server);
    inbox.ownSend(create(SendAckSchema, { version: 1n, prevVersion: 0n }), undefined);
    inbox.push(pushFrame(server[1]!, 1n));
    await inbox.idle();
    assert.deepEqual(delivered(), ["theirs"]);
    assert.deepEqual(syncs, [], "no sync was needed");
  });

  it("a channel notice whose prev_seq is ahead pulls the group from its cursor", async () => {
    const pulls: bigint[] = [];
    const events: string[] = [];
    const inbox = new Inbox({
      sync: async () => create(SyncPageSchema, {}),
      pullChannel: async (groupId, after) => {
        pulls.push(after);
        return create(ChannelPageSchema, {
          groupId,
          entries: [2n, 3n].filter((s) => s > after).map((seq) => ({ groupId, seq, content: textContent(`s${seq}`) })),
        });
      },
      store: new MemoryCursorStore({ version: 0n, channels: { g: 1n } }),
      emit: (event, value) => {
        if (event === "channel") events.push(textOf(value as never) ?? "");
      },
      pageSize: 10,
    });
    await inbox.load();
    const notify = create(ChannelNotifySchema, { groupId: "g", seq: 3n, prevSeq: 2n, entry: { groupId: "g", seq: 3n, content: textContent("s3") } });
    inbox.push({ flags: 0, command: Command.ChannelNotify, seq: 0, body: toBinary(ChannelNotifySchema, notify) });
    await inbox.idle();
    assert.deepEqual(pulls, [1n]);
    assert.deepEqual(events, ["s2", "s3"]);
    assert.equal(inbox.position.channels.g, 3n);
  });
});

describe("cursor stores", () => {
  it("Web Storage keeps versions as strings and gives back bigints", async () => {
    const map = new Map<string, string>();
    const storage = { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
    const store = new WebStorageCursorStore(storage, "bubble-cursor");
    assert.equal(await store.load(), undefined);
    await store.save({ version: 18446744073709551615n, channels: { big: 7n } });
    assert.equal(map.get("bubble-cursor"), '{"version":"18446744073709551615","channels":{"big":"7"}}');
    assert.deepEqual(await store.load(), { version: 18446744073709551615n, channels: { big: 7n } });
  });

  it("a memory store hands out copies", async () => {
    const store = new MemoryCursorStore();
    const cursor = { version: 3n, channels: { g: 1n } };
    await store.save(cursor);
    cursor.channels.g = 99n;
    assert.equal((await store.load())!.channels.g, 1n);
  });
});
