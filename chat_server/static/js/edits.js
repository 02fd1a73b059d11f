// Changing messages after they were sent: editing and deleting our own, and
// reactions; and applying the changes the server announces (`message_updated`),
// whoever made them. A change replaces the shown message only when its `rev`
// is newer, so changes arriving late or twice never undo a later one.

import { request } from "./connection.js";
import { $ } from "./dom.js";
import { onServerEvent } from "./server-events.js";
import { DM, conversationKey, conversationTarget, isMessage, peerOf } from "./state.js";
import { activeConversation, roomFor, store } from "./store.js";
import * as view from "./view/index.js";

/** Replace what `conv` shows of `list` by the newer states in it, and redraw if any changed. */
export function applyUpdates(conv, list) {
  const changed = conv.update(list);
  if (changed.length && conv.key === store.activeKey) view.renderTimeline({ scroll: "keep" });
  if (store.editing && changed.some((m) => m.id === store.editing.id && m.deleted)) cancelEdit();
  return changed;
}

/** Put our message `m` of the open conversation in the composer to edit it. */
export function startEdit(m) {
  const conv = activeConversation();
  if (!conv || !m || m.from !== store.me || m.deleted) return;
  store.editing = { convKey: conv.key, id: m.id };
  const input = $("message-input");
  input.value = m.text;
  view.renderComposer();
  view.autosizeComposer();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

export function cancelEdit() {
  if (!store.editing) return;
  store.editing = null;
  $("message-input").value = "";
  view.setEditError("");
  view.renderComposer();
  view.autosizeComposer();
}

/** Send the composer's text as the new text of the message being edited. */
export async function saveEdit(text) {
  const editing = store.editing;
  const conv = editing && store.conversations.get(editing.convKey);
  if (!conv) {
    cancelEdit();
    return;
  }
  // empty or too long text is the server's to refuse: its answer is shown as it gives it
  const trimmed = text.trim();
  const shown = conv.messages.get(editing.id);
  if (shown && shown.text === trimmed) {
    cancelEdit();
    return;
  }
  try {
    await request(store.socket, "edit", { ...conversationTarget(conv), id: editing.id, text: trimmed });
  } catch (err) {
    view.setEditError(`Not saved: ${err.detail}`);
    return;
  }
  if (store.editing === editing) cancelEdit();
}

/** Delete our message `m` of the open conversation, once the person confirmed it. */
export async function deleteMessage(m) {
  const conv = activeConversation();
  if (!conv || !m || m.deleted) return;
  if (!window.confirm("Delete this message for everyone?")) return;
  try {
    await request(store.socket, "delete", { ...conversationTarget(conv), id: m.id });
  } catch (err) {
    view.toast(`Could not delete the message: ${err.detail}`, "error");
  }
}

/** Add our `emoji` reaction to `m`, or take it back if we had given it. */
export async function toggleReaction(m, emoji) {
  const conv = activeConversation();
  if (!conv || !m || m.deleted) return;
  const users = m.reactions && Array.isArray(m.reactions[emoji]) ? m.reactions[emoji] : [];
  try {
    await request(store.socket, "react", { ...conversationTarget(conv), id: m.id, emoji, add: !users.includes(store.me) });
  } catch (err) {
    view.toast(`Could not react: ${err.detail}`, "error");
  }
}

onServerEvent("message_updated", (m) => {
  if (!isMessage(m) || !store.me) return;
  let conv = null;
  if (typeof m.room === "string") conv = roomFor(m.room);
  else if (typeof m.to === "string") conv = store.conversations.get(conversationKey(DM, peerOf(m, store.me))) ?? null;
  if (conv) applyUpdates(conv, [m]);
});
