// Messages as they arrive live: room and private messages and announcements, and
// the unread counts they add. Changes to a message later (edits, deletions,
// reactions) are applied by edits.js; read markers by reads.js.

import { onServerEvent } from "./server-events.js";
import { maybeSeen } from "./reads.js";
import { DM, NEWS, isMessage, mentions, peerOf } from "./state.js";
import { saveProfile } from "./storage.js";
import { ensureConversation, roomFor, store } from "./store.js";
import { settleEcho } from "./outbox.js";
import * as view from "./view/index.js";

/** Count what others wrote in `added` as unread, unless the reader is looking at it. */
export function countUnread(conv, added) {
  const visible = conv.key === store.activeKey && !document.hidden;
  for (const m of added) {
    if (m.from === store.me || visible) continue;
    conv.unread += 1;
    if (mentions(m.text, store.me)) conv.mentions += 1;
    if (!conv.firstUnreadId) conv.firstUnreadId = m.id;
  }
}

/** Record new messages of `conv`: unread counts, typing, and the view. */
export function messagesArrived(conv, added) {
  if (!added.length) return;
  for (const m of added) conv.typing.delete(m.from);
  countUnread(conv, added);
  const own = added.some((m) => m.from === store.me);
  view.entriesAdded(conv, added, { own });
  // a new message of ours moves "Seen" off the one before it
  if (own && conv.peerReadId && conv.key === store.activeKey) view.renderTimeline({ scroll: "bottom" });
  maybeSeen(conv);
  if (conv.key === store.activeKey) {
    view.renderTyping();
    view.renderMembers();
  }
  view.renderSidebar();
}

export function dismissAnnouncement() {
  store.banner = null;
  view.renderAnnouncementBanner();
}

onServerEvent("message", (m) => {
  if (!isMessage(m) || typeof m.room !== "string") return;
  const conv = roomFor(m.room);
  if (!conv) return;
  settleEcho(conv, m);
  messagesArrived(conv, conv.merge([m]));
});

onServerEvent("private_message", (m) => {
  if (!isMessage(m) || typeof m.to !== "string" || !store.me) return;
  const peer = peerOf(m, store.me);
  const conv = ensureConversation(DM, peer);
  settleEcho(conv, m);
  const fresh = conv.ids.length === 0 && !conv.synced;
  messagesArrived(conv, conv.merge([m]));
  if (fresh) saveProfile();
});

onServerEvent("announcement", (a) => {
  if (!isMessage(a)) return;
  const conv = ensureConversation(NEWS, "announcements");
  const added = conv.merge([a]);
  if (!added.length) return;
  store.banner = a;
  view.renderAnnouncementBanner();
  messagesArrived(conv, added);
});
