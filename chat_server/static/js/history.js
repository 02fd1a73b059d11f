// Older messages: pages fetched with `history {before}` as the reader scrolls up.

import { request } from "./connection.js";
import { $ } from "./dom.js";
import { NEWS, PAGE_SIZE, conversationTarget, isMessage } from "./state.js";
import { activeConversation, store } from "./store.js";
import * as view from "./view/index.js";

export async function historyPage(conv, { before, limit }) {
  const payload = conversationTarget(conv);
  if (before) payload.before = before;
  payload.limit = limit;
  const answer = await request(store.socket, "history", payload);
  return (Array.isArray(answer.messages) ? answer.messages : []).filter(isMessage);
}

async function loadOlder(conv) {
  if (!conv || conv.kind === NEWS || conv.loadingOlder || conv.reachedStart || !conv.firstId) return;
  if (!store.socket?.connected) return;
  conv.loadingOlder = true;
  view.renderTimelineTop();
  try {
    const page = await historyPage(conv, { before: conv.firstId, limit: PAGE_SIZE });
    if (page.length < PAGE_SIZE) conv.reachedStart = true;
    const added = conv.merge(page);
    if (conv.key === store.activeKey) {
      conv.loadingOlder = false;
      if (added.length) view.renderTimeline({ scroll: "keep" });
    }
  } catch (err) {
    view.toast(`Could not load older messages: ${err.detail}`, "error");
  } finally {
    conv.loadingOlder = false;
    view.renderTimelineTop();
  }
}

/** A short conversation on a tall screen has no scroll bar to pull: load until it has. */
export function fillViewport(conv) {
  if (!conv || conv.reachedStart || conv.loadingOlder || !conv.synced) return;
  requestAnimationFrame(() => {
    if (conv.key === store.activeKey && !view.overflows()) loadOlder(conv);
  });
}

export function wireTimeline() {
  $("timeline").addEventListener("scroll", () => {
    const conv = activeConversation();
    if (view.isNearBottom()) $("jump-latest").hidden = true;
    if (conv && view.isNearTop()) loadOlder(conv);
  }, { passive: true });

  $("load-older").addEventListener("click", () => loadOlder(activeConversation()));
  $("jump-latest").addEventListener("click", () => {
    view.scrollToBottom();
    $("message-input").focus();
  });
}
