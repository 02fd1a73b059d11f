// Moving between conversations: opening, starting a private one, joining a room
// by name, leaving or closing, and the keys and panels that get you around.

import { request } from "./connection.js";
import { $ } from "./dom.js";
import { cancelEdit } from "./edits.js";
import { dropConversation } from "./outbox.js";
import { seen } from "./reads.js";
import { refusalText } from "./refusals.js";
import { infoOnOpen } from "./room-info.js";
import { DM, NEWS, ROOM, compareIds, conversationKey } from "./state.js";
import { saveProfile } from "./storage.js";
import { activeConversation, ensureConversation, sidebarOrder, store } from "./store.js";
import { joinNewRoom, refillPrivate } from "./sync.js";
import * as view from "./view/index.js";

const MAX_CLOSED = 200; // closed private conversations remembered per user

export function openConversation(key) {
  const conv = store.conversations.get(key);
  if (!conv) return;
  if (store.activeKey !== key) {
    view.saveScroll();
    const previous = activeConversation();
    if (previous) previous.dividerId = null;
    cancelEdit(); // an edit belongs to the conversation it started in
    store.activeKey = key;
    conv.dividerId = conv.firstUnreadId;
  }
  seen(conv);
  if (conv.kind === ROOM) infoOnOpen(conv);
  view.setDrawer(false);
  view.renderAll();
  if (conv.kind === DM && !conv.synced && store.socket?.connected) refillPrivate(conv, store.syncGeneration);
  saveProfile();
  if (conv.kind !== NEWS) $("message-input").focus();
}

export function startPrivate(user) {
  if (!user || user === store.me) return;
  ensureConversation(DM, user);
  openConversation(conversationKey(DM, user));
}

export async function closeConversation(key) {
  const conv = store.conversations.get(key);
  if (!conv) return;
  if (conv.kind === ROOM && store.socket?.connected && conv.synced) {
    try {
      await request(store.socket, "leave", { room: conv.name });
    } catch (err) {
      if (err.code !== "not_in_room" && err.code !== "offline") {
        view.toast(`Could not leave #${conv.name}: ${err.detail}`, "error");
        return;
      }
    }
  }
  // Without a connection there is nothing to tell the server: it already
  // dropped us from every room, and the next sync will not re-join this one.
  if (conv.kind === DM) rememberClosed(conv);
  store.conversations.delete(key);
  dropConversation(key);
  if (store.activeKey === key) {
    const next = sidebarOrder()[0];
    store.activeKey = next ? next.key : null;
    if (next) next.dividerId = next.firstUnreadId;
    if (next) seen(next);
  }
  saveProfile();
  view.renderAll();
  if (!store.activeKey) $("join-room").focus();
}

/**
 * Remember how far a closed private conversation went, so that `conversations`
 * does not bring it back on the next connection unless something newer came.
 */
function rememberClosed(conv) {
  const known = [conv.lastId, store.partnerLast.get(conv.name)].filter((id) => typeof id === "string");
  store.closedPrivates.delete(conv.name); // re-insert, so the map's order is closing order
  store.closedPrivates.set(conv.name, known.sort(compareIds).pop() ?? "");
  while (store.closedPrivates.size > MAX_CLOSED) {
    store.closedPrivates.delete(store.closedPrivates.keys().next().value);
  }
}

async function joinByName(raw) {
  const name = raw.trim();
  const error = $("join-error");
  error.textContent = "";
  if (!name) {
    error.textContent = "Type the name of a room.";
    return false;
  }
  const key = conversationKey(ROOM, name);
  if (store.conversations.has(key)) {
    openConversation(key);
    return true;
  }
  if (!store.socket?.connected || store.connection !== "online") {
    ensureConversation(ROOM, name); // joined by the next sync
    openConversation(key);
    return true;
  }
  try {
    await joinNewRoom(name);
  } catch (err) {
    error.textContent = refusalText(err, "join", name);
    return false;
  }
  openConversation(key);
  return true;
}

export function wireNavigation() {
  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = $("join-room");
    if (await joinByName(field.value)) field.value = "";
  });

  $("leave-button").addEventListener("click", () => {
    const conv = activeConversation();
    if (conv) closeConversation(conv.key);
  });

  $("conv-notice-close").addEventListener("click", () => {
    const conv = activeConversation();
    if (conv) conv.notice = null;
    view.renderHeader();
  });

  $("sidebar-open").addEventListener("click", () => view.setDrawer(true));
  $("sidebar-close").addEventListener("click", () => {
    view.setDrawer(false);
    $("sidebar-open").focus();
  });
  $("members-toggle").addEventListener("click", () => view.toggleMembers());
  $("members-close").addEventListener("click", () => {
    view.toggleMembers(false);
    $("members-toggle").focus();
  });
  $("scrim").addEventListener("click", () => {
    view.setDrawer(false);
    if (document.body.classList.contains("members-overlay")) view.toggleMembers(false);
  });

  document.addEventListener("keydown", onShortcut);

  document.addEventListener("visibilitychange", () => {
    const conv = activeConversation();
    if (!document.hidden && conv) {
      seen(conv);
      view.renderSidebar();
    }
  });
}

function onShortcut(event) {
  if (store.signedIn !== true) return;
  if (event.key === "Escape") {
    if (document.body.classList.contains("drawer-open")) {
      view.setDrawer(false);
      $("sidebar-open").focus();
    } else if (document.body.classList.contains("members-overlay")) {
      view.toggleMembers(false);
      $("members-toggle").focus();
    }
    return;
  }
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    const order = sidebarOrder();
    if (!order.length) return;
    const at = order.findIndex((c) => c.key === store.activeKey);
    const step = event.key === "ArrowUp" ? -1 : 1;
    openConversation(order[(at + step + order.length) % order.length].key);
    return;
  }
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    if (matchMedia("(max-width: 760px)").matches) view.setDrawer(true);
    $("join-room").focus();
  }
}
