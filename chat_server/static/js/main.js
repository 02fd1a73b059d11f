// The entry module: loads every controller (each registers its own server
// events), connects the view's buttons to them, and starts the page.

import { wireComposer } from "./compose.js";
import { ChatError } from "./connection.js";
import { deleteMessage, startEdit, toggleReaction } from "./edits.js";
import { fillViewport, wireTimeline } from "./history.js";
import { dismissAnnouncement } from "./messages.js";
import { closeConversation, openConversation, startPrivate, wireNavigation } from "./navigation.js";
import { dropFromOutbox, enqueue } from "./outbox.js";
import { dismissInvitation, openInvitation, remove, setRole, wireRooms } from "./rooms.js";
import "./presence.js";
import "./reads.js";
import { startSession, wireSignIn } from "./session.js";
import { activeConversation, store } from "./store.js";
import "./sync.js";
import "./typing.js";
import { provideActions } from "./view/index.js";

provideActions({
  open: (key) => openConversation(key),
  close: (key) => closeConversation(key),
  startPrivate: (user) => startPrivate(user),
  retry: (item) => enqueue(item),
  discard: (item) => dropFromOutbox(item),
  dismissBanner: () => dismissAnnouncement(),
  timelineRendered: (conv) => fillViewport(conv),
  edit: (m) => startEdit(m),
  remove: (m) => deleteMessage(m),
  react: (m, emoji) => toggleReaction(m, emoji),
  kickOrBan: (user, how, report) => remove(activeConversation(), user, how, report),
  setRole: (user, role, report) => setRole(activeConversation(), user, role, report),
  openInvitation: (room) => openInvitation(room),
  dismissInvitation: (room) => dismissInvitation(room),
});

function boot() {
  wireSignIn();
  wireComposer();
  wireTimeline();
  wireNavigation();
  wireRooms();
  startSession();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();

// Exposed for curious people in the console; the page does not depend on it.
window.chat = { store, ChatError };
