// Who is in a room: `presence` events keep the member list and add the
// "bob joined" / "bob left" lines.

import { onServerEvent } from "./server-events.js";
import { roomFor, store } from "./store.js";
import * as view from "./view/index.js";

onServerEvent("presence", (p) => {
  if (!p || typeof p.room !== "string" || typeof p.user !== "string") return;
  const conv = roomFor(p.room);
  if (!conv) return;
  let notice = null;
  if (p.action === "join" && !conv.members.has(p.user)) {
    conv.members.add(p.user);
    if (p.user !== store.me) notice = conv.addNotice(`${p.user} joined`);
  } else if (p.action === "leave" && conv.members.has(p.user)) {
    conv.members.delete(p.user);
    conv.typing.delete(p.user);
    if (p.user !== store.me) notice = conv.addNotice(`${p.user} left`);
  }
  if (conv.key !== store.activeKey) return;
  if (notice) view.entriesAdded(conv, [notice]);
  view.renderHeader();
  view.renderMembers();
  view.renderTyping();
});
