// Read markers kept by the server: the unread badges and the tab title follow
// them (so a reload or another device agrees), the page tells the server what
// the reader has seen, and "Seen" marks our last private message once the other
// side has read it.

import { request } from "./connection.js";
import { onServerEvent } from "./server-events.js";
import { DM, NEWS, ROOM, compareIds, conversationKey, conversationTarget, mentions } from "./state.js";
import { markRead, store } from "./store.js";
import * as view from "./view/index.js";

const READ_DELAY_MS = 250; // a burst of arrivals sends one `read`, not one each

const timers = new Map(); // conversation key -> pending `read` timer

function newer(a, b) {
  return typeof a === "string" && (b === null || compareIds(a, b) > 0);
}

/**
 * Adopt the server's marker and unread count for `conv` (a join answer or a
 * `conversations` entry). The "New messages" line goes before the first
 * message from someone else after the marker among those the page holds.
 */
export function applyMarker(conv, read, unread) {
  if (!Number.isInteger(unread) || unread < 0) return false;
  store.serverMarkers = true;
  if (read === null || typeof read === "string") conv.readId = read;
  conv.unread = unread;
  conv.mentions = 0;
  conv.firstUnreadId = null;
  if (unread) {
    for (const id of conv.ids) {
      const m = conv.messages.get(id);
      if (m.from === store.me || m.deleted || (conv.readId && compareIds(id, conv.readId) <= 0)) continue;
      conv.firstUnreadId ??= id;
      if (mentions(m.text, store.me)) conv.mentions += 1;
    }
  }
  return true;
}

/** Is the reader looking at the newest message of `conv` right now? */
function isSeen(conv) {
  return conv.key === store.activeKey && !document.hidden && conv.synced && view.isNearBottom();
}

/**
 * The reader sees `conv`: clear its badge here and, shortly after, move the
 * server's marker to its newest message (when that is newer than the marker).
 */
export function seen(conv) {
  if (!conv || conv.kind === NEWS) return;
  markRead(conv);
  // what is seen now, not what has arrived by the time the timer fires
  if (newer(conv.lastId, conv.seenId ?? null)) conv.seenId = conv.lastId;
  if (timers.has(conv.key)) return;
  timers.set(conv.key, setTimeout(() => sendRead(conv), READ_DELAY_MS));
}

/** New messages arrived in `conv`: if the reader is looking, they are read. */
export function maybeSeen(conv) {
  if (isSeen(conv)) seen(conv);
}

async function sendRead(conv) {
  timers.delete(conv.key);
  const id = conv.seenId;
  if (!id || !newer(id, conv.readId) || !store.socket?.connected || !conv.synced) return;
  try {
    const answer = await request(store.socket, "read", { ...conversationTarget(conv), id });
    if (newer(answer.id, conv.readId)) conv.readId = answer.id;
  } catch (err) {
    // A server without markers answers unknown_event; the page then keeps its local counts.
    if (err.code !== "offline" && err.code !== "unknown_event") {
      view.toast(`Could not mark ${conv.kind === ROOM ? `#${conv.name}` : conv.name} as read: ${err.detail}`, "error");
    }
  }
}

/** Messages from others after `conv.readId` that the page holds (what a new marker leaves unread). */
function unreadAfterMarker(conv) {
  let count = 0;
  for (const id of conv.ids) {
    const m = conv.messages.get(id);
    if (m.from !== store.me && !m.deleted && compareIds(id, conv.readId) > 0) count += 1;
  }
  return count;
}

onServerEvent("read", (r) => {
  if (!r || typeof r !== "object" || typeof r.user !== "string" || typeof r.id !== "string") return;
  const inRoom = typeof r.room === "string";
  if (!inRoom && typeof r.with !== "string") return;
  if (r.user !== store.me) {
    // the other side of a private conversation read up to `id` (`with` is the reader)
    if (inRoom) return;
    const conv = store.conversations.get(conversationKey(DM, r.user));
    if (!conv || !newer(r.id, conv.peerReadId)) return;
    conv.peerReadId = r.id;
    if (conv.key === store.activeKey) view.renderTimeline({ scroll: "keep" });
    return;
  }
  const conv = store.conversations.get(conversationKey(inRoom ? ROOM : DM, inRoom ? r.room : r.with));
  if (!conv || !newer(r.id, conv.readId)) return;
  // another tab or device of ours read it: what it saw is no longer unread here either
  conv.readId = r.id;
  const left = unreadAfterMarker(conv);
  if (left === 0) markRead(conv);
  else conv.unread = Math.min(conv.unread, left);
  view.renderSidebar();
});
