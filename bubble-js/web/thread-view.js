/**
 * Draws the open conversation: its messages (keyed, so a redraw touches
 * only what changed and the scroll position holds), the header's presence
 * or typing line, and the "older messages" line that scrolling up fills.
 */
import { el, shortTime } from "./dom.js";

const STATE_LABEL = { sending: "sending…", sent: "sent", read: "read", failed: "not sent" };

/** How close to the top (px) scrolling must come to load the older page. */
const OLDER_THRESHOLD = 80;

export class ThreadView {
  /** `onOlder()` asks for the older page; `onRecall(message)` recalls an own message. */
  constructor({ onOlder, onRecall }) {
    this.section = document.getElementById("thread");
    this.title = document.getElementById("thread-title");
    this.status = document.getElementById("thread-status");
    this.scroller = document.getElementById("messages");
    this.list = document.getElementById("message-list");
    this.history = document.getElementById("history-status");
    this.onOlder = onOlder;
    this.onRecall = onRecall;
    this.nodes = new Map();
    this.thread = undefined;
    this.scroller.addEventListener("scroll", () => this.maybeOlder(), { passive: true });
  }

  /** Starts showing `thread` (empty until its first page arrives). */
  show(thread, title) {
    this.thread = thread;
    this.nodes.clear();
    this.list.replaceChildren();
    this.section.dataset.conversation = thread.key;
    this.title.textContent = title;
    this.render({ toBottom: true });
  }

  /**
   * Redraws the messages. `toBottom` scrolls to the newest; `keepFromBottom`
   * keeps what the user looks at in place while an older page is added
   * above it; otherwise a reader at the bottom stays at the bottom.
   */
  render({ toBottom = false, keepFromBottom = false } = {}) {
    const thread = this.thread;
    if (!thread) return;
    const s = this.scroller;
    const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 60;
    const fromBottom = s.scrollHeight - s.scrollTop;
    const messages = thread.ordered();
    const keep = new Set();
    messages.forEach((message, index) => {
      let node = this.nodes.get(message.key);
      if (!node) {
        node = el("li", { class: "msg" });
        this.nodes.set(message.key, node);
      }
      this.fill(node, message, thread);
      keep.add(message.key);
      if (this.list.children[index] !== node) this.list.insertBefore(node, this.list.children[index] ?? null);
    });
    for (const [key, node] of this.nodes) {
      if (!keep.has(key)) {
        node.remove();
        this.nodes.delete(key);
      }
    }
    this.history.dataset.hasMore = String(thread.hasMore);
    this.history.dataset.loading = String(thread.loadingOlder);
    this.history.textContent = thread.loadingOlder ? "Loading messages…" : thread.loadFailed ? "Could not load the messages: scroll up to try again" : !thread.loadedOnce ? "Loading messages…" : thread.hasMore ? "Scroll up for older messages" : messages.length ? "The beginning of the conversation" : "No messages yet: say hello";
    if (keepFromBottom) s.scrollTop = s.scrollHeight - fromBottom;
    else if (toBottom || atBottom) s.scrollTop = s.scrollHeight;
    // A first page shorter than the screen cannot be scrolled up: fetch on.
    if (thread.loadedOnce && !thread.loadingOlder && !thread.loadFailed && thread.hasMore && s.scrollHeight <= s.clientHeight) this.onOlder();
  }

  /** Puts `message` into its node, when anything it shows changed. */
  fill(node, message, thread) {
    const state = thread.stateOf(message);
    const signature = [message.text, state, message.recalled, message.edited, message.version, message.time].join("|");
    if (node.dataset.signature === signature) return;
    node.dataset.signature = signature;
    node.className = `msg ${message.notice ? "notice" : message.out ? "out" : "in"}`;
    node.dataset.key = message.key;
    node.dataset.state = state;
    if (message.version !== undefined) node.dataset.version = String(message.version);
    if (message.recalled) node.dataset.recalled = "true";
    const showSender = !message.out && !message.notice && !thread.isDirect;
    const text = message.recalled
      ? el("p", { class: "text recalled" }, message.out ? "You recalled this message" : "This message was recalled")
      : el("p", { class: "text" }, message.text);
    const canRecall = message.out && !message.notice && !message.recalled && message.id && state !== "failed";
    const bubble = el(
      "div",
      { class: "bubble", title: message.error },
      showSender ? el("span", { class: "sender" }, message.sender) : undefined,
      message.replyTo ? el("span", { class: "reply" }, `${message.replyTo.sender}: ${message.replyTo.preview}`) : undefined,
      text,
      el(
        "span",
        { class: "meta" },
        message.edited && !message.recalled ? "edited · " : "",
        el("time", {}, shortTime(message.time)),
        message.out && !message.notice ? el("span", { class: "state" }, ` · ${STATE_LABEL[state] ?? state}`) : undefined,
      ),
    );
    const parts = [bubble];
    if (canRecall) parts.push(el("button", { type: "button", class: "recall", title: "Recall this message (within 2 minutes)", onclick: () => this.onRecall(message) }, "Recall"));
    node.replaceChildren(...parts);
  }

  /** The header's second line: who types, else whether the peer is online. */
  setStatus({ typingUser, presence, isDirect }) {
    this.status.dataset.typing = String(Boolean(typingUser));
    if (presence !== undefined) this.status.dataset.presence = presence ? "online" : "offline";
    else delete this.status.dataset.presence;
    if (typingUser) this.status.textContent = isDirect ? "typing…" : `${typingUser} is typing…`;
    else if (isDirect) this.status.textContent = presence === undefined ? "" : presence ? "online" : "offline";
    else this.status.textContent = "group";
  }

  maybeOlder() {
    const thread = this.thread;
    if (thread && thread.hasMore && !thread.loadingOlder && thread.loadedOnce && this.scroller.scrollTop < OLDER_THRESHOLD) {
      thread.loadFailed = false;
      this.onOlder();
    }
  }

  /** Closes the view (the conversation list shows alone on a phone). */
  hide() {
    this.thread = undefined;
    delete this.section.dataset.conversation;
  }
}
