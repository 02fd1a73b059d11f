// What the page knows of a room that belongs to someone: its `info` (owner,
// topic, moderators, privacy), asked for after a join and kept current by
// `room_updated`. Only the open room is asked at once: a reconnect re-joins
// every room, and asking each one's info then as well would double that burst
// of events (and meet the rate limit sooner); the others are asked when opened.

import { request } from "./connection.js";
import { onServerEvent } from "./server-events.js";
import { roomInfoOf } from "./state.js";
import { roomFor, store } from "./store.js";
import * as view from "./view/index.js";

/** Take `info` (a server payload) as `conv`'s, and show it if `conv` is open. */
export function applyInfo(conv, info) {
  const parsed = roomInfoOf(info);
  if (!parsed || parsed.name !== conv.name) return;
  conv.info = parsed;
  conv.infoStale = false;
  if (conv.key !== store.activeKey) return;
  view.renderHeader();
  view.renderMembers();
  view.renderRoomSettings();
}

/** `conv` was (re-)joined: its info may have changed meanwhile (`room_updated` missed). */
export function infoAfterJoin(conv) {
  conv.infoStale = true;
  if (conv.key === store.activeKey) loadInfo(conv);
}

/** `conv` is being opened: ask for its info if a join left it stale. */
export function infoOnOpen(conv) {
  if (conv.infoStale && conv.synced) loadInfo(conv);
}

/**
 * Ask for `conv`'s `info`. A server without rooms that belong to someone
 * answers `unknown_event`: the room then simply shows no topic or roles.
 */
export async function loadInfo(conv) {
  try {
    const answer = await request(store.socket, "room_info", { room: conv.name });
    applyInfo(conv, answer.room);
  } catch {
    // the join itself succeeded; a missing topic is no reason to bother anyone
  }
}

// A topic or a role changed: everyone in the room hears the new `info`.
onServerEvent("room_updated", (info) => {
  if (!info || typeof info.name !== "string") return;
  const conv = roomFor(info.name);
  if (conv) applyInfo(conv, info);
});
