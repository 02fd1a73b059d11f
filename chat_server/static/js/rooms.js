// Rooms that belong to someone: creating one, moderating it (topic, invitations,
// roles, kicks and bans), being invited, and being removed. The server decides
// every action; the page offers what the role allows and says why it refused.

import { request } from "./connection.js";
import { $ } from "./dom.js";
import { openConversation } from "./navigation.js";
import { refusalText } from "./refusals.js";
import { applyInfo, loadInfo } from "./room-info.js";
import { onServerEvent } from "./server-events.js";
import { ROOM, conversationKey } from "./state.js";
import { saveProfile } from "./storage.js";
import { activeConversation, roomFor, store } from "./store.js";
import { joinNewRoom, joinRoom } from "./sync.js";
import * as view from "./view/index.js";

/**
 * Ask the server for `event` about the open room; on a refusal, say why in
 * the settings panel (or where `report` says) and resolve with null.
 */
async function moderate(event, payload, { user = "", report = view.setSettingsMessage } = {}) {
  try {
    const answer = await request(store.socket, event, payload);
    report("");
    // members and bans change no `room_updated`: ask for the room as it now is
    const conv = roomFor(payload.room);
    if (conv && !answer.room) loadInfo(conv);
    return answer;
  } catch (err) {
    report(refusalText(err, event, payload.room, user), "error");
    return null;
  }
}

/** Create a room (public or private, with a topic), join it and open it. */
async function createRoom(name, { private: isPrivate, topic }) {
  const error = $("create-error");
  error.textContent = "";
  if (!name) {
    error.textContent = "Type a name for the new room.";
    return false;
  }
  let answer;
  try {
    answer = await request(store.socket, "create_room", { room: name, private: isPrivate, topic });
  } catch (err) {
    error.textContent = refusalText(err, "create_room", name);
    return false;
  }
  let conv;
  try {
    conv = await joinNewRoom(name);
  } catch (err) {
    error.textContent = refusalText(err, "join", name);
    return false;
  }
  applyInfo(conv, answer.room);
  saveProfile();
  openConversation(conv.key);
  return true;
}

export async function setTopic(conv, topic) {
  const answer = await moderate("set_topic", { room: conv.name, topic });
  if (answer) {
    applyInfo(conv, answer.room);
    view.setSettingsMessage("Topic saved.");
  }
  return Boolean(answer);
}

export async function invite(conv, user) {
  const answer = await moderate("invite", { room: conv.name, user }, { user });
  if (answer) view.setSettingsMessage(`${user} is invited to #${conv.name}.`);
  return Boolean(answer);
}

export async function setRole(conv, user, role, report) {
  const answer = await moderate("set_role", { room: conv.name, user, role }, { user, report });
  if (answer) {
    applyInfo(conv, answer.room);
    view.toast(role === "moderator" ? `${user} is now a moderator of #${conv.name}.`
      : `${user} is no longer a moderator of #${conv.name}.`);
  }
  return Boolean(answer);
}

export async function unban(conv, user) {
  const answer = await moderate("unban", { room: conv.name, user }, { user });
  if (answer) view.setSettingsMessage(`${user} may join #${conv.name} again.`);
  return Boolean(answer);
}

/** Kick `user` out of `conv` or, with `ban`, ban them (`seconds` "" for no end). */
export async function remove(conv, user, { ban, reason, seconds }, report) {
  const payload = { room: conv.name, user, reason };
  if (ban && seconds) payload.seconds = Number(seconds);
  const answer = await moderate(ban ? "ban" : "kick", payload, { user, report });
  if (answer) view.toast(ban ? `${user} is banned from #${conv.name}.` : `${user} was removed from #${conv.name}.`);
  return Boolean(answer);
}

/** Try again to join a room we were removed from or refused. */
export async function rejoin(conv) {
  conv.out = null;
  conv.notice = null;
  await joinRoom(conv, store.syncGeneration);
  view.renderAll();
}

/** Open the room an invitation is for: join it first when the page does not hold it. */
export async function openInvitation(room) {
  const key = conversationKey(ROOM, room);
  const known = store.conversations.get(key);
  store.invitations.delete(room);
  if (known) {
    if (known.out) await rejoin(known);
    openConversation(key);
    return;
  }
  try {
    await joinNewRoom(room);
  } catch (err) {
    view.renderSidebar();
    view.toast(refusalText(err, "join", room), "error");
    return;
  }
  saveProfile();
  openConversation(key);
}

export function dismissInvitation(room) {
  store.invitations.delete(room);
  view.renderSidebar();
}

onServerEvent("invited", (p) => {
  if (!p || typeof p.room !== "string" || typeof p.by !== "string") return;
  const conv = roomFor(p.room);
  if (conv && conv.synced) return; // already in it (another tab accepted)
  store.invitations.set(p.room, p.by);
  view.renderSidebar();
  view.toast(`${p.by} invited you to #${p.room}.`);
});

// Every connection of ours in the room hears this, just before it is taken out.
onServerEvent("kicked", (p) => {
  if (!p || typeof p.room !== "string") return;
  const conv = roomFor(p.room);
  if (!conv) return;
  const by = typeof p.by === "string" ? p.by : "a moderator";
  const reason = typeof p.reason === "string" && p.reason.trim() ? ` Reason: ${p.reason.trim()}` : "";
  conv.out = `${by} removed you from #${p.room}.${reason}`;
  conv.synced = false;
  conv.members.clear();
  conv.typing.clear();
  view.toast(conv.out, "error");
  view.renderAll();
});

function settingsForm(id, handler) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    const conv = activeConversation();
    if (!conv || conv.kind !== ROOM) return;
    const form = event.currentTarget;
    const field = form.querySelector("input");
    if (await handler(conv, field.value.trim(), form)) field.value = "";
  });
}

export function wireRooms() {
  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("create-name").value.trim();
    const created = await createRoom(name, {
      private: $("create-private").checked,
      topic: $("create-topic").value.trim(),
    });
    if (created) {
      $("create-form").reset();
      $("create-details").open = false;
    }
  });
  settingsForm("topic-form", async (conv, topic) => {
    await setTopic(conv, topic);
    return false; // keep the topic in the field: it is the room's topic now
  });
  settingsForm("invite-form", (conv, user) => user && invite(conv, user));
  settingsForm("role-form", (conv, user) => user && setRole(conv, user, $("role-choice").value));
  settingsForm("unban-form", (conv, user) => user && unban(conv, user));
  $("room-settings-toggle").addEventListener("click", () => view.toggleRoomSettings());
  $("room-settings-close").addEventListener("click", () => view.toggleRoomSettings(false));
  $("rejoin-button").addEventListener("click", () => {
    const conv = activeConversation();
    if (conv && conv.out) rejoin(conv);
  });
}
