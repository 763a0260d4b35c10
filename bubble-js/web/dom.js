/**
 * Small DOM and formatting helpers shared by the views: nothing here knows
 * about conversations.
 */

/** An element with attributes (`class`, `data-*`, properties for the rest) and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (name === "style") for (const [property, v] of Object.entries(value)) node.style.setProperty(property, v);
    else if (name.startsWith("data-") || name.startsWith("aria-") || name === "role" || name === "title") node.setAttribute(name, String(value));
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node[name] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Lowercase hex of bytes (server message ids). */
export function hex(bytes) {
  let out = "";
  for (const b of bytes ?? []) out += b.toString(16).padStart(2, "0");
  return out;
}

/** "14:05" today, "Mon 14:05" this week, "3 Mar" before. */
export function shortTime(ms) {
  const when = new Date(Number(ms));
  if (!ms || Number.isNaN(when.getTime())) return "";
  const now = new Date();
  const clock = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (when.toDateString() === now.toDateString()) return clock;
  if (now.getTime() - when.getTime() < 6 * 24 * 3600 * 1000) return `${when.toLocaleDateString([], { weekday: "short" })} ${clock}`;
  return when.toLocaleDateString([], { day: "numeric", month: "short" });
}

/** One or two letters for an avatar. */
export function initials(name) {
  const letters = name.replace(/^[#~]/, "").split(/[\s._-]+/).filter(Boolean);
  return ((letters[0]?.[0] ?? "?") + (letters[1]?.[0] ?? "")).toUpperCase();
}

/** A hue from a name, so each person keeps one avatar colour. */
export function hueOf(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** A pin drawn as SVG (emoji fonts are not everywhere): a round head on a needle. */
export function pinIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "pin-icon");
  svg.setAttribute("aria-hidden", "true");
  const needle = document.createElementNS(ns, "line");
  for (const [name, value] of Object.entries({ x1: "8", y1: "9", x2: "8", y2: "15.5" })) needle.setAttribute(name, value);
  const head = document.createElementNS(ns, "circle");
  for (const [name, value] of Object.entries({ cx: "8", cy: "5.5", r: "4.5" })) head.setAttribute(name, value);
  svg.append(needle, head);
  return svg;
}

let toastTimer;

/** Shows a short message at the bottom of the screen (errors the user should see). */
export function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 6000);
}
