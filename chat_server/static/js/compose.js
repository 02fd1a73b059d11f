// The message box: Enter sends, Shift+Enter breaks the line, the counter warns
// near the limit, and typing is announced as you type.

import { $ } from "./dom.js";
import { cancelEdit, saveEdit, startEdit } from "./edits.js";
import { send } from "./outbox.js";
import { MAX_TEXT, textLength } from "./state.js";
import { activeConversation, store } from "./store.js";
import { sendTyping } from "./typing.js";
import * as view from "./view/index.js";

export function wireComposer() {
  const input = $("message-input");

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (store.editing) {
      saveEdit(input.value);
      return;
    }
    if (send(input.value)) {
      input.value = "";
      view.autosizeComposer();
      view.setCount("");
    }
    input.focus();
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "Escape" && store.editing) {
      event.preventDefault();
      event.stopPropagation(); // Escape here cancels the edit, not the drawer
      cancelEdit();
    } else if (event.key === "ArrowUp" && !input.value && !store.editing) {
      const last = activeConversation()?.lastOwn(store.me);
      if (last) {
        event.preventDefault();
        startEdit(last);
      }
    }
  });

  $("edit-cancel").addEventListener("click", () => {
    cancelEdit();
    input.focus();
  });

  input.addEventListener("input", () => {
    view.autosizeComposer();
    const length = textLength(input.value);
    view.setCount(length > MAX_TEXT - 200 ? `${length} / ${MAX_TEXT}` : "", { over: length > MAX_TEXT });
    if (input.value.trim() && !store.editing) sendTyping();
  });
}
