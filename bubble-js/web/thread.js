/**
 * One open conversation as data: the messages of its history pages and of
 * the entries that arrive while it is open, in server order, each once,
 * with recalls, edits and read receipts applied. No DOM here:
 * thread-view.js draws it.
 *
 * A message's key is its sender and client message id, so an own message
 * keeps its key from the moment it is typed (before the server knows it)
 * to when it comes back through a sync; entries without a client id (system
 * notices) are keyed by their server id.
 */
import { ConversationKind, Direction, EntryKind, conversationKey } from "./bubble.js";
import { contentText } from "./conversations.js";
import { hex } from "./dom.js";

/** A super group's log entry in the shape of an inbox entry: its seq is its position. */
export function fromChannelEntry(entry, me) {
  return {
    version: entry.seq,
    kind: entry.kind,
    direction: entry.sender === me ? Direction.OUT : Direction.IN,
    serverMsgId: entry.serverMsgId,
    sender: entry.sender,
    clientMsgId: entry.clientMsgId,
    serverTime: entry.serverTime,
    content: entry.content,
    meta: entry.meta,
    readUpTo: 0n,
  };
}

function keyOf(sender, clientMsgId, id) {
  return clientMsgId ? `${sender}/${clientMsgId}` : `id/${id}`;
}

export class Thread {
  constructor(conversation, me, { peerReadUpTo = 0n } = {}) {
    this.conversation = conversation;
    this.key = conversationKey(conversation);
    this.me = me;
    this.isDirect = conversation.kind === ConversationKind.DIRECT;
    this.isSuperGroup = conversation.kind === ConversationKind.SUPER_GROUP;
    /** key → message */
    this.messages = new Map();
    /** server id (hex) → key */
    this.byId = new Map();
    /** Recalls, deletes and edits of messages not loaded yet (older pages come later). */
    this.recalled = new Set();
    this.deleted = new Set();
    this.edits = new Map();
    /** The peer read own messages up to this version (DIRECT). */
    this.peerReadUpTo = peerReadUpTo;
    /** Where the next older page starts, and whether there is one. */
    this.before = 0n;
    this.hasMore = true;
    this.loadingOlder = false;
    /** The last page request failed: no more automatic requests until the user scrolls. */
    this.loadFailed = false;
    this.loadedOnce = false;
    this.localOrder = 0;
  }

  /** A history page (newest first): its messages join, its recalls and receipts apply. */
  addPage(page) {
    const entries = this.isSuperGroup ? page.channelEntries.map((e) => fromChannelEntry(e, this.me)) : page.entries;
    // Oldest first, so a recall on this page finds its message when both are on it.
    for (const entry of [...entries].reverse()) this.apply(entry);
    const oldest = entries.at(-1);
    if (oldest) this.before = oldest.version;
    this.hasMore = page.hasMore && entries.length > 0;
    this.loadedOnce = true;
  }

  /** One entry of this conversation (history or live); returns whether anything changed. */
  apply(entry) {
    const id = hex(entry.serverMsgId);
    switch (entry.kind) {
      case EntryKind.MESSAGE:
      case EntryKind.SYSTEM_NOTICE:
        return this.addMessage(entry, id);
      case EntryKind.RECALL:
        this.recalled.add(id);
        return this.update(id, (m) => (m.recalled = true));
      case EntryKind.DELETE:
        this.deleted.add(id);
        return this.update(id, (m) => (m.deleted = true));
      case EntryKind.EDIT: {
        const edit = { text: contentText(entry.content) };
        this.edits.set(id, edit);
        return this.update(id, (m) => Object.assign(m, edit, { edited: true }));
      }
      case EntryKind.READ_RECEIPT:
        if (entry.readUpTo <= this.peerReadUpTo) return false;
        this.peerReadUpTo = entry.readUpTo;
        return true;
      default:
        return false;
    }
  }

  addMessage(entry, id) {
    const key = keyOf(entry.sender, entry.clientMsgId, id);
    const existing = this.messages.get(key);
    if (existing?.id && existing.version !== undefined) return false; // seen already
    const message = existing ?? { key, order: this.localOrder++ };
    Object.assign(message, {
      id,
      rawId: entry.serverMsgId,
      version: entry.version,
      sender: entry.sender,
      out: entry.direction === Direction.OUT || entry.sender === this.me,
      notice: entry.kind === EntryKind.SYSTEM_NOTICE,
      text: contentText(entry.content),
      time: Number(entry.serverTime),
      state: "sent",
      recalled: this.recalled.has(id),
      deleted: this.deleted.has(id),
      edited: Boolean(entry.meta?.editedAt) || this.edits.has(id),
      replyTo: entry.meta?.replyTo ? { sender: entry.meta.replyTo.sender, preview: entry.meta.replyTo.preview } : undefined,
    });
    if (this.edits.has(id)) message.text = this.edits.get(id).text;
    this.messages.set(key, message);
    this.byId.set(id, key);
    return true;
  }

  update(id, change) {
    const message = this.messages.get(this.byId.get(id));
    if (!message) return false;
    change(message);
    return true;
  }

  /** An own message typed here, on its way to the server. */
  sending(clientMsgId, text) {
    const key = keyOf(this.me, clientMsgId);
    this.messages.set(key, { key, order: this.localOrder++, sender: this.me, out: true, text, time: Date.now(), state: "sending" });
    return key;
  }

  /** The server took it: it has an id and a position now. */
  acked(clientMsgId, ack) {
    const message = this.messages.get(keyOf(this.me, clientMsgId));
    if (!message) return;
    const id = hex(ack.serverMsgId);
    Object.assign(message, { id, rawId: ack.serverMsgId, version: this.isSuperGroup ? ack.seq : ack.version, time: Number(ack.serverTime), state: "sent" });
    this.byId.set(id, message.key);
  }

  /** Sending failed for good (the SDK retried what could be retried). */
  failed(clientMsgId, error) {
    const message = this.messages.get(keyOf(this.me, clientMsgId));
    if (message && message.version === undefined) Object.assign(message, { state: "failed", error: error.message });
  }

  /** Messages in server order; those still on their way last, as typed. */
  ordered() {
    return Array.from(this.messages.values())
      .filter((m) => !m.deleted)
      .sort((a, b) => {
        if (a.version === undefined || b.version === undefined) {
          if (a.version !== b.version) return a.version === undefined ? 1 : -1;
          return a.order - b.order;
        }
        return a.version === b.version ? 0 : a.version < b.version ? -1 : 1;
      });
  }

  /** What an own message shows: "sending", "sent", "read" (the peer's receipt covers it) or "failed". */
  stateOf(message) {
    if (!message.out || message.notice) return "received";
    if (message.state === "sent" && this.isDirect && message.version !== undefined && message.version <= this.peerReadUpTo) return "read";
    return message.state;
  }

  /** The newest position (version, or seq) of a message here: what a MarkRead covers. */
  newestPosition() {
    let newest = 0n;
    for (const m of this.messages.values()) if (m.version !== undefined && m.version > newest) newest = m.version;
    return newest;
  }

  /** The newest position of a received message. */
  newestIncoming() {
    let newest = 0n;
    for (const m of this.messages.values()) if (!m.out && m.version !== undefined && m.version > newest) newest = m.version;
    return newest;
  }
}
