/**
 * docs/protocol.md section 2: the frame header, checked against the
 * document's "Example" (read from the document itself) byte for byte, and
 * the refusals the section lists.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";

import { concat, fromHex, toHex } from "../src/bytes.js";
import { decodeFrame, decodeHeader, encodeFrame, FLAG_ENCRYPTED, FLAG_RESPONSE, FrameError, HEADER_LEN } from "../src/frame.js";
import { Command } from "../src/commands.js";
import { ContentType, ConversationKind, SendRequestSchema } from "../src/gen/bubble_pb.js";
import { readDoc } from "./support/paths.js";

/** The example's body and frame header, as the document prints them. */
function protocolExample(): { body: Uint8Array; header: Uint8Array } {
  const doc = readDoc("protocol.md");
  const example = doc.slice(doc.indexOf("### Example"));
  const block = /```text\n([\s\S]*?)```/.exec(example)![1]!;
  const lines = block.split("\n");
  const bodyStart = lines.findIndex((l) => l.startsWith("body (protobuf"));
  const bodyHex: string[] = [];
  for (const line of lines.slice(bodyStart + 1)) {
    if (line.trim() === "") break;
    bodyHex.push(/^((?:[0-9a-f]{2} )+)/.exec(line + " ")![1]!);
  }
  const frameLine = lines[lines.findIndex((l) => l.startsWith("frame:")) + 1]!;
  const headerHex = frameLine.split("|").slice(0, 6).join(" ");
  return { body: fromHex(bodyHex.join("")), header: fromHex(headerHex) };
}

describe("docs/protocol.md section 2: the frame", () => {
  const example = protocolExample();

  it("the example's SendRequest encodes to the document's 30 body bytes", () => {
    const request = create(SendRequestSchema, {
      to: { kind: ConversationKind.DIRECT, id: "bob" },
      clientMsgId: "c1",
      clientSeq: 1n,
      createTime: 1700000000000n,
      content: { type: ContentType.TEXT, body: new TextEncoder().encode("hi") },
    });
    const body = toBinary(SendRequestSchema, request);
    assert.equal(body.length, 30);
    assert.equal(toHex(body), toHex(example.body));
  });

  it("the example frame (Send 16, seq 7, unencrypted) encodes byte for byte", () => {
    const bytes = encodeFrame({ flags: 0, command: Command.Send, seq: 7, body: example.body });
    assert.equal(toHex(bytes.subarray(0, HEADER_LEN)), toHex(example.header));
    assert.equal(toHex(bytes), toHex(concat(example.header, example.body)));
  });

  it("the example frame decodes to its fields and its SendRequest", () => {
    const frame = decodeFrame(concat(example.header, example.body));
    assert.deepEqual({ flags: frame.flags, command: frame.command, seq: frame.seq }, { flags: 0, command: 16, seq: 7 });
    const request = fromBinary(SendRequestSchema, frame.body);
    assert.equal(request.to?.id, "bob");
    assert.equal(request.to?.kind, ConversationKind.DIRECT);
    assert.equal(request.clientMsgId, "c1");
    assert.equal(request.clientSeq, 1n);
    assert.equal(request.createTime, 1700000000000n);
    assert.equal(new TextDecoder().decode(request.content!.body), "hi");
  });

  it("an answer carries the RESPONSE flag (0x02) and the request's seq", () => {
    const bytes = encodeFrame({ flags: FLAG_RESPONSE, command: Command.SendAck, seq: 7, body: new Uint8Array(0) });
    assert.equal(toHex(bytes), "b0bb0102001100000007" + "00000000");
  });

  it("refuses bad magic, another version, unknown flag bits and a body over the limit from the header alone", () => {
    const good = encodeFrame({ flags: 0, command: 2, seq: 1, body: new Uint8Array(3) });
    const with_ = (at: number, byte: number) => {
      const b = good.slice();
      b[at] = byte;
      return b;
    };
    assert.throws(() => decodeHeader(with_(0, 0xb1)), /bad magic/);
    assert.throws(() => decodeHeader(with_(2, 2)), /protocol version 2/);
    assert.throws(() => decodeHeader(with_(3, 0x04)), /unknown flag bits/);
    assert.throws(() => decodeHeader(good, 2), /over the limit of 2/);
    assert.doesNotThrow(() => decodeHeader(with_(3, FLAG_ENCRYPTED | FLAG_RESPONSE)));
  });

  it("a WebSocket message must be exactly one frame: shorter or longer than its header says is an error", () => {
    const good = encodeFrame({ flags: 0, command: 2, seq: 1, body: new Uint8Array(3) });
    assert.throws(() => decodeFrame(good.subarray(0, 16)), FrameError);
    assert.throws(() => decodeFrame(concat(good, new Uint8Array(1))), /not exactly one frame/);
    assert.throws(() => decodeFrame(good.subarray(0, 10)), /header is 14 bytes/);
  });

  it("refuses to encode what the header cannot carry", () => {
    assert.throws(() => encodeFrame({ flags: 0, command: 0x10000, seq: 1, body: new Uint8Array(0) }), /command/);
    assert.throws(() => encodeFrame({ flags: 0, command: 2, seq: 2 ** 32, body: new Uint8Array(0) }), /seq/);
    assert.throws(() => encodeFrame({ flags: 0x80, command: 2, seq: 1, body: new Uint8Array(0) }), /flags/);
  });
});
