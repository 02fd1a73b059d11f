// What the page remembers. The session (who you are) lives as long as the tab; the
// places you were in are remembered per user, so a reload or a new tab puts you
// back where you were.

import { DM, ROOM, conversationKey } from "./state.js";
import { ensureConversation, store } from "./store.js";

const STORAGE = "chat.v1";
const DEFAULT_ROOM = "lobby";

export function readJSON(storage, key) {
  try {
    return JSON.parse(storage.getItem(`${STORAGE}.${key}`) ?? "null");
  } catch {
    return null;
  }
}

export function writeJSON(storage, key, value) {
  try {
    if (value === null) storage.removeItem(`${STORAGE}.${key}`);
    else storage.setItem(`${STORAGE}.${key}`, JSON.stringify(value));
  } catch {
    // storage full or disabled: the chat works, it just forgets on reload
  }
}

export function saveProfile() {
  if (!store.me) return;
  const convs = [...store.conversations.values()];
  writeJSON(localStorage, `profile.${store.me}`, {
    rooms: convs.filter((c) => c.kind === ROOM).map((c) => c.name),
    dms: convs.filter((c) => c.kind === DM).map((c) => c.name),
    closed: Object.fromEntries(store.closedPrivates),
    active: store.activeKey,
  });
}

export function restoreProfile() {
  const profile = readJSON(localStorage, `profile.${store.me}`) ?? {};
  const rooms = Array.isArray(profile.rooms) ? profile.rooms.filter((r) => typeof r === "string") : [];
  const dms = Array.isArray(profile.dms) ? profile.dms.filter((u) => typeof u === "string") : [];
  const closed = profile.closed !== null && typeof profile.closed === "object" ? profile.closed : {};
  store.closedPrivates = new Map(Object.entries(closed).filter(([, id]) => typeof id === "string"));
  for (const name of rooms.length ? rooms : [DEFAULT_ROOM]) ensureConversation(ROOM, name);
  for (const name of dms) ensureConversation(DM, name);
  const active = typeof profile.active === "string" && store.conversations.has(profile.active)
    ? profile.active
    : conversationKey(ROOM, rooms[0] ?? DEFAULT_ROOM);
  store.activeKey = active;
}
