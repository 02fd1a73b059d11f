// The member list: a column on wide screens, an overlay below 1100 px.

import { $, avatar, el } from "../dom.js";
import { DM, NEWS, ROOM } from "../state.js";
import { activeConversation, store } from "../store.js";
import { actions } from "./actions.js";
import { memberBadge, memberTools } from "./room.js";
import { renderScrim } from "./sidebar.js";

const wideMembers = window.matchMedia("(min-width: 1100px)");
let membersOpen = wideMembers.matches;
wideMembers.addEventListener("change", () => {
  membersOpen = wideMembers.matches;
  renderMembers();
});

export function renderMembers() {
  const conv = activeConversation();
  const panel = $("members-panel");
  const toggle = $("members-toggle");
  const available = Boolean(conv) && conv.kind !== NEWS;
  const open = available && membersOpen;
  document.body.classList.toggle("members-open", open);
  panel.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
  const overlay = open && !wideMembers.matches;
  document.body.classList.toggle("members-overlay", overlay);
  renderScrim();
  if (!available) return;

  const me = store.me;
  const list = $("member-list");
  const note = $("members-note");
  if (conv.kind === ROOM) {
    $("members-heading").textContent = `In #${conv.name}`;
    const typing = new Set(conv.typingUsers());
    list.replaceChildren(...conv.sortedMembers().map((name) => memberItem(name, me, conv, typing.has(name))));
    note.textContent = conv.out ? "You are not in this room."
      : conv.members.size > 1 ? "Pick a name to talk in private." : "Nobody else is here yet.";
  } else {
    $("members-heading").textContent = "Private conversation";
    list.replaceChildren(memberItem(conv.name, me, conv), memberItem(me, me, conv));
    const shared = [...store.conversations.values()]
      .filter((c) => c.kind === ROOM && c.members.has(conv.name))
      .map((c) => `#${c.name}`);
    note.textContent = shared.length
      ? `${conv.name} is in ${shared.join(", ")}.`
      : `${conv.name} is not in any of your rooms right now; they will read your messages when they are back.`;
  }
  $("members-count").textContent = conv.kind === ROOM ? String(conv.members.size) : "2";
}

function memberItem(name, me, conv, typing = false) {
  const content = [avatar(name, "small"), el("span", { className: "member-name" }, name)];
  if (conv.kind === ROOM) content.push(memberBadge(conv, name));
  if (name === me) content.push(el("span", { className: "tag" }, "you"));
  else if (typing) content.push(el("span", { className: "tag typing-tag" }, "typing"));
  if (name === me || conv.kind === DM) {
    return el("li", { dataset: { user: name } }, el("span", { className: "member" }, ...content));
  }
  const tools = memberTools(conv, name, renderMembers);
  return el("li", { dataset: { user: name }, className: tools.length ? "with-tools" : "" }, el("button", {
    type: "button",
    className: "member",
    title: `Message ${name} in private`,
    attrs: { "aria-label": `${name}: send a private message` },
    onclick: () => actions.startPrivate(name),
  }, ...content), ...tools);
}

export function toggleMembers(open = !membersOpen) {
  membersOpen = open;
  renderMembers();
  if (open && !wideMembers.matches) $("members-close").focus();
}
