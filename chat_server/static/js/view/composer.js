// The message box, its length counter, and the "is typing" line above it.

import { $, el } from "../dom.js";
import { NEWS, ROOM } from "../state.js";
import { activeConversation, store } from "../store.js";

const MAX_COMPOSER_LINES_PX = 180;

export function renderComposer() {
  const conv = activeConversation();
  // a room we were removed from takes no messages until we are back in it
  const writable = Boolean(conv) && conv.kind !== NEWS && !conv.out;
  $("composer").hidden = !writable;
  if (!writable) return;
  const editing = store.editing !== null && store.editing.convKey === conv.key;
  $("edit-bar").hidden = !editing;
  $("composer").classList.toggle("editing", editing);
  const label = editing ? "Edit your message"
    : conv.kind === ROOM ? `Message #${conv.name}` : `Message ${conv.name}`;
  $("message-label").textContent = label;
  $("message-input").placeholder = label;
  $("send-button").setAttribute("aria-label", editing ? "Save the edit" : "Send");
}

/** Why the edit was not saved (empty to clear it). */
export function setEditError(text) {
  $("edit-error").textContent = text;
}

export function autosizeComposer() {
  const box = $("message-input");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, MAX_COMPOSER_LINES_PX)}px`;
}

export function setCount(text, { over = false } = {}) {
  const count = $("composer-count");
  count.textContent = text;
  count.classList.toggle("over", over);
}

export function renderTyping() {
  const conv = activeConversation();
  const box = $("typing");
  const users = conv && conv.kind === ROOM ? conv.typingUsers() : [];
  if (!users.length) {
    box.replaceChildren();
    box.classList.remove("active");
    return;
  }
  let text;
  if (users.length === 1) text = `${users[0]} is typing`;
  else if (users.length === 2) text = `${users[0]} and ${users[1]} are typing`;
  else if (users.length === 3) text = `${users[0]}, ${users[1]} and ${users[2]} are typing`;
  else text = "Several people are typing";
  box.replaceChildren(
    el("span", { className: "dots", attrs: { "aria-hidden": "true" } }, el("span"), el("span"), el("span")),
    el("span", {}, `${text}…`),
  );
  box.classList.add("active");
}
