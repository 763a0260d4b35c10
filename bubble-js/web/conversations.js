/**
 * The conversation list as data: loaded once from `Conversations`, then
 * kept current by applying the entries the client delivers, with the rules
 * of docs/protocol.md 4.4b (no polling). No DOM here: list-view.js draws it.
 */
import { ContentType, ConversationKind, Direction, EntryKind, conversationKey, customOf, direct, group, mediaOf, superGroup, systemConversation, textOf } from "./bubble.js";
import { hex } from "./dom.js";

/** The Conversation a key such as "direct:bob" names (the inverse of conversationKey). */
export function conversationFromKey(key) {
  const at = key.indexOf(":");
  const kind = key.slice(0, at);
  const id = key.slice(at + 1);
  if (kind === "direct") return direct(id);
  if (kind === "group") return group(id);
  if (kind === "super_group") return superGroup(id);
  if (kind === "system") return systemConversation();
  throw new Error(`"${key}" names no conversation (direct:, group:, super_group: or system:)`);
}

/**
 * Why `id` is not a usable user or group id, or undefined when it is: the
 * server's rule (1 to 128 bytes, no control characters, none of : / | #).
 */
export function idProblem(id) {
  const bytes = new TextEncoder().encode(id).length;
  if (bytes === 0 || bytes > 128) return `an id is 1 to 128 bytes; "${id.slice(0, 20)}" has ${bytes}`;
  const bad = [...id].find((c) => /[\p{Cc}:/|#]/u.test(c));
  if (bad) return `an id may not contain ${JSON.stringify(bad)} (nor control characters, :, /, | or #)`;
  return undefined;
}

/** What a conversation is called on screen. */
export function titleOf(conversation) {
  switch (conversation.kind) {
    case ConversationKind.GROUP:
    case ConversationKind.SUPER_GROUP:
      return `#${conversation.id}`;
    case ConversationKind.SYSTEM:
      return "System";
    default:
      return conversation.id;
  }
}

/** One line of text for a message's content, whatever its type. */
export function contentText(content) {
  if (!content) return "";
  switch (content.type) {
    case ContentType.TEXT:
      return textOf(content) ?? "";
    case ContentType.MEDIA: {
      const media = mediaOf(content);
      return `[file] ${media?.name || media?.mime || ""}`.trim();
    }
    case ContentType.VOICE:
      return "[voice message]";
    case ContentType.CUSTOM:
      return describeCustom(customOf(content));
    default:
      return "(a message this page cannot show)";
  }
}

/** Group change notices (protocol.md 4.7a) in words; other custom contents by their type. */
function describeCustom(custom) {
  if (custom?.type !== "bubble.group") return `[${custom?.type || "custom"}]`;
  let event;
  try {
    event = JSON.parse(new TextDecoder().decode(custom.body));
  } catch {
    return "[a group notice]";
  }
  const users = (event.users ?? []).join(", ");
  switch (event.event) {
    case "joined":
      return `${event.by} added ${users}`;
    case "removed":
      return `${event.by} removed ${users}`;
    case "info":
      return `${event.by} changed the group's info`;
    case "role":
      return `${event.user} is now ${event.role === "admin" ? "an admin" : "a member"}`;
    case "owner":
      return `${event.user} owns the group now`;
    case "mute":
      return event.until > 0 ? `${event.by} muted ${event.user}` : `${event.by} unmuted ${event.user}`;
    case "dismissed":
      return `${event.by} dismissed the group`;
    default:
      return `[group: ${event.event}]`;
  }
}

/** The list's sort key for a message (protocol.md 4.4b): server time, then the position's low 20 bits. */
export function activityOf(serverTime, position) {
  return (BigInt(serverTime) << 20n) + (BigInt(position) & 0xfffffn);
}

/** What a row shows of its newest message. */
function lastOf(entry, me) {
  return {
    id: hex(entry.serverMsgId),
    sender: entry.sender,
    out: entry.sender === me,
    text: contentText(entry.content),
    time: Number(entry.serverTime),
    recalled: false,
    deleted: false,
  };
}

/** Whether a received message mentions `me` (by name or @all). */
function mentions(entry, me) {
  const meta = entry.meta;
  return Boolean(meta && (meta.mentionAll || meta.mentions?.includes(me)));
}

/** One row. `unread` counts what the summary said plus what arrived since, less what was read. */
class Row {
  constructor(conversation) {
    this.key = conversationKey(conversation);
    this.conversation = conversation;
    this.title = titleOf(conversation);
    this.last = undefined;
    this.activity = 0n;
    /** Unread messages the summary counted (their ids are not known), and the newest position it covered. */
    this.baseUnread = 0;
    this.basePosition = 0n;
    /** Received messages since the summary, not read yet: id → position (version, or seq in a super group). */
    this.liveUnread = new Map();
    this.readUpTo = 0n;
    this.peerReadUpTo = 0n;
    /** The newest super-group seq this row shows. */
    this.lastSeq = 0n;
    this.pinned = false;
    this.muted = false;
    this.mentioned = false;
  }

  get unread() {
    return this.baseUnread + this.liveUnread.size;
  }

  /** The read mark moved to `upTo`: what is at or below it is read. */
  readTo(upTo) {
    if (upTo > this.readUpTo) this.readUpTo = upTo;
    if (this.readUpTo >= this.basePosition) this.baseUnread = 0;
    for (const [id, position] of this.liveUnread) if (position <= this.readUpTo) this.liveUnread.delete(id);
    if (this.unread === 0) this.mentioned = false;
  }

  /** A message this row counted as unread is gone (recalled, deleted). */
  forget(id) {
    this.liveUnread.delete(id);
  }

  settings(settings) {
    this.pinned = Boolean(settings?.pinned);
    this.muted = Boolean(settings?.muted);
  }
}

export class ConversationList {
  /** The list of user `me`; empty until load(). */
  constructor(me) {
    this.me = me;
    this.rows = new Map();
    /** The inbox version the loaded list covers; entries at or below it are in it already. */
    this.version = undefined;
    this.waiting = [];
  }

  get loaded() {
    return this.version !== undefined;
  }

  /** Takes a ConversationList answer; applies what arrived while it was on its way. */
  load(list) {
    this.rows.clear();
    for (const summary of list.conversations) {
      const row = new Row(summary.conversation);
      const last = summary.lastEntry ?? summary.lastChannelEntry;
      if (last) {
        row.last = lastOf(last, this.me);
        row.last.recalled = last.kind === EntryKind.RECALL;
        row.last.deleted = last.kind === EntryKind.DELETE;
        row.basePosition = summary.lastChannelEntry ? summary.lastChannelEntry.seq : last.version;
        row.lastSeq = summary.lastChannelEntry?.seq ?? 0n;
      }
      row.activity = summary.activity;
      row.baseUnread = Number(summary.unread);
      row.readUpTo = summary.readUpTo;
      row.peerReadUpTo = summary.peerReadUpTo;
      row.mentioned = summary.mentioned;
      row.settings(summary.settings);
      this.rows.set(row.key, row);
    }
    this.version = list.maxVersion;
    const waiting = this.waiting;
    this.waiting = [];
    for (const apply of waiting) apply();
  }

  /** The row of `key`, if listed. */
  row(key) {
    return this.rows.get(key);
  }

  /** Rows as shown: pinned first, then newest activity first. */
  sorted() {
    return Array.from(this.rows.values()).sort((a, b) => {
      if (a.pinned !== b.pinned) return a.pinned ? -1 : 1;
      return a.activity === b.activity ? 0 : a.activity > b.activity ? -1 : 1;
    });
  }

  /** The row for a conversation, made when its first message arrives. */
  rowFor(conversation) {
    const key = conversationKey(conversation);
    let row = this.rows.get(key);
    if (!row) {
      row = new Row(conversation);
      this.rows.set(key, row);
    }
    return row;
  }

  /**
   * An inbox entry, as the client delivers them (in version order, once).
   * Own sends come here too (built from their ack): a repeat of one is
   * harmless. Returns the key of the row that changed, if any.
   */
  applyEntry(entry) {
    if (!this.loaded) {
      this.waiting.push(() => this.applyEntry(entry));
      return undefined;
    }
    if (entry.version <= this.version || !entry.conversation) return undefined;
    const key = conversationKey(entry.conversation);
    const id = hex(entry.serverMsgId);
    switch (entry.kind) {
      case EntryKind.MESSAGE:
      case EntryKind.SYSTEM_NOTICE: {
        const row = this.rowFor(entry.conversation);
        row.last = lastOf(entry, this.me);
        row.activity = activityOf(entry.serverTime, entry.version);
        if (entry.direction === Direction.IN && entry.version > row.readUpTo) {
          row.liveUnread.set(id, entry.version);
          if (mentions(entry, this.me)) row.mentioned = true;
        }
        return key;
      }
      case EntryKind.RECALL:
      case EntryKind.DELETE: {
        const row = this.rows.get(key);
        if (!row) return undefined;
        if (row.last?.id === id) row.last = { ...row.last, recalled: entry.kind === EntryKind.RECALL, deleted: entry.kind === EntryKind.DELETE };
        row.forget(id);
        return key;
      }
      case EntryKind.EDIT: {
        const row = this.rows.get(key);
        if (row?.last?.id !== id) return undefined;
        row.last = { ...row.last, text: contentText(entry.content) };
        return key;
      }
      case EntryKind.READ_CURSOR: {
        const row = this.rows.get(key);
        row?.readTo(entry.readUpTo);
        return row && key;
      }
      case EntryKind.READ_RECEIPT: {
        const row = this.rows.get(key);
        if (row && entry.readUpTo > row.peerReadUpTo) row.peerReadUpTo = entry.readUpTo;
        return row && key;
      }
      case EntryKind.SETTINGS: {
        // A conversation with settings but no message yet is not listed.
        const row = this.rows.get(key);
        row?.settings(entry.meta?.settings);
        return row && key;
      }
      default:
        return undefined;
    }
  }

  /** A super group's log entry (seq order per group). Returns the changed row's key. */
  applyChannel(entry) {
    if (!this.loaded) {
      this.waiting.push(() => this.applyChannel(entry));
      return undefined;
    }
    const conversation = superGroup(entry.groupId);
    const row = this.rowFor(conversation);
    if (entry.seq <= row.lastSeq) return undefined;
    row.lastSeq = entry.seq;
    const id = hex(entry.serverMsgId);
    switch (entry.kind) {
      case EntryKind.MESSAGE:
      case EntryKind.SYSTEM_NOTICE:
        row.last = lastOf(entry, this.me);
        row.activity = activityOf(entry.serverTime, entry.seq);
        if (entry.sender !== this.me && entry.seq > row.readUpTo) {
          row.liveUnread.set(id, entry.seq);
          if (mentions(entry, this.me)) row.mentioned = true;
        }
        break;
      case EntryKind.RECALL:
        if (row.last?.id === id) row.last = { ...row.last, recalled: true };
        row.forget(id);
        break;
      case EntryKind.EDIT:
        if (row.last?.id === id) row.last = { ...row.last, text: contentText(entry.content) };
        break;
      default:
        break;
    }
    return row.key;
  }

  /** This device marked `key` read up to `upTo`. */
  markedRead(key, upTo) {
    this.rows.get(key)?.readTo(upTo);
  }
}
