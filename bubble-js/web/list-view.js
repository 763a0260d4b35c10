/**
 * Draws the conversation list and the search results. Each row carries its
 * state in data attributes (unread, pinned, mentioned), which the styles
 * and the browser tests read.
 */
import { ConversationKind, conversationKey } from "./bubble.js";
import { titleOf } from "./conversations.js";
import { el, hueOf, initials, pinIcon, shortTime } from "./dom.js";

/** An avatar circle for a name. */
export function avatar(name) {
  return el("span", { class: "avatar", "aria-hidden": "true", style: { "--hue": String(hueOf(name)) } }, initials(name));
}

function preview(row, typingUser) {
  if (typingUser) return el("span", { class: "typing-preview" }, `${typingUser} is typing…`);
  const last = row.last;
  if (!last) return "";
  if (last.recalled) return el("em", {}, last.out ? "You recalled a message" : "A message was recalled");
  if (last.deleted) return el("em", {}, "A message was deleted");
  const who = last.out ? "You: " : row.conversation.kind === ConversationKind.DIRECT ? "" : `${last.sender}: `;
  return `${who}${last.text}`;
}

/**
 * Redraws the rows of `list` into `container`. `typing` maps a row key to
 * who types there; `openKey` is the open conversation's.
 */
export function renderList(container, list, { typing, openKey, onOpen }) {
  const rows = list.sorted().map((row) => {
    const unread = row.unread;
    return el(
      "li",
      {
        class: "row",
        "data-conversation": row.key,
        "data-unread": String(unread),
        "data-pinned": row.pinned ? "true" : undefined,
        "data-mentioned": row.mentioned ? "true" : undefined,
        "data-muted": row.muted ? "true" : undefined,
        "aria-current": row.key === openKey ? "true" : undefined,
      },
      el(
        "button",
        { type: "button", class: "row-button", onclick: () => onOpen(row.key) },
        avatar(row.title),
        el(
          "span",
          { class: "row-main" },
          el(
            "span",
            { class: "row-top" },
            el("span", { class: "row-title" }, row.title),
            row.pinned ? el("span", { class: "marker pin", title: "Pinned" }, pinIcon()) : undefined,
            row.muted ? el("span", { class: "marker muted", title: "Muted" }, "muted") : undefined,
            el("span", { class: "row-time" }, shortTime(row.last?.time)),
          ),
          el(
            "span",
            { class: "row-bottom" },
            el("span", { class: "row-preview" }, preview(row, typing.get(row.key))),
            row.mentioned ? el("span", { class: "marker mention", title: "You were mentioned" }, "@") : undefined,
            unread > 0 ? el("span", { class: "badge", "aria-label": `${unread} unread` }, unread > 99 ? "99+" : String(unread)) : undefined,
          ),
        ),
      ),
    );
  });
  container.replaceChildren(...rows);
}

/** Draws search hits; a click opens the hit's conversation. */
export function renderSearch(container, results, { words, onOpen }) {
  const hits = results.hits.map((hit) => {
    const key = conversationKey(hit.conversation);
    const title = titleOf(hit.conversation);
    return el(
      "li",
      { class: "row hit", "data-conversation": key },
      el(
        "button",
        { type: "button", class: "row-button", onclick: () => onOpen(key) },
        avatar(title),
        el(
          "span",
          { class: "row-main" },
          el("span", { class: "row-top" }, el("span", { class: "row-title" }, title), el("span", { class: "row-time" }, shortTime(hit.serverTime))),
          el("span", { class: "row-bottom" }, el("span", { class: "row-preview" }, `${hit.sender}: ${hit.text}`)),
        ),
      ),
    );
  });
  const total = Number(results.total);
  const heading = el("p", { class: "search-summary" }, total === 0 ? `No messages match “${words}”.` : `${total} message${total === 1 ? " matches" : "s match"} “${words}”`);
  container.replaceChildren(heading, el("ul", { class: "rows" }, hits));
}
