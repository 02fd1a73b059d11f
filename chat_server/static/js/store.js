// The page's one mutable store, and the lookups on it that every controller shares.
// window.chat.store exposes it in the console; the browser tests read it to explain failures.

import { Conversation, DM, NEWS, ROOM, adminClaim, byName, conversationKey, roleIn } from "./state.js";

export const store = {
  me: null,
  auth: null,
  socket: null,
  signedIn: false,
  conversations: new Map(),
  activeKey: null,
  connection: "idle", // idle | connecting | syncing | online | reconnecting
  reconnectAttempt: 0,
  lastCatchUp: null, // messages filled in by the last reconnect, for the banner
  syncGeneration: 0, // bumped by every new connection or sync, so stale answers are dropped
  outbox: [],
  banner: null,
  joining: new Map(), // rooms joined from the form, waiting for the server's answer
  closedPrivates: new Map(), // peer -> newest message id known when its conversation was closed
  partnerLast: new Map(), // peer -> id of the newest message `conversations` reported
  editing: null, // {convKey, id} of our message the composer is editing
  serverMarkers: false, // the server answered read markers and unread counts
  invitations: new Map(), // room -> who invited us, until the room is opened or dismissed
};

export function ensureConversation(kind, name) {
  const key = conversationKey(kind, name);
  let conv = store.conversations.get(key);
  if (!conv) {
    conv = new Conversation(kind, name);
    store.conversations.set(key, conv);
    if (kind === DM) store.closedPrivates.delete(name);
  }
  return conv;
}

/**
 * The room a live event belongs to, including one whose join is still in
 * flight: the server may deliver a message to the room before it acks the
 * join, and that message is not necessarily in the join's history.
 */
export function roomFor(name) {
  const key = conversationKey(ROOM, name);
  return store.conversations.get(key) ?? store.joining.get(key) ?? null;
}

export function activeConversation() {
  return store.conversations.get(store.activeKey) ?? null;
}

export function sidebarOrder() {
  const all = [...store.conversations.values()];
  return [
    ...all.filter((c) => c.kind === ROOM).sort(byName),
    ...all.filter((c) => c.kind === DM).sort(byName),
    ...all.filter((c) => c.kind === NEWS),
  ];
}

export function markRead(conv) {
  conv.unread = 0;
  conv.mentions = 0;
  conv.firstUnreadId = null;
}

/** Our role in room `conv` (see `roleIn`); "member" until its `info` is known. */
export function myRole(conv) {
  return roleIn(conv?.info ?? null, store.me, adminClaim(store.auth));
}
