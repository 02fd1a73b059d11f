// A room that belongs to someone, as the page shows it: the header's topic,
// privacy and role badge, the notice when we are out of it, the settings
// panel for its owner and moderators, and the moderation tools of the member
// list. Only drawn from the store; clicks go back through `actions`.

import { $, el } from "../dom.js";
import { BAN_LENGTHS, ROOM, mayRemove, moderates, roleIn } from "../state.js";
import { activeConversation, myRole, store } from "../store.js";
import { actions } from "./actions.js";

const ROLE_LABELS = { admin: "admin", owner: "owner", moderator: "moderator" };

let settingsOpen = false;
// The member whose moderation tools are open, and what was typed there, so a
// re-render (someone joins meanwhile) keeps it.
let tools = { room: null, user: null, reason: "", seconds: "" };

/** The header's room parts: topic, privacy, our role, Settings and the "out" notice. */
export function renderRoomHeader() {
  const conv = activeConversation();
  const room = conv && conv.kind === ROOM ? conv : null;
  const info = room?.info ?? null;
  const topic = $("conv-topic");
  topic.hidden = !info || !info.topic;
  topic.textContent = info?.topic ?? "";
  topic.title = info?.topic ?? "";
  $("conv-privacy").hidden = !info?.private;
  const role = room ? myRole(room) : "member";
  const badge = $("conv-role");
  badge.hidden = !room || !ROLE_LABELS[role];
  badge.textContent = ROLE_LABELS[role] ?? "";
  badge.dataset.role = role;
  badge.title = room && ROLE_LABELS[role] ? `Your role in #${room.name}` : "";
  $("room-settings-toggle").hidden = !settingsAvailable(room);
  $("room-out").hidden = !room?.out;
  $("room-out-text").textContent = room?.out ?? "";
  renderRoomSettings();
}

/** The settings panel is for rooms someone created (or any room, for an admin). */
function settingsAvailable(room) {
  if (!room || room.out || !room.info) return false;
  return room.info.created || myRole(room) === "admin";
}

export function toggleRoomSettings(open = !settingsOpen) {
  settingsOpen = open;
  setSettingsMessage("");
  renderRoomSettings();
  if (open) {
    const first = $("room-settings").querySelector("form:not([hidden]) input");
    if (first) first.focus();
  } else {
    $("room-settings-toggle").focus();
  }
}

/** What the last settings action came to (empty to clear it). */
export function setSettingsMessage(text, tone = "info") {
  const box = $("settings-message");
  box.textContent = text;
  box.dataset.tone = tone;
}

export function renderRoomSettings() {
  const conv = activeConversation();
  const room = conv && conv.kind === ROOM ? conv : null;
  const open = settingsOpen && settingsAvailable(room);
  $("room-settings").hidden = !open;
  $("room-settings-toggle").setAttribute("aria-expanded", String(open));
  if (!open) return;
  const info = room.info;
  const role = myRole(room);
  const mod = moderates(role);
  $("room-settings-title").textContent = `#${room.name} settings`;
  $("settings-privacy").textContent = info.private
    ? "Private room: only its members can join or read it. A room stays private or public as it was created."
    : "Public room: anyone can join it. A room stays private or public as it was created.";
  $("topic-form").hidden = !mod;
  const topicInput = $("topic-input");
  if (document.activeElement !== topicInput) topicInput.value = info.topic;
  $("invite-form").hidden = !(mod || !info.private);
  $("role-form").hidden = !(role === "owner" || role === "admin");
  $("unban-form").hidden = !mod;
  $("settings-role").textContent = `Your role here: ${role}.`;
  $("settings-owner").textContent = info.owner ? `Owner: ${info.owner}` : "Nobody owns this room.";
  $("settings-moderators").textContent = info.moderators.length
    ? `Moderators: ${info.moderators.join(", ")}` : "No moderators yet.";
  $("settings-members").hidden = !info.members;
  $("settings-members").textContent = info.members ? `Members: ${info.members.join(", ")}` : "";
}

/** The role badge of `name` in the member list of `conv` (null for a plain member). */
export function memberBadge(conv, name) {
  const role = roleIn(conv.info, name);
  if (role === "member") return null;
  return el("span", { className: "tag role-tag", dataset: { role } }, role === "moderator" ? "mod" : role);
}

/** What our role lets us do to `name` in `conv`: remove (kick, ban) and set roles. */
function powersOver(conv, name) {
  const role = myRole(conv);
  const target = roleIn(conv.info, name);
  return {
    remove: mayRemove(role, target),
    roles: (role === "owner" || role === "admin") && target !== "owner",
    target,
  };
}

/**
 * The "Moderate" button beside a member, and the tools it opens; [] when we
 * have no power over them. `rerender` redraws the member list.
 */
export function memberTools(conv, name, rerender) {
  if (name === store.me || !conv.info) return [];
  const powers = powersOver(conv, name);
  if (!powers.remove && !powers.roles) return [];
  const open = tools.room === conv.name && tools.user === name;
  const toggle = el("button", {
    type: "button",
    className: "icon-button small member-tools-toggle",
    title: `Moderate ${name}`,
    attrs: { "aria-label": `Moderate ${name}`, "aria-expanded": String(open) },
    onclick: () => {
      tools = open ? { room: null, user: null, reason: "", seconds: "" }
        : { room: conv.name, user: name, reason: "", seconds: "" };
      rerender();
    },
  }, "⋯");
  if (!open) return [toggle];
  return [toggle, toolsForm(conv, name, powers)];
}

function toolsForm(conv, name, powers) {
  const error = el("p", { className: "form-error small member-tools-error", attrs: { role: "alert" } });
  const report = (text) => {
    error.textContent = text;
  };
  const reason = el("input", {
    className: "member-reason",
    maxLength: 200,
    placeholder: "Reason (optional)",
    value: tools.reason,
    attrs: { "aria-label": `Why ${name} is removed` },
    oninput: (event) => {
      tools.reason = event.target.value;
    },
  });
  const seconds = el("select", {
    className: "member-ban-length",
    attrs: { "aria-label": `How long ${name} is banned` },
    onchange: (event) => {
      tools.seconds = event.target.value;
    },
  }, ...BAN_LENGTHS.map(([value, label]) => el("option", { value, selected: value === tools.seconds }, label)));
  const act = (ban) => () => actions.kickOrBan(name, { ban, reason: tools.reason.trim(), seconds: tools.seconds }, report);
  const parts = [];
  if (powers.remove) {
    parts.push(reason, el("div", { className: "member-tools-row" },
      el("button", { type: "button", className: "button small ghost kick-button", onclick: act(false) }, "Kick"),
      seconds,
      el("button", { type: "button", className: "button small danger ban-button", onclick: act(true) }, "Ban")));
  }
  if (powers.roles) {
    const promote = powers.target !== "moderator";
    parts.push(el("button", {
      type: "button",
      className: "button small ghost role-button",
      onclick: () => actions.setRole(name, promote ? "moderator" : "member", report),
    }, promote ? "Make moderator" : "Remove moderator"));
  }
  parts.push(error);
  return el("div", { className: "member-tools" }, ...parts);
}

/** The sidebar's invitations: each a room to open, or to dismiss. */
export function renderInvitations() {
  const items = [...store.invitations].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  $("invite-section").hidden = items.length === 0;
  $("invite-list").replaceChildren(...items.map(([room, by]) => el("li", {},
    el("button", {
      type: "button",
      className: "conv-item invitation",
      dataset: { kind: "invite", name: room },
      title: `${by} invited you: open #${room}`,
      onclick: () => actions.openInvitation(room),
    }, el("span", { className: "conv-icon", attrs: { "aria-hidden": "true" } }, "#"),
    el("span", { className: "conv-name" }, room), el("span", { className: "invite-by" }, `from ${by}`)),
    el("button", {
      type: "button",
      className: "conv-close icon-button small",
      title: `Dismiss the invitation to #${room}`,
      attrs: { "aria-label": `Dismiss the invitation to #${room}` },
      onclick: () => actions.dismissInvitation(room),
    }, "×"))));
}
