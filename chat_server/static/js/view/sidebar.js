// The conversation list, the unread totals (menu badge, tab title), and the
// sidebar as a drawer on phones.

import { $, avatar, el, icon } from "../dom.js";
import { DM, NEWS, ROOM, byName } from "../state.js";
import { activeConversation, store } from "../store.js";
import { actions } from "./actions.js";
import { hashIcon, titleOf } from "./header.js";
import { renderInvitations } from "./room.js";

function badge(count, label) {
  if (!count) return null;
  return el("span", { className: "badge", title: label }, count > 99 ? "99+" : String(count),
    el("span", { className: "visually-hidden" }, ` ${label}`));
}

export function renderSidebar() {
  const { conversations, activeKey } = store;
  const all = [...conversations.values()];
  const rooms = all.filter((c) => c.kind === ROOM).sort(byName);
  const dms = all.filter((c) => c.kind === DM).sort(byName);
  const news = all.filter((c) => c.kind === NEWS);

  $("room-list").replaceChildren(...rooms.map((c) => conversationItem(c, activeKey)));
  $("dm-list").replaceChildren(...dms.map((c) => conversationItem(c, activeKey)));
  $("dm-empty").hidden = dms.length > 0;
  $("announce-list").replaceChildren(...news.map((c) => conversationItem(c, activeKey)));
  $("announce-section").hidden = news.length === 0;
  renderInvitations();

  const total = all.reduce((sum, c) => sum + c.unread, 0);
  const totalBadge = $("total-unread");
  totalBadge.hidden = total === 0;
  totalBadge.textContent = total > 99 ? "99+" : String(total);
  const active = activeConversation();
  const place = active ? titleOf(active) : "Chat";
  document.title = `${total ? `(${total}) ` : ""}${place} · Chat`;
}

function conversationItem(conv, activeKey) {
  const active = conv.key === activeKey;
  const label = conv.kind === NEWS ? "Announcements" : conv.name;
  const glyph = conv.kind === ROOM ? hashIcon()
    : conv.kind === DM ? avatar(conv.name, "small")
    : el("span", { className: "conv-icon", attrs: { "aria-hidden": "true" } }, icon("megaphone", 18));
  const unreadLabel = conv.mentions ? `unread, ${conv.mentions} mentioning you` : "unread";
  const open = el("button", {
    type: "button",
    className: `conv-item${conv.unread ? " has-unread" : ""}${conv.mentions ? " has-mention" : ""}`,
    dataset: { key: conv.key, kind: conv.kind, name: conv.name },
    attrs: active ? { "aria-current": "page" } : {},
    onclick: () => actions.open(conv.key),
  }, glyph, el("span", { className: "conv-name" }, label), badge(conv.unread, unreadLabel));

  const closeLabel = conv.kind === ROOM ? `Leave #${conv.name}`
    : conv.kind === DM ? `Close the conversation with ${conv.name}` : "Hide announcements";
  const close = el("button", {
    type: "button",
    className: "conv-close icon-button small",
    title: closeLabel,
    attrs: { "aria-label": closeLabel },
    onclick: () => actions.close(conv.key),
  }, "×");
  return el("li", { className: active ? "active" : "" }, open, close);
}

export function setDrawer(open) {
  document.body.classList.toggle("drawer-open", open);
  $("sidebar-open").setAttribute("aria-expanded", String(open));
  renderScrim();
  if (open) {
    const current = document.querySelector(".conv-item[aria-current='page']") ?? $("join-room");
    current.focus();
  }
}

/** The scrim covers the page behind the drawer and behind the member overlay alike. */
export function renderScrim() {
  const b = document.body.classList;
  $("scrim").hidden = !(b.contains("drawer-open") || b.contains("members-overlay"));
}
