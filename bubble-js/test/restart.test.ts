/**
 * A server killed with SIGKILL and started again on the same data dir and
 * ports: the clients reconnect by themselves (their tickets died with the
 * server's ticket keys, so they fall back to a full handshake), a send made
 * while the server was down is retried with its client_msg_id and delivered
 * once, and nothing acknowledged is lost.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { direct, textOf } from "../src/content.js";
import { EntryKind } from "../src/gen/bubble_pb.js";
import { connectClient, type TestClient } from "./support/clients.js";
import { serverBinary, TestServer } from "./support/server.js";
import { within } from "./support/wait.js";

const binary = serverBinary();
if (binary.missing) console.log(binary.missing);

const STEP = 15_000;

describe("a killed and restarted server", { skip: binary.missing, timeout: 300_000 }, () => {
  let server: TestServer;
  const open: TestClient[] = [];

  before(async () => {
    server = await TestServer.start(binary.path!);
  });

  after(async () => {
    for (const c of open) c.client.close();
    await server?.stop();
  });

  it("kill -9, start again: clients reconnect by themselves, a send made meanwhile lands once, nothing acknowledged is lost", async () => {
    const alice = await connectClient(server, "alice");
    const bob = await connectClient(server, "bob");
    open.push(alice, bob);

    const before = await within(alice.client.send(direct("bob"), "before the kill"), STEP, "the first send");
    await bob.events.until(() => bob.events.texts().includes("before the kill"), STEP, "bob to receive it");

    await server.kill();
    await alice.events.until(() => alice.events.all("disconnected").length === 1, STEP, "alice to notice");
    await bob.events.until(() => bob.events.all("disconnected").length === 1, STEP, "bob to notice");
    assert.equal(alice.events.all("disconnected")[0]!.willReconnect, true);

    // Sent while no server runs: retried with the same client_msg_id until one answers.
    const whileDown = alice.client.send(direct("bob"), "while the server was down");

    await server.launch();
    await alice.events.untilCount("connected", 2, STEP);
    await bob.events.untilCount("connected", 2, STEP);
    assert.equal(alice.events.all("connected")[1]!.resumed, false, "a restarted server has new ticket keys: a full handshake");
    // Each client offered its ticket first (refused: the keys that sealed it died with the process), then fell back.
    assert.equal(await server.counter('bubble_handshakes_total{result="failed"}'), 2);
    assert.equal(await server.counter('bubble_handshakes_total{result="full"}'), 2);

    const ack = await within(whileDown, STEP, "the send made while the server was down");
    assert.equal(ack.duplicate, false);
    await within(alice.client.send(direct("bob"), "after the restart"), STEP, "a send after the restart");
    await bob.events.until(() => bob.events.texts().includes("after the restart"), STEP, "bob to receive the later messages");
    await bob.client.settled();
    assert.deepEqual(bob.events.texts(), ["before the kill", "while the server was down", "after the restart"], "in order, each once");

    const history = await within(bob.client.history(direct("alice")), STEP, "bob's history");
    const messages = history.entries.filter((e) => e.kind === EntryKind.MESSAGE).map((e) => textOf(e));
    assert.deepEqual(messages, ["after the restart", "while the server was down", "before the kill"], "the store kept every acknowledged message");
    const list = await within(alice.client.conversations(), STEP, "alice's conversation list");
    assert.equal(textOf(list.conversations[0]!.lastEntry), "after the restart");
    assert.ok(before.version < ack.version);
  });
});
