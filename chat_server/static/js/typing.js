// "Is typing": announcing our own typing without flooding the server, and
// showing the others'.

import { $ } from "./dom.js";
import { onServerEvent } from "./server-events.js";
import { ROOM } from "./state.js";
import { activeConversation, roomFor, store } from "./store.js";
import * as view from "./view/index.js";

const TYPING_EVERY_MS = 2000; // send at most one `typing` per room in this time
const TYPING_SHOWN_MS = 4000; // show "is typing" this long after the last one

const lastSent = new Map(); // conversation key -> when we last sent `typing`
let trailingTimer = null;

/**
 * Tell the room we are typing: at most once per TYPING_EVERY_MS, with one
 * trailing send at the end of a window, so steady typing keeps the others'
 * indicator alive without flooding the server.
 */
export function sendTyping() {
  const conv = activeConversation();
  const socket = store.socket;
  if (!conv || conv.kind !== ROOM || !conv.synced || !socket?.connected) return;
  const wait = TYPING_EVERY_MS - (Date.now() - (lastSent.get(conv.key) ?? 0));
  if (wait <= 0) {
    lastSent.set(conv.key, Date.now());
    socket.emit("typing", { room: conv.name });
  } else if (!trailingTimer) {
    trailingTimer = setTimeout(() => {
      trailingTimer = null;
      if (activeConversation() === conv && $("message-input").value.trim()) sendTyping();
    }, wait);
  }
}

export function stopTyping(conv) {
  clearTimeout(trailingTimer);
  trailingTimer = null;
  // our message ends the others' "is typing" for us, so the next keystroke may say it again
  lastSent.delete(conv.key);
}

function renderIfActive(conv) {
  if (conv.key === store.activeKey) {
    view.renderTyping();
    view.renderMembers();
  }
}

onServerEvent("typing", (t) => {
  if (!t || typeof t.room !== "string" || typeof t.user !== "string" || t.user === store.me) return;
  const conv = roomFor(t.room);
  if (!conv) return;
  conv.typing.set(t.user, Date.now() + TYPING_SHOWN_MS);
  renderIfActive(conv);
  setTimeout(() => renderIfActive(conv), TYPING_SHOWN_MS + 50);
});
