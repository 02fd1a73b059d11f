// Keeping conversations in step with the server: joining rooms, and catching up
// after every new connection or `resync`. Everything is merged by id, so overlaps
// with live events arriving meanwhile are harmless.

import { request } from "./connection.js";
import { historyPage } from "./history.js";
import { applyUpdates } from "./edits.js";
import { countUnread } from "./messages.js";
import { flushOutbox } from "./outbox.js";
import { applyMarker, maybeSeen } from "./reads.js";
import { refusalText } from "./refusals.js";
import { infoAfterJoin } from "./room-info.js";
import { onServerEvent } from "./server-events.js";
import { Conversation, DM, PAGE_SIZE, ROOM, compareIds, conversationKey, isMessage, peerOf } from "./state.js";
import { saveProfile } from "./storage.js";
import { ensureConversation, markRead, sidebarOrder, store } from "./store.js";
import * as view from "./view/index.js";

const GAP_FILL_ROUNDS = 5;
const DISCOVER_LIMIT = 50; // private conversations asked for on each (re)connect

/** The connection dropped: nothing is joined or current any more, and answers in flight are stale. */
export function connectionLost() {
  store.syncGeneration += 1;
  for (const conv of store.conversations.values()) {
    conv.synced = false;
    conv.typing.clear();
  }
}

/**
 * Bring every conversation up to date on a new connection: rooms re-join with
 * `since` (the newest id the page holds), private conversations page back
 * through `history` until they meet what the page holds, and `conversations`
 * brings in the private conversations the page has never seen.
 */
export async function resync({ reconnect }) {
  const generation = ++store.syncGeneration;
  store.connection = reconnect ? "syncing" : "online";
  store.lastCatchUp = null;
  view.renderConnection();
  // a room we were removed from (or refused) waits for the person to rejoin it
  const rooms = [...store.conversations.values()].filter((c) => c.kind === ROOM && !c.out);
  const privates = [...store.conversations.values()].filter((c) => c.kind === DM
    && (c.ids.length > 0 || c.key === store.activeKey));
  const counts = await Promise.all([
    ...rooms.map((c) => joinRoom(c, generation, { reconnect })),
    ...privates.map((c) => refillPrivate(c, generation, { reconnect })),
    discoverPrivates(generation, { reconnect }),
  ]);
  if (generation !== store.syncGeneration) return;
  store.connection = "online";
  store.lastCatchUp = reconnect ? counts.reduce((a, b) => a + b, 0) : null;
  view.renderAll();
  flushOutbox();
}

// The server lost its link to the other processes for a while and has it
// back: what they sent meanwhile is in history, so catch up as after a
// reconnect.
onServerEvent("resync", (_payload, socket) => {
  if (store.signedIn && socket.connected) resync({ reconnect: true });
});

/** Join (or re-join) `conv`; returns how many messages it added. */
export async function joinRoom(conv, generation, { reconnect = false } = {}) {
  // the largest id or rev held: the server then sends what was added after it
  // as `history` and what changed after it as `updates`
  const since = conv.lastSeen;
  let answer;
  try {
    answer = await request(store.socket, "join", since ? { room: conv.name, since } : { room: conv.name });
  } catch (err) {
    if (generation !== store.syncGeneration) return 0;
    if (err.code === "invalid") {
      store.conversations.delete(conv.key);
      if (store.activeKey === conv.key) store.activeKey = sidebarOrder()[0]?.key ?? null;
      saveProfile();
      view.toast(`Could not join #${conv.name}: ${err.detail}`, "error");
    } else if (err.code === "banned" || err.code === "forbidden") {
      conv.out = refusalText(err, "join", conv.name);
      conv.members.clear();
    } else {
      conv.notice = `Could not join this room: ${err.detail}`;
    }
    view.renderAll();
    return 0;
  }
  if (generation !== store.syncGeneration) return 0;
  return applyJoin(conv, answer, since, { reconnect });
}

/**
 * Join a room the page does not hold yet. It is added only once the server
 * accepts it; a refusal is thrown as the server's ChatError.
 */
export async function joinNewRoom(name) {
  const key = conversationKey(ROOM, name);
  const conv = store.joining.get(key) ?? new Conversation(ROOM, name);
  store.joining.set(key, conv);
  let answer;
  try {
    answer = await request(store.socket, "join", { room: name });
  } finally {
    store.joining.delete(key);
  }
  store.conversations.set(key, conv);
  applyJoin(conv, answer, null, { reconnect: false });
  markRead(conv); // anything that arrived before the answer is part of the first view
  return conv;
}

function applyJoin(conv, answer, since, { reconnect }) {
  conv.synced = true;
  conv.out = null;
  store.invitations.delete(conv.name);
  infoAfterJoin(conv);
  if (store.connection === "online") flushOutbox();
  conv.members = new Set((answer.members ?? []).filter((u) => typeof u === "string"));
  const history = Array.isArray(answer.history) ? answer.history : [];
  let added;
  if (since && answer.recovered === false) {
    conv.clear();
    added = conv.merge(history);
    conv.notice = "Some messages from while you were away could not be recovered, so this room's history was reloaded.";
    if (conv.key === store.activeKey) view.renderTimeline({ scroll: "bottom" });
    if (reconnect) countUnread(conv, added);
  } else {
    if (!since) conv.reachedStart = history.length < PAGE_SIZE;
    added = conv.merge(history);
    if (reconnect) countUnread(conv, added);
    if (conv.key === store.activeKey) view.entriesAdded(conv, added);
    // messages shown since before, in the state they now have
    applyUpdates(conv, answer.updates);
  }
  // the server's marker and count replace what this tab counted by itself
  applyMarker(conv, answer.read, answer.unread);
  if (conv.key === store.activeKey) {
    view.renderHeader();
    view.renderMembers();
    view.renderTimelineTop();
  }
  maybeSeen(conv);
  view.renderSidebar();
  return reconnect ? added.length : 0;
}

/**
 * Fetch a private conversation's history; after a reconnect, page back until
 * the pages meet the newest message the page already had, so nothing in
 * between is skipped. Returns how many messages it added.
 */
export async function refillPrivate(conv, generation, { reconnect = false } = {}) {
  if (conv.loading) return 0;
  conv.loading = true;
  const since = conv.lastId;
  try {
    let page = await historyPage(conv, { limit: PAGE_SIZE });
    let collected = page;
    let exhausted = page.length < PAGE_SIZE;
    let rounds = 0;
    while (since && !exhausted && collected.length && compareIds(collected[0].id, since) > 0
           && rounds < GAP_FILL_ROUNDS) {
      if (generation !== store.syncGeneration) return 0;
      page = await historyPage(conv, { before: collected[0].id, limit: 200 });
      collected = page.concat(collected);
      exhausted = page.length < 200;
      rounds += 1;
    }
    if (generation !== store.syncGeneration) return 0;
    conv.synced = true;
    const met = !since || !collected.length || compareIds(collected[0].id, since) <= 0;
    let added;
    if (met) {
      // a short last page means the pages reached the start of what the server keeps
      if (exhausted) conv.reachedStart = true;
      // history pages carry the current state of messages shown since before
      applyUpdates(conv, collected);
      added = conv.merge(collected);
      if (reconnect && !store.serverMarkers) countUnread(conv, added);
      if (conv.key === store.activeKey) view.entriesAdded(conv, added);
    } else {
      conv.clear();
      added = conv.merge(collected);
      conv.reachedStart = exhausted;
      conv.notice = "Some private messages from while you were away could not be recovered, so this conversation was reloaded.";
      if (conv.key === store.activeKey) view.renderTimeline({ scroll: "bottom" });
    }
    if (conv.key === store.activeKey) {
      view.renderHeader();
      view.renderTimelineTop();
    }
    maybeSeen(conv);
    view.renderSidebar();
    return reconnect ? added.length : 0;
  } catch (err) {
    if (generation === store.syncGeneration && err.code !== "offline") {
      view.toast(`Could not load the conversation with ${conv.name}: ${err.detail}`, "error");
    }
    return 0;
  } finally {
    conv.loading = false;
  }
}

/**
 * Add the private conversations the page does not know: those started while it
 * was offline or on another device, or closed here before something newer came.
 * Each arrives with its newest message, which counts as unread when the other
 * person wrote it; its history loads when it is opened. Merging by id keeps a
 * message that also arrives live (or was already here) from counting twice.
 * Returns how many messages it added after a reconnect.
 */
async function discoverPrivates(generation, { reconnect }) {
  const known = new Set(store.conversations.keys());
  let answer;
  try {
    answer = await request(store.socket, "conversations", { limit: DISCOVER_LIMIT });
  } catch (err) {
    // A server without the event (`unknown_event`) leaves the page as it was before it.
    if (generation === store.syncGeneration && err.code !== "offline" && err.code !== "unknown_event") {
      view.toast(`Could not list your private conversations: ${err.detail}`, "error");
    }
    return 0;
  }
  if (generation !== store.syncGeneration) return 0;
  let count = 0;
  let found = false;
  for (const entry of Array.isArray(answer.conversations) ? answer.conversations : []) {
    const peer = entry !== null && typeof entry === "object" && typeof entry.with === "string" ? entry.with : "";
    if (!peer) continue;
    const last = isMessage(entry.last) && typeof entry.last.to === "string"
      && peerOf(entry.last, store.me) === peer ? entry.last : null;
    if (last) store.partnerLast.set(peer, last.id);
    if (known.has(conversationKey(DM, peer))) {
      const conv = store.conversations.get(conversationKey(DM, peer));
      if (conv && applyMarker(conv, entry.read, entry.unread)) maybeSeen(conv);
      continue;
    }
    const closedAt = store.closedPrivates.get(peer);
    if (closedAt !== undefined && (!last || compareIds(last.id, closedAt) <= 0)) continue;
    const conv = ensureConversation(DM, peer);
    found = true;
    const added = conv.merge(last ? [last] : []);
    if (!applyMarker(conv, entry.read, entry.unread)) countUnread(conv, added);
    if (conv.key === store.activeKey) view.entriesAdded(conv, added);
    count += added.length;
  }
  if (found) saveProfile();
  view.renderSidebar(); // new conversations, and the server's counts for known ones
  return reconnect ? count : 0;
}
