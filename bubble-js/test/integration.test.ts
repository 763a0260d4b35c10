/**
 * The SDK against a real bubble-server started by the test: every request of
 * docs/protocol.md, pushes as events, offline sync, gap repair, dedup,
 * resumption, kicks. Users are named per test so tests do not see each
 * other's messages.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";

import { BubbleClient } from "../src/client.js";
import { Command } from "../src/commands.js";
import { direct, group, superGroup, systemConversation, textOf } from "../src/content.js";
import { MemoryCursorStore } from "../src/cursor.js";
import { BubbleError, ErrorCode } from "../src/errors.js";
import {
  ConversationKind,
  Direction,
  EntryKind,
  GroupKind,
  PushSchema,
  type Entry,
} from "../src/gen/bubble_pb.js";
import { toHex } from "../src/bytes.js";
import { clientOptions, connectClient, type TestClient } from "./support/clients.js";
import { Recorder } from "./support/recorder.js";
import { serverBinary, TestServer } from "./support/server.js";
import { eventually, within } from "./support/wait.js";

const binary = serverBinary();
if (binary.missing) console.log(binary.missing);

/** How long any one step may take before the test fails with a message. */
const STEP = 10_000;

describe("bubble-js against a real bubble-server", { skip: binary.missing, timeout: 300_000 }, () => {
  let server: TestServer;
  const open: TestClient[] = [];

  before(async () => {
    server = await TestServer.start(binary.path!);
  });

  after(async () => {
    for (const c of open) c.client.close();
    await server?.stop();
  });

  async function connect(user: string, options: Parameters<typeof connectClient>[2] = {}): Promise<TestClient> {
    const c = await connectClient(server, user, options);
    open.push(c);
    return c;
  }

  const send = (from: TestClient, to: Parameters<BubbleClient["send"]>[0], text: string, options?: Parameters<BubbleClient["send"]>[2]) =>
    within(from.client.send(to, text, options), STEP, `${from.user} to send "${text}"`);

  it("1:1: alice's message reaches bob as an IN entry; her own copy is not pushed back, her cursor moves over it", async () => {
    const alice = await connect("alice-1");
    const bob = await connect("bob-1");
    const ack = await send(alice, direct("bob-1"), "hello bob");
    assert.equal(ack.duplicate, false);
    assert.equal(ack.serverMsgId.length, 16);
    assert.ok(ack.version > 0n);

    await bob.events.until(() => bob.events.texts().includes("hello bob"), STEP, "bob to receive hello bob");
    const [entry] = bob.events.messages();
    assert.equal(entry!.direction, Direction.IN);
    assert.equal(entry!.sender, "alice-1");
    assert.equal(entry!.conversation?.kind, ConversationKind.DIRECT);
    assert.equal(entry!.conversation?.id, "alice-1", "a DIRECT conversation is named by the other user");
    assert.equal(toHex(entry!.serverMsgId), toHex(ack.serverMsgId));
    assert.equal(bob.client.cursor.version, entry!.version);

    await alice.client.settled();
    assert.equal(alice.client.cursor.version, ack.version, "SendAck.prev_version was alice's cursor: it moves to the ack's version");
    assert.deepEqual(alice.events.texts(), [], "the sending device is not pushed its own copy");

    await send(bob, direct("alice-1"), "hi alice");
    await alice.events.until(() => alice.events.texts().includes("hi alice"), STEP, "alice to receive the reply");
    assert.deepEqual(alice.events.all("gap"), [], "no false gap after the own send");
  });

  it("a group: create, members, fan-out to every member, leave and join", async () => {
    const alice = await connect("alice-2");
    const bob = await connect("bob-2");
    const carol = await connect("carol-2");
    const dave = await connect("dave-2");
    const info = await within(alice.client.createGroup({ groupId: "team-2", name: "Team", members: ["bob-2", "carol-2"] }), STEP, "createGroup");
    assert.equal(info.groupId, "team-2");
    assert.equal(info.kind, GroupKind.NORMAL);
    assert.equal(info.owner, "alice-2");
    assert.equal(info.memberCount, 3n);
    const members = await within(alice.client.allGroupMembers("team-2"), STEP, "members");
    assert.deepEqual(members.map((m) => m.userId), ["alice-2", "bob-2", "carol-2"]);

    await send(alice, group("team-2"), "hi team");
    for (const member of [bob, carol]) {
      await member.events.until(() => member.events.texts().includes("hi team"), STEP, `${member.user} to receive hi team`);
      const entry = member.events.messages().find((e) => textOf(e) === "hi team")!;
      assert.equal(entry.conversation?.kind, ConversationKind.GROUP);
      assert.equal(entry.conversation?.id, "team-2");
      assert.equal(entry.sender, "alice-2");
    }

    await within(carol.client.leaveGroup("team-2"), STEP, "carol to leave");
    await within(dave.client.joinGroup("team-2"), STEP, "dave to join");
    await send(alice, group("team-2"), "after the change");
    await bob.events.until(() => bob.events.texts().includes("after the change"), STEP, "bob to receive it");
    await dave.events.until(() => dave.events.texts().includes("after the change"), STEP, "dave (joined) to receive it");
    const carolInbox = await within(carol.client.sync(0n), STEP, "carol's sync");
    assert.ok(!carolInbox.entries.some((e) => textOf(e) === "after the change"), "carol left before it was sent: it is not in her inbox");
    assert.ok(carolInbox.entries.some((e) => textOf(e) === "hi team"), "what carol received stays hers after leaving");
  });

  it("offline sync: bob is away while alice sends five messages; back, he receives them in order, once", async () => {
    const alice = await connect("alice-3");
    const store = new MemoryCursorStore();
    const bobBefore = await connect("bob-3", { cursorStore: store });
    await send(alice, direct("bob-3"), "while online");
    await bobBefore.events.until(() => bobBefore.events.texts().length === 1, STEP, "bob's first message");
    const cursorWhenLeaving = bobBefore.client.cursor.version;
    bobBefore.client.close();

    const texts = ["one", "two", "three", "four", "five"];
    for (const text of texts) await send(alice, direct("bob-3"), text);

    const bob = await connect("bob-3", { cursorStore: store });
    await bob.events.until(() => bob.events.texts().length >= 5, STEP, "bob to sync five messages");
    await bob.client.settled();
    assert.deepEqual(bob.events.texts(), texts, "exactly the missed messages, in order, nothing from before the cursor");
    const versions = bob.events.messages().map((e) => e.version);
    assert.ok(versions[0]! > cursorWhenLeaving);
    assert.deepEqual([...versions].sort((a, b) => (a < b ? -1 : 1)), versions, "in version order");
    assert.equal((await store.load())!.version, versions.at(-1), "the store holds the new cursor");
  });

  it("gap repair: a push the client never saw is noticed at the next push (prev_version) and pulled by sync", async () => {
    const alice = await connect("alice-4");
    let dropped = 0;
    const bob = await connect("bob-4", {
      overrides: {
        testHooks: {
          dropInbound: (frame) => {
            if (frame.command !== Command.Push || dropped > 0) return false;
            const push = fromBinary(PushSchema, frame.body);
            if (textOf(push.entry) !== "m1") return false;
            dropped++;
            return true;
          },
        },
      },
    });
    await send(alice, direct("bob-4"), "m1");
    await send(alice, direct("bob-4"), "m2");
    await send(alice, direct("bob-4"), "m3");
    await bob.events.until(() => bob.events.texts().length >= 3, STEP, "bob to have m1, m2, m3");
    await bob.client.settled();
    assert.equal(dropped, 1, "the test hook dropped m1's push");
    assert.deepEqual(bob.events.texts(), ["m1", "m2", "m3"], "m1 arrives by the repair, before m2, once");
    const [gap] = bob.events.all("gap");
    assert.equal(gap?.kind, "inbox");
    assert.ok(gap!.prev > gap!.after, "the push's prev_version was ahead of the cursor");
  });

  it("dedup: the same client_msg_id twice is one message; the second ack says duplicate with the original's values", async () => {
    const alice = await connect("alice-5");
    const bob = await connect("bob-5");
    const first = await send(alice, direct("bob-5"), "only once", { clientMsgId: "dedup-5" });
    const second = await send(alice, direct("bob-5"), "only once", { clientMsgId: "dedup-5" });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(toHex(second.serverMsgId), toHex(first.serverMsgId));
    assert.equal(second.version, first.version);
    assert.equal(second.prevVersion, 0n, "prev_version is unknown (0) on a duplicate");

    await bob.events.until(() => bob.events.texts().includes("only once"), STEP, "bob to receive it");
    const history = await within(bob.client.history(direct("alice-5")), STEP, "bob's history");
    const copies = history.entries.filter((e) => e.kind === EntryKind.MESSAGE && e.clientMsgId === "dedup-5");
    assert.equal(copies.length, 1, "one message in bob's inbox");
    await bob.client.settled();
    assert.equal(bob.events.texts().filter((t) => t === "only once").length, 1, "one entry event");
  });

  it("a send whose ack was lost is retried after the reconnect with the same client_msg_id: one message, the retry's ack is the duplicate", async () => {
    let client: BubbleClient | undefined;
    let droppedAcks = 0;
    const alice = await connect("alice-13", {
      overrides: {
        testHooks: {
          dropInbound: (frame) => {
            if (frame.command !== Command.SendAck || droppedAcks > 0) return false;
            droppedAcks++;
            // The ack is lost and the connection with it, as when a network drops mid-answer.
            queueMicrotask(() => client!.reconnect());
            return true;
          },
        },
      },
    });
    client = alice.client;
    const bob = await connect("bob-13");
    const ack = await send(alice, direct("bob-13"), "sent once", { clientMsgId: "lost-ack-13" });
    assert.equal(droppedAcks, 1);
    assert.equal(ack.duplicate, true, "the server had the first attempt: the retry gets the original's ack");
    await alice.events.untilCount("connected", 2, STEP);
    await bob.events.until(() => bob.events.texts().includes("sent once"), STEP, "bob to receive it");
    const history = await within(bob.client.history(direct("alice-13")), STEP, "bob's history");
    assert.equal(history.entries.filter((e) => e.clientMsgId === "lost-ack-13").length, 1, "one message");
  });

  it("the selectors are asked in turn (a dead one is skipped); a gate URL works without a selector", async () => {
    const token = await server.token("alice-14");
    const viaSelectors = new BubbleClient(clientOptions(server, "alice-14", token, { selectors: ["http://127.0.0.1:9", server.httpUrl] }));
    const direct14 = new BubbleClient(clientOptions(server, "alice-14", token, { selectors: undefined, url: server.wsUrl, device: "second" }));
    try {
      await within(viaSelectors.connect(), STEP, "connect through the second selector");
      await within(direct14.connect(), STEP, "connect to the gate URL");
      assert.ok((await within(viaSelectors.ping(), STEP, "ping")) >= 0);
      assert.ok((await within(direct14.ping(), STEP, "ping")) >= 0);
    } finally {
      viaSelectors.close();
      direct14.close();
    }
  });

  it("resumption: a reconnect resumes with the ticket (no RSA); the server counts a resumed handshake, not a full one", async () => {
    const alice = await connect("alice-6");
    const bob = await connect("bob-6");
    assert.equal(alice.events.all("connected")[0]!.resumed, false, "the first connect is a full handshake");
    const full = await server.counter('bubble_handshakes_total{result="full"}');
    const resumed = await server.counter('bubble_handshakes_total{result="resumed"}');

    alice.client.reconnect();
    await alice.events.untilCount("connected", 2, STEP);
    assert.equal(alice.events.all("connected")[1]!.resumed, true);
    alice.client.reconnect();
    await alice.events.untilCount("connected", 3, STEP);
    assert.equal(alice.events.all("connected")[2]!.resumed, true, "the resumed session's new ticket resumes again");

    assert.equal(await server.counter('bubble_handshakes_total{result="resumed"}'), resumed + 2);
    assert.equal(await server.counter('bubble_handshakes_total{result="full"}'), full);

    await send(alice, direct("bob-6"), "after resuming");
    await bob.events.until(() => bob.events.texts().includes("after resuming"), STEP, "bob to receive it");
  });

  it("conversation list and history: newest first, last entry, unread counts, pages, mark read", async () => {
    const alice = await connect("alice-7");
    await connect("bob-7");
    const carol = await connect("carol-7");
    for (const text of ["h1", "h2", "h3"]) await send(alice, direct("bob-7"), text);
    await send(carol, direct("alice-7"), "from carol");
    await alice.events.until(() => alice.events.texts().includes("from carol"), STEP, "alice to receive carol's message");

    const list = await within(alice.client.conversations(), STEP, "the conversation list");
    assert.deepEqual(
      list.conversations.map((c) => c.conversation?.id),
      ["carol-7", "bob-7"],
      "newest activity first",
    );
    const [fromCarol, toBob] = list.conversations;
    assert.equal(textOf(fromCarol!.lastEntry), "from carol");
    assert.equal(fromCarol!.unread, 1n);
    assert.equal(textOf(toBob!.lastEntry), "h3");
    assert.equal(toBob!.unread, 0n, "own messages are not unread");
    assert.ok(fromCarol!.activity > toBob!.activity);
    assert.equal(list.maxVersion, alice.client.cursor.version);

    const page1 = await within(alice.client.history(direct("bob-7"), 0n, 2), STEP, "history page 1");
    assert.deepEqual(page1.entries.map((e) => textOf(e)), ["h3", "h2"], "newest first");
    assert.equal(page1.hasMore, true);
    const page2 = await within(alice.client.history(direct("bob-7"), page1.entries.at(-1)!.version, 2), STEP, "history page 2");
    assert.deepEqual(page2.entries.map((e) => textOf(e)), ["h1"]);
    assert.equal(page2.hasMore, false);
    assert.ok(page1.entries.every((e: Entry) => e.direction === Direction.OUT));

    const unreadBefore = await within(alice.client.unread(), STEP, "unread counts");
    assert.deepEqual(unreadBefore.map((u) => [u.conversation?.id, u.count]), [["carol-7", 1n]]);
    const carolsMessage = alice.events.messages().find((e) => textOf(e) === "from carol")!;
    assert.equal(await within(alice.client.markRead(direct("carol-7"), carolsMessage.version), STEP, "markRead"), 1n);
    assert.deepEqual(await within(alice.client.unread(), STEP, "unread counts after reading"), []);
    await carol.events.until(
      () => carol.events.all("entry").some((e) => e.kind === EntryKind.READ_RECEIPT),
      STEP,
      "carol to get alice's read receipt",
    );
  });

  it("recall and delete: the peer gets a RECALL entry naming the message; a delete is the deleter's own", async () => {
    const alice = await connect("alice-8");
    const bob = await connect("bob-8");
    const ack = await send(alice, direct("bob-8"), "oops");
    await bob.events.until(() => bob.events.texts().includes("oops"), STEP, "bob to receive oops");
    const recallAck = await within(alice.client.recall(direct("bob-8"), ack.serverMsgId), STEP, "recall");
    assert.ok(recallAck.version > ack.version);
    await bob.events.until(() => bob.events.all("entry").some((e) => e.kind === EntryKind.RECALL), STEP, "bob to get the recall");
    const recall = bob.events.all("entry").find((e) => e.kind === EntryKind.RECALL)!;
    assert.equal(toHex(recall.serverMsgId), toHex(ack.serverMsgId));
    await alice.client.settled();
    assert.equal(recallAck.prevVersion, ack.version, "the recall's ack names the version before it");
    assert.equal(alice.client.cursor.version, recallAck.version, "like a send's, the recall's ack moves the cursor over alice's own entry");

    const keep = await send(alice, direct("bob-8"), "keep me");
    const deleted = await within(bob.client.delete(keep.serverMsgId), STEP, "delete");
    assert.ok(deleted.version > 0n);
  });

  it("edit, react, reply, mention and settings: each reaches the other side as its entry; the acks move the sender's cursor", async () => {
    const alice = await connect("alice-20");
    const phone = await connect("alice-20", { device: "alice-20-phone" });
    const bob = await connect("bob-20");
    const ack = await send(alice, direct("bob-20"), "see you at 5");
    await bob.events.until(() => bob.events.texts().includes("see you at 5"), STEP, "bob to receive the message");

    const edit = await within(alice.client.edit(direct("bob-20"), ack.serverMsgId, "see you at 6"), STEP, "edit");
    await bob.events.until(() => bob.events.all("entry").some((e) => e.kind === EntryKind.EDIT && textOf(e) === "see you at 6"), STEP, "bob to get the edit");
    const reaction = await within(bob.client.react(direct("alice-20"), ack.serverMsgId, "ok"), STEP, "react");
    assert.equal(reaction.duplicate, false);
    assert.equal((await within(bob.client.react(direct("alice-20"), ack.serverMsgId, "ok"), STEP, "the same reaction again")).duplicate, true, "nothing changed");
    await alice.events.until(() => alice.events.all("entry").some((e) => e.kind === EntryKind.REACTION && e.meta?.reaction?.emoji === "ok"), STEP, "alice to get bob's reaction");

    await send(bob, direct("alice-20"), "6 works", { replyTo: ack.serverMsgId });
    await alice.events.until(() => alice.events.texts().includes("6 works"), STEP, "alice to receive the reply");
    const reply = alice.events.messages().find((e) => textOf(e) === "6 works")!;
    assert.equal(toHex(reply.meta!.replyTo!.serverMsgId), toHex(ack.serverMsgId));

    const settings = await within(alice.client.settings(direct("bob-20"), { pinned: true }), STEP, "settings");
    assert.equal(settings.settings?.pinned, true);
    await phone.events.until(() => phone.events.all("entry").some((e) => e.kind === EntryKind.SETTINGS && e.meta?.settings?.pinned === true), STEP, "alice's phone to get the SETTINGS entry");
    await alice.client.settled();
    assert.equal(alice.client.cursor.version, settings.version, "the settings ack moved the cursor over alice's own SETTINGS entry");
    assert.ok(edit.version > 0n);

    await server.http("POST", "/v1/admin/apps/demo/groups", { id: "team-20", name: "team", owner: "bob-20", members: ["alice-20"] });
    await send(bob, group("team-20"), "@alice-20 look", { mentions: ["alice-20"] });
    await alice.events.until(() => alice.events.texts().includes("@alice-20 look"), STEP, "alice to receive the mention");
    const counts = await within(alice.client.unread(), STEP, "unread counts");
    assert.equal(counts.find((c) => c.conversation?.id === "team-20")?.mentioned, true);
  });

  it("push registration, app state and media uploads answer as protocol.md 4.9a and 4.9b say", async () => {
    const alice = await connect("alice-29");
    await within(alice.client.registerPush("webhook", "tok-alice-29", { locale: "en" }), STEP, "register push");
    await assert.rejects(
      alice.client.registerPush("pager" as "webhook", "x"),
      (e: unknown) => e instanceof BubbleError && e.code === ErrorCode.INVALID_ARGUMENT && /pager/.test(e.message),
    );
    await within(alice.client.setBackground(true), STEP, "to the background");
    await within(alice.client.setBackground(false), STEP, "back");
    await within(alice.client.unregisterPush(), STEP, "unregister push");

    const bytes = new TextEncoder().encode("a small picture, honestly");
    const ticket = await within(alice.client.mediaUploadTicket("image/png", bytes.length, "p.png"), STEP, "upload ticket");
    assert.equal(ticket.method, "PUT");
    const headers = Object.fromEntries(ticket.headers.map((h) => [h.key, h.value]));
    const put = await fetch(ticket.uploadUrl, { method: "PUT", headers, body: bytes });
    assert.ok(put.ok, `upload answered ${put.status}`);
    const got = await fetch(ticket.mediaUrl);
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes);
    await assert.rejects(
      alice.client.mediaUploadTicket("application/x-msdownload", 10),
      (e: unknown) => e instanceof BubbleError && e.code === ErrorCode.INVALID_ARGUMENT,
    );
  });

  it("blocks, group read state and running a group: each request answers as protocol.md 4.6c, 4.6d and 4.7a say", async () => {
    const alice = await connect("alice-21");
    const bob = await connect("bob-21");
    const carol = await connect("carol-21");

    await within(bob.client.settings(direct("alice-21"), { blocked: true }), STEP, "block");
    assert.deepEqual(await within(bob.client.blocked(), STEP, "blocked list"), ["alice-21"]);
    await assert.rejects(
      alice.client.send(direct("bob-21"), "hello?"),
      (e: unknown) => e instanceof BubbleError && e.code === ErrorCode.PERMISSION_DENIED && !/block/.test(e.message),
    );
    await within(bob.client.settings(direct("alice-21"), { blocked: false }), STEP, "unblock");
    assert.deepEqual(await within(bob.client.blocked(), STEP, "blocked list after"), []);

    await within(alice.client.createGroup({ groupId: "crew-21", name: "Crew", members: ["bob-21", "carol-21"] }), STEP, "create");
    const sent = await send(alice, group("crew-21"), "read me");
    await bob.events.until(() => bob.events.texts().includes("read me"), STEP, "bob to receive it");
    await within(bob.client.markRead(group("crew-21"), bob.client.cursor.version), STEP, "bob marks read");
    const state = await within(alice.client.readState("crew-21", sent.serverMsgId), STEP, "read state");
    assert.deepEqual([state.memberCount, state.readCount, state.readers], [2n, 1n, ["bob-21"]]);

    await assert.rejects(
      bob.client.updateGroup("crew-21", { announcement: "hi" }),
      (e: unknown) => e instanceof BubbleError && e.code === ErrorCode.PERMISSION_DENIED,
    );
    await within(alice.client.setGroupRole("crew-21", "bob-21", true), STEP, "make bob an admin");
    const info = await within(bob.client.updateGroup("crew-21", { announcement: "standup at 10" }), STEP, "update");
    assert.equal(info.announcement, "standup at 10");
    await within(bob.client.muteGroupMember("crew-21", "carol-21", BigInt(Date.now() + 60_000)), STEP, "mute carol");
    await assert.rejects(
      carol.client.send(group("crew-21"), "can I?"),
      (e: unknown) => e instanceof BubbleError && e.code === ErrorCode.PERMISSION_DENIED,
    );
    await within(bob.client.muteGroupMember("crew-21", "carol-21", 0n), STEP, "unmute carol");
    await within(bob.client.addGroupMembers("crew-21", ["dave-21"]), STEP, "add dave");
    const mine = await within(carol.client.myGroups(), STEP, "carol's groups");
    assert.deepEqual(mine.map((g) => [g.groupId, g.memberCount, g.announcement]), [["crew-21", 4n, "standup at 10"]]);
    await within(alice.client.transferGroup("crew-21", "bob-21"), STEP, "transfer");
    await within(bob.client.removeGroupMembers("crew-21", ["dave-21"]), STEP, "remove dave");
    await within(bob.client.dismissGroup("crew-21"), STEP, "dismiss");
    assert.deepEqual(await within(carol.client.myGroups(), STEP, "carol's groups after"), []);
  });

  it("super group: sends go to the group's log; members get channel events in seq order; pull and history read it", async () => {
    const alice = await connect("alice-9");
    const bob = await connect("bob-9");
    const info = await within(alice.client.createGroup({ groupId: "big-9", name: "Big", members: ["bob-9"], superGroup: true }), STEP, "create");
    assert.equal(info.kind, GroupKind.SUPER);
    const first = await send(alice, superGroup("big-9"), "s1");
    const second = await send(alice, superGroup("big-9"), "s2");
    assert.equal(first.version, 0n, "super-group acks carry a seq, not a version");
    assert.ok(second.seq > first.seq);
    await bob.events.until(() => bob.events.channelTexts().includes("s2"), STEP, "bob to get s2");
    assert.deepEqual(bob.events.channelTexts(), ["s1", "s2"]);
    await alice.client.settled();
    assert.equal(alice.client.cursor.channels["big-9"], second.seq, "alice's own sends move her channel cursor");
    assert.equal(bob.client.cursor.channels["big-9"], second.seq);

    const pulled = await within(bob.client.channelPull("big-9", 0n), STEP, "pull");
    assert.deepEqual(pulled.entries.map((e) => textOf(e)), ["s1", "s2"]);
    assert.equal(pulled.lastSeq, second.seq);
    const history = await within(bob.client.history(superGroup("big-9")), STEP, "history");
    assert.deepEqual(history.channelEntries.map((e) => textOf(e)), ["s2", "s1"]);
    assert.equal(history.lastSeq, second.seq);
  });

  it("super group while offline: back online, the client pulls what it missed from its channel cursor", async () => {
    const alice = await connect("alice-15");
    const store = new MemoryCursorStore();
    const bobBefore = await connect("bob-15", { cursorStore: store });
    await within(alice.client.createGroup({ groupId: "big-15", name: "Big", members: ["bob-15"], superGroup: true }), STEP, "create");
    await send(alice, superGroup("big-15"), "seen");
    await bobBefore.events.until(() => bobBefore.events.channelTexts().includes("seen"), STEP, "bob to see the first");
    await bobBefore.client.settled();
    bobBefore.client.close();
    await send(alice, superGroup("big-15"), "missed 1");
    await send(alice, superGroup("big-15"), "missed 2");
    const bob = await connect("bob-15", { cursorStore: store });
    await bob.events.until(() => bob.events.channelTexts().length >= 2, STEP, "bob to pull the missed entries");
    await bob.client.settled();
    assert.deepEqual(bob.events.channelTexts(), ["missed 1", "missed 2"]);
  });

  it("system push: an app-wide notice is a system event; a notice to one user is a SYSTEM_NOTICE entry", async () => {
    const alice = await connect("alice-10");
    await server.http("POST", "/v1/admin/apps/demo/push", { target: "app", text: "maintenance at 02:00" });
    await alice.events.until(() => alice.events.all("system").some((e) => textOf(e) === "maintenance at 02:00"), STEP, "the broadcast");
    await server.http("POST", "/v1/admin/apps/demo/push", { target: "user", id: "alice-10", text: "your order shipped" });
    await alice.events.until(() => alice.events.all("entry").some((e) => e.kind === EntryKind.SYSTEM_NOTICE), STEP, "the notice");
    const notice = alice.events.all("entry").find((e) => e.kind === EntryKind.SYSTEM_NOTICE)!;
    assert.equal(textOf(notice), "your order shipped");
    assert.deepEqual([notice.conversation?.kind, notice.conversation?.id], [systemConversation().kind, "system"]);
  });

  it("typing, presence, ping and search", async () => {
    const alice = await connect("alice-11");
    const bob = await connect("bob-11");
    alice.client.typing(direct("bob-11"));
    await bob.events.untilCount("typing", 1, STEP);
    const [typing] = bob.events.all("typing");
    assert.equal(typing!.userId, "alice-11");
    assert.equal(typing!.conversation.id, "alice-11");

    const presence = await within(alice.client.presence(["bob-11", "nobody-11"]), STEP, "presence");
    const byUser = Object.fromEntries(presence.map((p) => [p.userId, p]));
    assert.equal(byUser["bob-11"]!.online, true);
    assert.equal(byUser["bob-11"]!.devices[0]!.deviceId, "bob-11-device");
    assert.equal(byUser["nobody-11"]!.online, false);

    assert.ok((await within(alice.client.ping(), STEP, "ping")) >= 0);

    await send(alice, direct("bob-11"), "a pineapple for bob");
    const results = await eventually(
      async () => {
        const r = await alice.client.search({ words: "pineapple" });
        return r.hits.length > 0 ? r : undefined;
      },
      STEP,
      "the message to become searchable",
    );
    assert.equal(results.hits[0]!.text, "a pineapple for bob");
    assert.equal(results.hits[0]!.conversation?.id, "bob-11");
  });

  it("errors are typed: an unhandled business command is NOT_FOUND; a group that does not exist is refused without retries", async () => {
    const alice = await connect("alice-12");
    await assert.rejects(alice.client.business(0x8001, new Uint8Array([1, 2, 3])), (e: unknown) => {
      assert.ok(e instanceof BubbleError);
      assert.equal(e.code, ErrorCode.NOT_FOUND);
      assert.equal(e.codeName, "NOT_FOUND");
      assert.equal(e.fromServer, true);
      assert.equal(e.retryable, false);
      return true;
    });
    const started = Date.now();
    await assert.rejects(within(alice.client.send(group("no-such-group-12"), "hello?"), STEP, "the refusal"), (e: unknown) => {
      assert.ok(e instanceof BubbleError);
      assert.ok([ErrorCode.NOT_FOUND, ErrorCode.PERMISSION_DENIED].includes(e.code), `got ${e.codeName}: ${e.message}`);
      assert.match(e.message, /Send/);
      return true;
    });
    assert.ok(Date.now() - started < 2000, "a refusal that is not retryable is not retried");
  });

  it("a second login of a single-login app kicks the first: kick event, no reconnect", async () => {
    await server.http("POST", "/v1/admin/apps", { id: "solo", settings: { login_policy: "single" } });
    const token = await server.token("kim", "solo");
    const first = new BubbleClient(clientOptions(server, "kim", token, { app: "solo", device: "phone" }));
    const firstEvents = new Recorder("kim/phone", first);
    const second = new BubbleClient(clientOptions(server, "kim", token, { app: "solo", device: "laptop" }));
    try {
      await within(first.connect(), STEP, "the first login");
      await within(second.connect(), STEP, "the second login");
      await firstEvents.untilCount("kick", 1, STEP);
      await firstEvents.until(() => first.connectionState === "closed", STEP, "the kicked client to stop");
      assert.equal(firstEvents.all("disconnected").at(-1)?.willReconnect, false);
      await assert.rejects(first.ping(), (e: unknown) => e instanceof BubbleError && /ended this session/.test(e.message));
      assert.ok((await within(second.ping(), STEP, "the second login's ping")) >= 0);
    } finally {
      first.close();
      second.close();
    }
  });

  it("a refused token stops the client with authFailed instead of reconnecting forever", async () => {
    const client = new BubbleClient(clientOptions(server, "mallory", "v2.not-a-token.AAAA"));
    const events = new Recorder("mallory", client);
    await assert.rejects(within(client.connect(), STEP, "the refusal"), (e: unknown) => {
      assert.ok(e instanceof BubbleError);
      assert.equal(e.code, ErrorCode.HANDSHAKE_FAILED);
      return true;
    });
    assert.equal(events.all("authFailed").length, 1);
    assert.equal(client.connectionState, "closed");
  });
});
