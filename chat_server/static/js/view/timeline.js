// The message list of the open conversation, the own messages still pending
// below it, and where it is scrolled to.

import { $ } from "../dom.js";
import { NEWS, ROOM, compareIds } from "../state.js";
import { activeConversation, store } from "../store.js";
import { actions } from "./actions.js";
import { entryNodes, messageNode } from "./message.js";

const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 150;

const timeline = $("timeline");
const list = $("message-list");
const pendingList = $("pending-list");
let shown = { key: null, last: null }; // what the message list currently holds

function distanceFromBottom() {
  return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight;
}

export function isNearBottom() {
  return distanceFromBottom() < NEAR_BOTTOM_PX;
}

export function isNearTop() {
  return timeline.scrollTop < NEAR_TOP_PX;
}

export function overflows() {
  return timeline.scrollHeight > timeline.clientHeight + 4;
}

export function scrollToBottom() {
  timeline.scrollTop = timeline.scrollHeight;
  $("jump-latest").hidden = true;
}

/** Remember where the reader was in the conversation being left. */
export function saveScroll() {
  const conv = store.conversations.get(shown.key);
  if (conv) conv.scrollFromBottom = isNearBottom() ? 0 : distanceFromBottom();
}

/**
 * Rebuild the message list of the active conversation.
 * scroll: "bottom", "restore" (the conversation's saved place) or "keep"
 * (the same distance from the bottom, so prepended pages do not move the view).
 */
export function renderTimeline({ scroll = "keep" } = {}) {
  const conv = activeConversation();
  const keepDistance = isNearBottom() ? 0 : distanceFromBottom();
  $("empty-state").hidden = Boolean(conv);
  list.setAttribute("aria-busy", "true");
  const fragment = document.createDocumentFragment();
  let prev = null;
  if (conv) {
    for (const entry of conv.entries()) {
      fragment.append(...entryNodes(conv, entry, prev));
      prev = entry;
    }
  }
  list.replaceChildren(fragment);
  list.setAttribute("aria-busy", "false");
  shown = { key: conv ? conv.key : null, last: prev };
  renderTimelineTop();

  if (scroll === "bottom" || !conv) scrollToBottom();
  else {
    const distance = scroll === "restore" ? conv.scrollFromBottom : keepDistance;
    if (distance <= 0) scrollToBottom();
    else timeline.scrollTop = timeline.scrollHeight - timeline.clientHeight - distance;
  }
  actions.timelineRendered(conv);
}

function compareEntries(a, b) {
  const ka = a.notice ? a.anchor : a.id;
  const kb = b.notice ? b.anchor : b.id;
  const c = compareIds(ka, kb);
  if (c !== 0) return c;
  return (a.notice ? a.seq : 0) - (b.notice ? b.seq : 0);
}

/** New entries for `conv`: appended in place when they all come last, else a rebuild. */
export function entriesAdded(conv, entries, { own = false } = {}) {
  if (!entries.length || conv.key !== store.activeKey) return;
  const last = shown.last;
  const after = (e) => !last || compareEntries(last, e) < 0;
  if (shown.key !== conv.key || !entries.every(after)) {
    renderTimeline({ scroll: "keep" });
    return;
  }
  const wasNearBottom = isNearBottom();
  let prev = last;
  for (const entry of entries) {
    const nodes = entryNodes(conv, entry, prev);
    for (const node of nodes) node.classList.add("fresh");
    list.append(...nodes);
    prev = entry;
  }
  shown.last = prev;
  if (wasNearBottom || own) scrollToBottom();
  else if (entries.some((e) => !e.notice)) $("jump-latest").hidden = false;
}

/** "Load older messages", or the line saying this is the beginning. */
export function renderTimelineTop() {
  const conv = activeConversation();
  const button = $("load-older");
  const start = $("timeline-start");
  if (!conv || conv.kind === NEWS) {
    button.hidden = true;
    start.hidden = !conv;
    start.textContent = conv ? "Announcements received since you signed in." : "";
    return;
  }
  const canLoad = !conv.reachedStart && conv.ids.length > 0;
  button.hidden = !canLoad;
  button.disabled = conv.loadingOlder;
  button.textContent = conv.loadingOlder ? "Loading older messages…" : "Load older messages";
  const showStart = conv.reachedStart || (conv.synced && conv.ids.length === 0);
  start.hidden = !showStart;
  start.textContent = conv.kind === ROOM
    ? `This is the beginning of #${conv.name}.`
    : `This is the beginning of your conversation with ${conv.name}.`;
}

/** Own messages of the active conversation that the server has not confirmed. */
export function renderPending() {
  const conv = activeConversation();
  const wasNearBottom = isNearBottom();
  const items = conv ? store.outbox.filter((item) => item.convKey === conv.key) : [];
  pendingList.replaceChildren(...items.map((item) =>
    messageNode(conv, { from: store.me, text: item.text, ts: item.createdAt }, { pending: item })));
  if (wasNearBottom) scrollToBottom();
}
