// The conversation header: title, subtitle, Leave and members buttons, and the
// conversation's notice.

import { $, append, avatar, clear, el } from "../dom.js";
import { DM, NEWS, ROOM } from "../state.js";
import { activeConversation } from "../store.js";
import { renderRoomHeader } from "./room.js";

export function hashIcon() {
  return el("span", { className: "conv-icon", attrs: { "aria-hidden": "true" } }, "#");
}

export function titleOf(conv) {
  if (conv.kind === ROOM) return `#${conv.name}`;
  if (conv.kind === DM) return `@${conv.name}`;
  return "Announcements";
}

export function renderHeader() {
  const conv = activeConversation();
  const title = $("conv-title");
  const subtitle = $("conv-subtitle");
  clear(title);
  if (!conv) {
    title.textContent = "Chat";
    subtitle.textContent = "";
  } else if (conv.kind === ROOM) {
    append(title, [hashIcon(), conv.name]);
    const n = conv.members.size;
    subtitle.textContent = conv.out ? "You are not in this room"
      : conv.synced ? `${n} ${n === 1 ? "member" : "members"} here` : "joining…";
  } else if (conv.kind === DM) {
    append(title, [avatar(conv.name, "small"), conv.name]);
    subtitle.textContent = "Private conversation";
  } else {
    append(title, ["Announcements"]);
    subtitle.textContent = "Broadcasts to everyone on the server";
  }
  $("leave-button").hidden = !conv || conv.kind !== ROOM;
  $("leave-button").textContent = "Leave";
  if (conv && conv.kind === ROOM) $("leave-button").setAttribute("aria-label", `Leave #${conv.name}`);
  const toggle = $("members-toggle");
  toggle.hidden = !conv || conv.kind === NEWS;
  $("members-count").textContent = conv && conv.kind === ROOM ? String(conv.members.size) : "";
  const label = conv ? `Messages in ${titleOf(conv)}` : "Messages";
  $("timeline").setAttribute("aria-label", label);
  $("message-list").setAttribute("aria-label", label);

  const notice = $("conv-notice");
  notice.hidden = !conv || !conv.notice;
  $("conv-notice-text").textContent = conv && conv.notice ? conv.notice : "";
  renderRoomHeader();
}
