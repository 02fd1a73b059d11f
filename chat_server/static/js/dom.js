// Small DOM helpers. Every string a user or the server supplied goes in as a
// text node or a property, never through innerHTML.

export function $(id) {
  return document.getElementById(id);
}

/**
 * `el("li", {className: "msg", dataset: {id}}, child, "text", ...)`.
 * Strings become text nodes; `null`/`false` children are skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "attrs") {
      for (const [name, v] of Object.entries(value)) node.setAttribute(name, String(v));
    } else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

// -- icons -----------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  megaphone: "M3 10v4a1 1 0 0 0 1 1h2l1.5 5h2.3L8.4 15H9l8 4V5L9 9H4a1 1 0 0 0-1 1Zm16-1.5v7a3.5 3.5 0 0 0 0-7Z",
};

/** A decorative icon drawn with SVG (emoji fonts are not everywhere). */
export function icon(name, size = 20) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

// -- people ------------------------------------------------------------------------

function hash(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** A person's colour, stable across sessions and pages. */
export function hueOf(name) {
  return hash(name) % 360;
}

export function initials(name) {
  const letters = [...name.replace(/[^A-Za-z0-9]/g, "")];
  return (letters[0] ?? name[0] ?? "?").toUpperCase();
}

export function avatar(name, extraClass = "") {
  const node = el("span", { className: `avatar ${extraClass}`.trim(), attrs: { "aria-hidden": "true" } }, initials(name));
  node.style.setProperty("--hue", String(hueOf(name)));
  return node;
}

// -- time --------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const yearDayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });

export function timeElement(ts) {
  const date = new Date(ts);
  return el("time", { dateTime: date.toISOString(), title: fullFormat.format(date) }, timeFormat.format(date));
}

export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(ts, now = Date.now()) {
  if (dayKey(ts) === dayKey(now)) return "Today";
  if (dayKey(ts) === dayKey(now - 86_400_000)) return "Yesterday";
  const date = new Date(ts);
  return date.getFullYear() === new Date(now).getFullYear() ? dayFormat.format(date) : yearDayFormat.format(date);
}

// -- text --------------------------------------------------------------------------

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;

/** Message text as nodes: plain text, with http(s) links made clickable. */
export function richText(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let raw = match[0];
    const trailing = raw.match(TRAILING_PUNCTUATION);
    if (trailing) raw = raw.slice(0, -trailing[0].length);
    let url = null;
    try {
      url = new URL(raw);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, raw));
    last = match.index + raw.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
