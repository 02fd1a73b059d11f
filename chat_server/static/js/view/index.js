// Rendering: turns the store into DOM. It reads the store and never changes it;
// what a person does in it goes back through `actions`. Controllers import this
// module as `view`, so they need not know which part draws what.

import { $, avatar } from "../dom.js";
import { store } from "../store.js";
import { renderAnnouncementBanner, renderConnection } from "./status.js";
import { renderComposer, renderTyping } from "./composer.js";
import { renderHeader } from "./header.js";
import { renderMembers } from "./members.js";
import { renderSidebar } from "./sidebar.js";
import { renderPending, renderTimeline } from "./timeline.js";

export { provideActions } from "./actions.js";
export { autosizeComposer, renderComposer, renderTyping, setCount, setEditError } from "./composer.js";
export { renderHeader } from "./header.js";
export { renderMembers, toggleMembers } from "./members.js";
export { renderRoomSettings, setSettingsMessage, toggleRoomSettings } from "./room.js";
export { renderSidebar, setDrawer } from "./sidebar.js";
export { setSignInBusy, setSignInError, showSignIn } from "./signin.js";
export { renderAnnouncementBanner, renderConnection, toast } from "./status.js";
export {
  entriesAdded, isNearBottom, isNearTop, overflows, renderPending, renderTimeline, renderTimelineTop,
  saveScroll, scrollToBottom,
} from "./timeline.js";

export function renderAll() {
  renderSidebar();
  renderHeader();
  renderTimeline({ scroll: "restore" });
  renderPending();
  renderMembers();
  renderTyping();
  renderComposer();
  renderConnection();
  renderAnnouncementBanner();
}

export function showChat() {
  document.body.dataset.view = "chat";
  $("signin-view").hidden = true;
  $("chat-view").hidden = false;
  const me = store.me;
  $("me-name").textContent = me;
  $("me-avatar").replaceWith(Object.assign(avatar(me, "me-avatar"), { id: "me-avatar" }));
  renderAll();
}
