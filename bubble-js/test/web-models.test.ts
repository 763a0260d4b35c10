/**
 * The web chat's models (web/conversations.js, web/thread.js) without a
 * browser: the rules that keep the conversation list and an open
 * conversation right as entries arrive (protocol.md 4.3, 4.4a, 4.4b).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { create, type MessageInitShape } from "@bufbuild/protobuf";

import { direct, group, textContent } from "../src/content.js";
import {
  ConversationListSchema,
  Direction,
  EntryKind,
  EntryMetaSchema,
  EntrySchema,
  HistoryPageSchema,
  SendAckSchema,
  type Entry,
} from "../src/gen/bubble_pb.js";
import { packageRoot } from "./support/paths.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- plain JS modules, loaded as they are served */
const web = (file: string) => import(pathToFileURL(join(packageRoot, "web", file)).href);
const { ConversationList, idProblem } = (await web("conversations.js")) as any;
const { Thread } = (await web("thread.js")) as any;

const ME = "alice";
const id = (n: number) => new Uint8Array(16).fill(n);

/** A message from bob to alice (IN) or alice to bob (OUT), at `version` of alice's inbox. */
function message(version: number, { from = "bob", text = `m${version}`, to = direct("bob"), meta }: { from?: string; text?: string; to?: ReturnType<typeof direct>; meta?: MessageInitShape<typeof EntryMetaSchema> } = {}): Entry {
  return create(EntrySchema, {
    version: BigInt(version),
    kind: EntryKind.MESSAGE,
    conversation: to,
    direction: from === ME ? Direction.OUT : Direction.IN,
    serverMsgId: id(version),
    sender: from,
    clientMsgId: `c${version}`,
    serverTime: BigInt(1_700_000_000_000 + version),
    content: textContent(text),
    meta,
  });
}

function entry(kind: EntryKind, version: number, fields: MessageInitShape<typeof EntrySchema> = {}): Entry {
  return create(EntrySchema, { version: BigInt(version), kind, conversation: direct("bob"), ...fields });
}

/** A list loaded with bob's conversation holding `unread` unread messages up to version 5. */
function listWithBob(unread = 1) {
  const list = new ConversationList(ME);
  list.load(
    create(ConversationListSchema, {
      conversations: [{ conversation: direct("bob"), activity: 5n, lastEntry: message(5), unread: BigInt(unread), readUpTo: 4n }],
      maxVersion: 5n,
    }),
  );
  return list;
}

describe("the conversation list", () => {
  it("does not count again an entry the loaded list already covers", () => {
    const list = listWithBob();
    list.applyEntry(message(5));
    assert.equal(list.row("direct:bob").unread, 1);
    list.applyEntry(message(6));
    assert.equal(list.row("direct:bob").unread, 2);
  });

  it("applies the entries that arrived before it loaded, once it loads", () => {
    const list = new ConversationList(ME);
    list.applyEntry(message(3, { from: "carol", to: direct("carol") }));
    list.applyEntry(message(7, { from: "carol", to: direct("carol") }));
    list.load(create(ConversationListSchema, { conversations: [], maxVersion: 5n }));
    assert.equal(list.row("direct:carol").unread, 1, "version 3 is in the list's past, 7 is new");
  });

  it("moves a conversation with a new message to the top, below the pinned ones", () => {
    const list = listWithBob();
    list.applyEntry(message(6, { from: "carol", to: direct("carol") }));
    assert.deepEqual(list.sorted().map((r: any) => r.key), ["direct:carol", "direct:bob"]);
    list.applyEntry(entry(EntryKind.SETTINGS, 7, { meta: { settings: { pinned: true } } }));
    assert.deepEqual(list.sorted().map((r: any) => r.key), ["direct:bob", "direct:carol"]);
    assert.equal(list.row("direct:bob").pinned, true);
  });

  it("clears the badge and the mention when another device read the conversation", () => {
    const list = listWithBob(0);
    list.applyEntry(message(6, { meta: { mentions: [ME] } }));
    assert.equal(list.row("direct:bob").mentioned, true);
    list.applyEntry(entry(EntryKind.READ_CURSOR, 7, { readUpTo: 6n }));
    assert.equal(list.row("direct:bob").unread, 0);
    assert.equal(list.row("direct:bob").mentioned, false);
  });

  it("counts a group message mentioning everyone as a mention", () => {
    const list = listWithBob(0);
    list.applyEntry(message(6, { to: group("team"), meta: { mentionAll: true } }));
    assert.equal(list.row("group:team").mentioned, true);
  });

  it("shows a recalled last message as recalled and stops counting it", () => {
    const list = listWithBob(0);
    list.applyEntry(message(6));
    list.applyEntry(entry(EntryKind.RECALL, 7, { serverMsgId: id(6) }));
    assert.equal(list.row("direct:bob").last.recalled, true);
    assert.equal(list.row("direct:bob").unread, 0);
  });

  it("raises the peer's read mark with each read receipt", () => {
    const list = listWithBob();
    list.applyEntry(entry(EntryKind.READ_RECEIPT, 6, { readUpTo: 5n }));
    assert.equal(list.row("direct:bob").peerReadUpTo, 5n);
  });
});

describe("an open conversation", () => {
  const page = (entries: Entry[], hasMore: boolean) => create(HistoryPageSchema, { entries, hasMore });

  it("shows each message once, in version order, from history pages and live entries", () => {
    const thread = new Thread(direct("bob"), ME);
    thread.apply(message(9));
    thread.addPage(page([message(9), message(8), message(7)], true));
    thread.addPage(page([message(6), message(5)], false));
    assert.deepEqual(thread.ordered().map((m: any) => m.text), ["m5", "m6", "m7", "m8", "m9"]);
    assert.equal(thread.before, 5n, "the next older page starts below the oldest shown");
    assert.equal(thread.hasMore, false);
  });

  it("keeps an own message in one place from typing, through the ack, to its copy coming back in a sync", () => {
    const thread = new Thread(direct("bob"), ME);
    thread.sending("c10", "on my way");
    assert.equal(thread.stateOf(thread.ordered()[0]), "sending");
    thread.acked("c10", create(SendAckSchema, { serverMsgId: id(10), version: 10n, serverTime: 1n }));
    thread.apply(message(10, { from: ME, text: "on my way" }));
    assert.equal(thread.ordered().length, 1);
    assert.equal(thread.stateOf(thread.ordered()[0]), "sent");
  });

  it("hides a message recalled on a newer page when the message shows up on an older one", () => {
    const thread = new Thread(direct("bob"), ME);
    thread.addPage(page([entry(EntryKind.RECALL, 12, { serverMsgId: id(4) }), message(11)], true));
    thread.addPage(page([message(4)], false));
    assert.equal(thread.ordered().find((m: any) => m.text === "m4").recalled, true);
  });

  it("shows own messages as read once the peer's receipt covers them", () => {
    const thread = new Thread(direct("bob"), ME, { peerReadUpTo: 3n });
    thread.addPage(page([message(4, { from: ME }), message(3, { from: ME })], false));
    assert.deepEqual(thread.ordered().map((m: any) => thread.stateOf(m)), ["read", "sent"]);
    thread.apply(entry(EntryKind.READ_RECEIPT, 5, { readUpTo: 4n }));
    assert.deepEqual(thread.ordered().map((m: any) => thread.stateOf(m)), ["read", "read"]);
  });
});

describe("ids typed into the chat", () => {
  it("follow the server's rule: 1 to 128 bytes, no control characters, none of : / | #", () => {
    assert.equal(idProblem("alice"), undefined);
    assert.equal(idProblem("Zoë Smith"), undefined, "spaces and any script are fine");
    for (const bad of ["", "a:b", "a/b", "a|b", "a#b", "a\nb", "é".repeat(65)]) assert.ok(idProblem(bad), JSON.stringify(bad));
  });
});
