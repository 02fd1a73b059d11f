// Own messages on their way: shown at once as pending, sent one after another so a
// burst keeps its order, held while offline, retried on request, never sent twice:
// each carries a client_id, so the server answers a retry of a send it already
// stored with the first answer instead of storing it again.

import { request } from "./connection.js";
import { messagesArrived } from "./messages.js";
import { MAX_TEXT, NEWS, ROOM, textLength } from "./state.js";
import { activeConversation, store } from "./store.js";
import { joinRoom } from "./sync.js";
import { stopTyping } from "./typing.js";
import * as view from "./view/index.js";

let outboxSeq = 0;
let sendChain = Promise.resolve();

/** A fresh client_id: 22 random letters, digits, '_' and '-' (crypto works on plain http too). */
export function newClientId() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  return Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => alphabet[b & 63]).join("");
}

/** Put `text` in the outbox of the open conversation; false if there is nothing to send. */
export function send(text) {
  const conv = activeConversation();
  if (!conv || conv.kind === NEWS) return false;
  const trimmed = text.trim();
  if (!trimmed) return false;
  if (textLength(trimmed) > MAX_TEXT) {
    view.toast(`That message is too long: ${textLength(trimmed)} of ${MAX_TEXT} characters.`, "error");
    return false;
  }
  const item = {
    seq: ++outboxSeq,
    convKey: conv.key,
    text: trimmed,
    clientId: newClientId(),
    createdAt: Date.now(),
    state: "queued",
    error: null,
  };
  store.outbox.push(item);
  stopTyping(conv);
  enqueue(item);
  return true;
}

/** Send one outbox item after those before it, so a burst keeps its order. */
export function enqueue(item) {
  item.state = "queued";
  item.error = null;
  view.renderPending();
  sendChain = sendChain.then(() => deliver(item)).catch(() => {});
}

export function flushOutbox() {
  for (const item of store.outbox) if (item.state === "queued") enqueue(item);
}

/** The connection dropped: what was being sent waits for the next one. */
export function requeueInFlight() {
  for (const item of store.outbox) if (item.state === "sending") item.state = "queued";
}

export function dropFromOutbox(item) {
  store.outbox = store.outbox.filter((i) => i !== item);
  view.renderPending();
}

export function dropConversation(key) {
  store.outbox = store.outbox.filter((item) => item.convKey !== key);
}

/** If the server echoed our own message before acking it, the echo settles the item. */
export function settleEcho(conv, m) {
  if (m.from !== store.me || typeof m.client_id !== "string") return;
  const item = store.outbox.find((i) => i.convKey === conv.key && i.clientId === m.client_id);
  if (item) dropFromOutbox(item);
}

async function deliver(item) {
  if (!store.outbox.includes(item) || item.state !== "queued") return;
  const conv = store.conversations.get(item.convKey);
  if (!conv) {
    dropFromOutbox(item);
    return;
  }
  const socket = store.socket;
  // A room must be joined on this connection first; a private message needs nothing.
  if (!socket?.connected || (conv.kind === ROOM && !conv.synced)) {
    view.renderPending();
    return; // flushed once the conversation is synced
  }
  item.state = "sending";
  view.renderPending();
  try {
    const answer = conv.kind === ROOM
      ? await request(socket, "message", { room: conv.name, text: item.text, client_id: item.clientId })
      : await request(socket, "private_message", { to: conv.name, text: item.text, client_id: item.clientId });
    dropFromOutbox(item);
    const sent = { from: store.me, text: item.text, client_id: item.clientId, id: answer.id, ts: answer.ts };
    const message = conv.kind === ROOM ? { ...sent, room: conv.name } : { ...sent, to: conv.name };
    messagesArrived(conv, conv.merge([message]));
  } catch (err) {
    if (!store.outbox.includes(item)) return;
    if (err.code === "offline") {
      item.state = "queued";
    } else if (err.code === "not_in_room" && conv.kind === ROOM && !item.rejoined) {
      item.rejoined = true;
      item.state = "queued";
      conv.synced = false;
      await joinRoom(conv, store.syncGeneration);
      enqueue(item);
      return;
    } else {
      item.state = "failed";
      item.error = err.code === "timeout" ? "no answer from the server" : err.detail;
    }
    view.renderPending();
  }
}
