/**
 * The web chat's controller: signs in, keeps the conversation list and the
 * open conversation current from the client's events, and turns what the
 * user does (open, send, scroll up, recall, search) into requests. The
 * models (conversations.js, thread.js) hold the state; the views draw it.
 */
import { Direction, EntryKind, ErrorCode, conversationKey, newClientMsgId, textContent } from "./bubble.js";
import { ConversationList, conversationFromKey, idProblem, titleOf } from "./conversations.js";
import { pinIcon, toast } from "./dom.js";
import { renderList, renderSearch } from "./list-view.js";
import { NoDemoApp, createClient, demoToken, serverKey, userOfToken } from "./session.js";
import { Thread, fromChannelEntry } from "./thread.js";
import { ThreadView } from "./thread-view.js";

const $ = (id) => document.getElementById(id);
const root = $("app");

/** How often the open 1:1's presence is asked again (presence has no push). */
const PRESENCE_EVERY_MS = 10_000;
/** At most one typing notice per conversation this often (the server passes one per 2 s). */
const TYPING_EVERY_MS = 3_000;
/** How long "typing…" shows after the last notice. */
const TYPING_SHOWS_MS = 5_000;
/** Messages per history page. */
const PAGE = 30;

const CONNECTION_LABEL = { connecting: "connecting…", online: "online", reconnecting: "reconnecting…", offline: "offline" };
/** What the open conversation says while it is not live. */
const CONNECTION_BANNER = {
  connecting: "Connecting…",
  online: "",
  reconnecting: "Reconnecting… messages sent to you meanwhile arrive when it is back.",
  offline: "Offline: messages sent to you meanwhile arrive when the network is back.",
};

/** The signed-in session, or undefined on the login screen. */
let session;

const threadView = new ThreadView({
  onOlder: () => session?.thread && loadOlder(session.thread),
  onRecall: (message) => recall(message),
});

function setScreen(screen) {
  root.dataset.screen = screen;
}

function setConnection(state) {
  root.dataset.connection = state;
  $("connection").textContent = CONNECTION_LABEL[state];
  $("connection-banner").textContent = CONNECTION_BANNER[state];
}

// ------------------------------------------------------------ sign in

async function signIn(login) {
  const button = $("login-submit");
  const error = $("login-error");
  button.disabled = true;
  error.hidden = true;
  try {
    const key = await serverKey();
    let app = login.app;
    let token = login.token;
    let user = login.user;
    if (token) {
      user = userOfToken(token);
      if (!app) throw new Error("give the app id the token is for");
    } else {
      const problem = idProblem(user ?? "");
      if (problem) throw new Error(`Type a user name, e.g. alice: ${problem}`);
      ({ app, token } = await demoToken(user));
    }
    sessionStorage.setItem("bubble.login", JSON.stringify(login));
    start({ app, user, token, key });
  } catch (e) {
    if (e instanceof NoDemoApp) $("login-token-details").open = true;
    error.textContent = e.message;
    error.hidden = false;
    setScreen("login");
  } finally {
    button.disabled = false;
  }
}

function start({ app, user, token, key }) {
  const client = createClient({ app, user, token, key });
  session = {
    client,
    me: user,
    list: new ConversationList(user),
    thread: undefined,
    /** row key → who types there */
    typing: new Map(),
    typingTimers: new Map(),
    lastTypingSent: 0,
    presence: undefined,
    /** row key → the newest position asked to be marked read */
    marking: new Map(),
    timers: [],
  };
  $("me").textContent = user;
  $("me").dataset.user = user;
  setConnection("connecting");
  delete root.dataset.synced;
  setScreen("list");
  renderRows();
  client.on("connected", () => {
    if (session?.client !== client) return;
    setConnection("online");
    if (!session.list.loaded) loadList();
    refreshPresence();
  });
  client.on("disconnected", ({ willReconnect }) => {
    if (session?.client !== client) return;
    setConnection(willReconnect && navigator.onLine ? "reconnecting" : "offline");
    // Nobody is seen typing, nor online, through a dead connection.
    for (const key of [...session.typing.keys()]) stopTyping(key);
    session.presence = undefined;
    updateStatus();
  });
  // Caught up with what the inbox held when this device connected (the
  // SDK's `synced`, after each connect): until then, entries of the backlog
  // still arrive, and join an open conversation as they do.
  client.on("synced", ({ version }) => {
    if (session?.client === client) root.dataset.synced = String(version);
  });
  client.on("entry", onEntry);
  client.on("channel", onChannel);
  client.on("typing", onTyping);
  client.on("kick", ({ reason }) => {
    toast(`Signed out by the server: ${reason || "this device signed in elsewhere"}`);
    signOut();
  });
  client.on("authFailed", ({ error }) => {
    signOut();
    $("login-error").textContent = `The server refused the sign-in: ${error.message}`;
    $("login-error").hidden = false;
  });
  session.timers.push(setInterval(refreshPresence, PRESENCE_EVERY_MS));
  client.connect().catch((e) => toast(`Could not connect: ${e.message}`));
}

function signOut() {
  if (!session) return;
  session.client.close();
  for (const timer of session.timers) clearInterval(timer);
  for (const timer of session.typingTimers.values()) clearTimeout(timer);
  session = undefined;
  threadView.hide();
  $("conversation-list").replaceChildren();
  $("search-input").value = "";
  $("search-results").hidden = true;
  $("conversation-list").hidden = false;
  sessionStorage.removeItem("bubble.login");
  setConnection("offline");
  setScreen("login");
}

async function loadList() {
  const s = session;
  try {
    const list = await s.client.conversations(0n, 100);
    if (session !== s) return;
    s.list.load(list);
    renderRows();
  } catch (e) {
    toast(`Could not load the conversations: ${e.message}`);
    // Asked again at the next connect, or shortly if the connection stays up.
    setTimeout(() => session === s && !s.list.loaded && s.client.connectionState === "connected" && loadList(), 3000);
  }
}

// ------------------------------------------------------------ events

function onEntry(entry) {
  const s = session;
  if (!s) return; // signed out while the event was on its way
  const changed = s.list.applyEntry(entry);
  const key = entry.conversation && conversationKey(entry.conversation);
  const received = entry.kind === EntryKind.MESSAGE && entry.direction === Direction.IN;
  // Their message is what they were typing.
  if (received) stopTyping(key);
  if (s.thread && key === s.thread.key) {
    if (s.thread.apply(entry)) threadView.render();
    if (received) {
      if (s.thread.isDirect) s.presence = true;
      maybeMarkRead();
    }
  }
  if (changed) renderRows();
}

function onChannel(channelEntry) {
  const s = session;
  if (!s) return; // signed out while the event was on its way
  const changed = s.list.applyChannel(channelEntry);
  const key = `super_group:${channelEntry.groupId}`;
  const received = channelEntry.sender !== s.me;
  if (received) stopTyping(key);
  if (s.thread && key === s.thread.key) {
    if (s.thread.apply(fromChannelEntry(channelEntry, s.me))) threadView.render();
    if (received) maybeMarkRead();
  }
  if (changed) renderRows();
}

function onTyping({ conversation, userId }) {
  const s = session;
  if (!s) return; // signed out while the event was on its way
  if (userId === s.me) return;
  const key = conversationKey(conversation);
  s.typing.set(key, userId);
  clearTimeout(s.typingTimers.get(key));
  s.typingTimers.set(key, setTimeout(() => stopTyping(key), TYPING_SHOWS_MS));
  if (s.thread?.key === key && s.thread.isDirect) s.presence = true;
  renderRows();
  updateStatus();
}

function stopTyping(key) {
  const s = session;
  if (!s?.typing.delete(key)) return;
  clearTimeout(s.typingTimers.get(key));
  renderRows();
  updateStatus();
}

// ------------------------------------------------------------ the list

function renderRows() {
  const s = session;
  if (!s) return;
  renderList($("conversation-list"), s.list, { typing: s.typing, openKey: s.thread?.key, onOpen: openConversation });
  updatePin();
  $("list-empty").hidden = !s.list.loaded || s.list.rows.size > 0;
}

async function search(words) {
  const results = $("search-results");
  if (!words) {
    results.hidden = true;
    $("conversation-list").hidden = false;
    return;
  }
  try {
    const found = await session.client.search({ words, limit: 30 });
    renderSearch(results, found, { words, onOpen: openConversation });
    results.hidden = false;
    $("conversation-list").hidden = true;
    $("list-empty").hidden = true;
  } catch (e) {
    toast(`Search failed: ${e.message}`);
  }
}

// ------------------------------------------------------------ a conversation

function openConversation(key) {
  const s = session;
  const conversation = conversationFromKey(key);
  const row = s.list.row(key);
  const thread = new Thread(conversation, s.me, { peerReadUpTo: row?.peerReadUpTo ?? 0n });
  s.thread = thread;
  s.presence = undefined;
  threadView.show(thread, titleOf(conversation));
  setScreen("thread");
  renderRows();
  updateStatus();
  refreshPresence();
  const input = $("composer-input");
  input.value = "";
  if (matchMedia("(pointer: fine)").matches) input.focus();
  loadOlder(thread);
}

async function loadOlder(thread) {
  if (thread.loadingOlder || !thread.hasMore) return;
  const first = !thread.loadedOnce;
  thread.loadingOlder = true;
  threadView.render();
  try {
    const page = await session.client.history(thread.conversation, thread.before, PAGE);
    thread.addPage(page);
  } catch (e) {
    thread.loadFailed = true;
    toast(`Could not load messages: ${e.message}`);
  } finally {
    thread.loadingOlder = false;
  }
  if (session?.thread !== thread) return;
  threadView.render(first ? { toBottom: true } : { keepFromBottom: true });
  if (first) maybeMarkRead();
}

/** Marks the open conversation read when the user can see it and something new came. */
function maybeMarkRead() {
  const s = session;
  const thread = s?.thread;
  if (!thread?.loadedOnce || root.dataset.screen !== "thread" || document.visibilityState !== "visible") return;
  const newest = thread.newestIncoming();
  const upTo = thread.newestPosition();
  const row = s.list.row(thread.key);
  if (newest === 0n || (row && row.unread === 0 && row.readUpTo >= newest)) return;
  if ((s.marking.get(thread.key) ?? 0n) >= newest) return;
  s.marking.set(thread.key, newest);
  s.list.markedRead(thread.key, upTo);
  renderRows();
  s.client.markRead(thread.conversation, upTo).catch((e) => {
    s.marking.delete(thread.key);
    toast(`Could not mark as read: ${e.message}`);
  });
}

async function refreshPresence() {
  const s = session;
  const thread = s?.thread;
  if (!thread?.isDirect || s.client.connectionState !== "connected") return;
  try {
    const [user] = await s.client.presence([thread.conversation.id]);
    if (s.thread !== thread) return;
    s.presence = Boolean(user?.online);
    updateStatus();
  } catch {
    // Asked again on the next tick.
  }
}

/** The pin button shows whether the open conversation is pinned. */
function updatePin() {
  const thread = session?.thread;
  const pinned = Boolean(thread && session.list.row(thread.key)?.pinned);
  $("pin").setAttribute("aria-pressed", String(pinned));
}

async function togglePin() {
  const s = session;
  const thread = s?.thread;
  if (!thread) return;
  const row = s.list.row(thread.key);
  try {
    const ack = await s.client.settings(thread.conversation, { pinned: !row?.pinned });
    // This device is not sent its own SETTINGS entry: apply the answer.
    s.list.row(thread.key)?.settings(ack.settings);
  } catch (e) {
    toast(`Could not change the pin: ${e.message}`);
  }
  renderRows();
}

function updateStatus() {
  const s = session;
  const thread = s?.thread;
  if (!thread) return;
  threadView.setStatus({ typingUser: s.typing.get(thread.key), presence: thread.isDirect ? s.presence : undefined, isDirect: thread.isDirect });
}

/** The inbox entry of an own send, from its ack: the sending device is not pushed its own copy. */
function ownEntry(conversation, ack, content, clientMsgId) {
  return {
    version: ack.version,
    kind: EntryKind.MESSAGE,
    conversation,
    direction: Direction.OUT,
    serverMsgId: ack.serverMsgId,
    sender: session.me,
    clientMsgId,
    serverTime: ack.serverTime,
    content,
  };
}

async function send() {
  const s = session;
  const input = $("composer-input");
  const text = input.value.trim();
  const thread = s?.thread;
  if (!text || !thread) return;
  input.value = "";
  fitComposer();
  const clientMsgId = newClientMsgId();
  thread.sending(clientMsgId, text);
  threadView.render({ toBottom: true });
  try {
    const content = textContent(text);
    const ack = await s.client.send(thread.conversation, content, { clientMsgId });
    thread.acked(clientMsgId, ack);
    if (thread.isSuperGroup) s.list.applyChannel({ ...ownEntry(thread.conversation, ack, content, clientMsgId), groupId: thread.conversation.id, seq: ack.seq });
    else s.list.applyEntry(ownEntry(thread.conversation, ack, content, clientMsgId));
  } catch (e) {
    thread.failed(clientMsgId, e);
    toast(`Not sent: ${e.message}`);
  }
  if (session?.thread === thread) threadView.render();
  renderRows();
}

async function recall(message) {
  const s = session;
  const thread = s.thread;
  try {
    const ack = await s.client.recall(thread.conversation, message.rawId);
    const recallEntry = { kind: EntryKind.RECALL, conversation: thread.conversation, serverMsgId: message.rawId, version: ack.version };
    thread.apply(recallEntry);
    if (thread.isSuperGroup) s.list.applyChannel({ ...recallEntry, groupId: thread.conversation.id, seq: ack.seq, sender: s.me });
    else s.list.applyEntry(recallEntry);
  } catch (e) {
    toast(e.code === ErrorCode.RECALL_EXPIRED ? "Too late to recall: a message can be recalled for 2 minutes" : `Could not recall: ${e.message}`);
  }
  if (session?.thread === thread) threadView.render();
  renderRows();
}

function onComposerInput() {
  fitComposer();
  const s = session;
  if (!s?.thread || !$("composer-input").value) return;
  const now = Date.now();
  if (now - s.lastTypingSent < TYPING_EVERY_MS) return;
  s.lastTypingSent = now;
  s.client.typing(s.thread.conversation);
}

/** The composer grows with its text, up to a few lines. */
function fitComposer() {
  const input = $("composer-input");
  input.style.setProperty("height", "auto");
  input.style.setProperty("height", `${Math.min(input.scrollHeight, 140)}px`);
}

// ------------------------------------------------------------ wiring

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn({ user: $("login-user").value.trim(), app: $("login-app").value.trim(), token: $("login-token").value.trim() });
});
$("sign-out").addEventListener("click", signOut);
$("back").addEventListener("click", () => {
  if (session) session.thread = undefined;
  threadView.hide();
  setScreen("list");
  renderRows();
});
$("pin").append(pinIcon());
$("pin").addEventListener("click", togglePin);
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
$("composer-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
$("composer-input").addEventListener("input", onComposerInput);
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search($("search-input").value.trim());
});
$("search-input").addEventListener("input", () => {
  if (!$("search-input").value) search("");
});
$("new-chat").addEventListener("click", () => {
  $("new-chat-error").hidden = true;
  $("new-chat-dialog").showModal();
});
$("new-chat-cancel").addEventListener("click", () => $("new-chat-dialog").close());
// Enter in the id field submits too (the one submit button is Open).
$("new-chat-form").addEventListener("submit", (event) => {
  const id = $("new-chat-id").value.trim();
  const kind = new FormData($("new-chat-form")).get("kind");
  const problem = idProblem(id) ?? (id.startsWith("~") ? "ids starting with ~ are reserved" : undefined);
  if (problem) {
    event.preventDefault();
    $("new-chat-error").textContent = problem;
    $("new-chat-error").hidden = false;
    return;
  }
  $("new-chat-id").value = "";
  openConversation(`${kind}:${id}`);
});
document.addEventListener("visibilitychange", maybeMarkRead);
// A hidden tab counts as "in the background": while no device of the user
// is in the foreground, the server also sends push notifications to the
// user's phones (protocol.md 4.9a).
document.addEventListener("visibilitychange", () => {
  const client = session?.client;
  if (!client) return;
  client.setBackground(document.visibilityState === "hidden").catch(() => {
    // Not connected right now: a new connection starts in the foreground.
  });
});
window.addEventListener("focus", maybeMarkRead);
// The browser lost the network: the socket is as good as dead, so drop it
// now (and say "offline") instead of waiting for heartbeats to notice.
window.addEventListener("offline", () => session?.client.reconnect());
// The network is back: reconnect now rather than at the end of the backoff.
window.addEventListener("online", () => session?.client.reconnect());

// A reload of the tab signs in again as the same user.
const saved = sessionStorage.getItem("bubble.login");
if (saved) signIn(JSON.parse(saved));
else setScreen("login");
