// The chat page: signs in, keeps the connection, and ties server events to the view.

import { ChatError, openSocket, request } from "./js/connection.js";
import { $ } from "./js/dom.js";
import {
  Conversation, DM, NEWS, PAGE_SIZE, ROOM, compareIds, conversationKey, isMessage, mentions, peerOf,
  textLength,
} from "./js/state.js";
import { activeConversation, ensureConversation, markRead, roomFor, sidebarOrder, store } from "./js/store.js";
import * as view from "./js/view/index.js";

const DEFAULT_ROOM = "lobby";
const MAX_TEXT = 2000;
const TYPING_EVERY_MS = 2000; // send at most one `typing` per room in this time
const TYPING_SHOWN_MS = 4000; // show "is typing" this long after the last one
const WELCOME_WAIT_MS = 3000;
const GAP_FILL_ROUNDS = 5;
const DISCOVER_LIMIT = 50; // private conversations asked for on each (re)connect
const MAX_CLOSED = 200; // closed private conversations remembered per user
const NEWS_KEY = conversationKey(NEWS, "announcements");
const STORAGE = "chat.v1";

view.provideActions({
  open: (key) => openConversation(key),
  close: (key) => closeConversation(key),
  startPrivate: (user) => startPrivate(user),
  retry: (item) => enqueue(item),
  discard: (item) => dropFromOutbox(item),
  dismissBanner: () => {
    store.banner = null;
    view.renderAnnouncementBanner();
  },
  timelineRendered: (conv) => fillViewport(conv),
});

// -- persistence ---------------------------------------------------------------------
// The session (who you are) lives as long as the tab; the places you were in are
// remembered per user, so a reload or a new tab puts you back where you were.

function readJSON(storage, key) {
  try {
    return JSON.parse(storage.getItem(`${STORAGE}.${key}`) ?? "null");
  } catch {
    return null;
  }
}

function writeJSON(storage, key, value) {
  try {
    if (value === null) storage.removeItem(`${STORAGE}.${key}`);
    else storage.setItem(`${STORAGE}.${key}`, JSON.stringify(value));
  } catch {
    // storage full or disabled: the chat works, it just forgets on reload
  }
}

function saveProfile() {
  if (!store.me) return;
  const convs = [...store.conversations.values()];
  writeJSON(localStorage, `profile.${store.me}`, {
    rooms: convs.filter((c) => c.kind === ROOM).map((c) => c.name),
    dms: convs.filter((c) => c.kind === DM).map((c) => c.name),
    closed: Object.fromEntries(store.closedPrivates),
    active: store.activeKey,
  });
}

function restoreProfile() {
  const profile = readJSON(localStorage, `profile.${store.me}`) ?? {};
  const rooms = Array.isArray(profile.rooms) ? profile.rooms.filter((r) => typeof r === "string") : [];
  const dms = Array.isArray(profile.dms) ? profile.dms.filter((u) => typeof u === "string") : [];
  const closed = profile.closed !== null && typeof profile.closed === "object" ? profile.closed : {};
  store.closedPrivates = new Map(Object.entries(closed).filter(([, id]) => typeof id === "string"));
  for (const name of rooms.length ? rooms : [DEFAULT_ROOM]) ensureConversation(ROOM, name);
  for (const name of dms) ensureConversation(DM, name);
  const active = typeof profile.active === "string" && store.conversations.has(profile.active)
    ? profile.active
    : conversationKey(ROOM, rooms[0] ?? DEFAULT_ROOM);
  store.activeKey = active;
}

// -- conversations -------------------------------------------------------------------

function openConversation(key, { focus = true } = {}) {
  const conv = store.conversations.get(key);
  if (!conv) return;
  if (store.activeKey !== key) {
    view.saveScroll();
    const previous = activeConversation();
    if (previous) previous.dividerId = null;
    store.activeKey = key;
    conv.dividerId = conv.firstUnreadId;
  }
  markRead(conv);
  view.setDrawer(false);
  view.renderAll();
  if (conv.kind === DM && !conv.synced && store.socket?.connected) refillPrivate(conv, store.syncGeneration);
  saveProfile();
  if (focus && conv.kind !== NEWS) $("message-input").focus();
}

function startPrivate(user) {
  if (!user || user === store.me) return;
  ensureConversation(DM, user);
  openConversation(conversationKey(DM, user));
}

async function closeConversation(key) {
  const conv = store.conversations.get(key);
  if (!conv) return;
  if (conv.kind === ROOM && store.socket?.connected && conv.synced) {
    try {
      await request(store.socket, "leave", { room: conv.name });
    } catch (err) {
      if (err.code !== "not_in_room" && err.code !== "offline") {
        view.toast(`Could not leave #${conv.name}: ${err.detail}`, "error");
        return;
      }
    }
  }
  // Without a connection there is nothing to tell the server: it already
  // dropped us from every room, and the next sync will not re-join this one.
  if (conv.kind === DM) rememberClosed(conv);
  store.conversations.delete(key);
  store.outbox = store.outbox.filter((item) => item.convKey !== key);
  if (store.activeKey === key) {
    const next = sidebarOrder()[0];
    store.activeKey = next ? next.key : null;
    if (next) next.dividerId = next.firstUnreadId;
    if (next) markRead(next);
  }
  saveProfile();
  view.renderAll();
  if (!store.activeKey) $("join-room").focus();
}

/**
 * Remember how far a closed private conversation went, so that `conversations`
 * does not bring it back on the next connection unless something newer came.
 */
function rememberClosed(conv) {
  const known = [conv.lastId, store.partnerLast.get(conv.name)].filter((id) => typeof id === "string");
  store.closedPrivates.delete(conv.name); // re-insert, so the map's order is closing order
  store.closedPrivates.set(conv.name, known.sort(compareIds).pop() ?? "");
  while (store.closedPrivates.size > MAX_CLOSED) {
    store.closedPrivates.delete(store.closedPrivates.keys().next().value);
  }
}

/** Record new messages of `conv`: unread counts, typing, and the view. */
function messagesArrived(conv, added, { live = true } = {}) {
  if (!added.length) return;
  const visible = conv.key === store.activeKey && !document.hidden;
  for (const m of added) {
    conv.typing.delete(m.from);
    if (m.from === store.me || visible || !live) continue;
    conv.unread += 1;
    if (mentions(m.text, store.me)) conv.mentions += 1;
    if (!conv.firstUnreadId) conv.firstUnreadId = m.id;
  }
  view.entriesAdded(conv, added, { own: added.some((m) => m.from === store.me && live) });
  if (conv.key === store.activeKey) {
    view.renderTyping();
    view.renderMembers();
  }
  view.renderSidebar();
}

// -- signing in and out --------------------------------------------------------------

function signIn(auth) {
  teardownSocket();
  store.auth = auth;
  store.connection = "connecting";
  view.setSignInError("");
  view.setSignInBusy(true);
  let socket;
  try {
    socket = openSocket(auth);
  } catch (err) {
    view.showSignIn({ error: err.message });
    return;
  }
  store.socket = socket;
  bindSocket(socket);
}

function teardownSocket() {
  const socket = store.socket;
  store.socket = null;
  store.syncGeneration += 1;
  if (socket) {
    socket.disconnect();
    socket.removeAllListeners();
    socket.io.off("reconnect_attempt");
  }
}

function signOut(message = "") {
  teardownSocket();
  writeJSON(sessionStorage, "session", null);
  store.me = null;
  store.auth = null;
  store.signedIn = false;
  store.conversations.clear();
  store.joining.clear();
  store.closedPrivates.clear();
  store.partnerLast.clear();
  store.activeKey = null;
  store.outbox = [];
  store.banner = null;
  store.connection = "idle";
  store.lastCatchUp = null;
  view.setDrawer(false);
  view.showSignIn({ error: message });
  const username = $("username");
  if (username.value) username.select();
  username.focus();
}

function onSignedIn(user) {
  store.me = user;
  store.signedIn = true;
  writeJSON(sessionStorage, "session", store.auth);
  if (store.auth.username) writeJSON(localStorage, "last-username", store.auth.username);
  restoreProfile();
  view.showChat();
  const conv = activeConversation();
  if (conv) conv.dividerId = null;
  if (!matchMedia("(max-width: 760px)").matches) $("message-input").focus();
}

// -- the connection ------------------------------------------------------------------

function bindSocket(socket) {
  let welcomeTimer = null;

  socket.on("connect", () => {
    store.reconnectAttempt = 0;
    // Guest mode knows its name already; `welcome` is the server's word on it,
    // and the only source of it in token mode.
    clearTimeout(welcomeTimer);
    welcomeTimer = setTimeout(() => {
      if (store.auth?.username) onWelcome({ user: store.auth.username });
    }, WELCOME_WAIT_MS);
  });

  socket.on("welcome", (payload) => {
    clearTimeout(welcomeTimer);
    onWelcome(payload);
  });

  socket.on("connect_error", (err) => {
    const message = (err && err.message) || "The server refused the connection.";
    const code = err && err.data && typeof err.data === "object" ? err.data.code : undefined;
    if (!socket.active) {
      // Refused by the server (bad name, bad or expired token): retrying will not help.
      if (store.signedIn) {
        signOut(`You were signed out: ${message}`);
        return;
      }
      teardownSocket();
      store.connection = "idle";
      view.showSignIn({ error: message });
      if (code === "token_required" || code === "invalid_token") {
        $("token-details").open = true;
        $("token").focus();
      } else {
        $("username").focus();
        $("username").select();
      }
      return;
    }
    // A transport problem: Socket.IO keeps trying by itself.
    if (!store.signedIn) {
      view.setSignInError(`Cannot reach the server yet (${message}). Still trying…`, { tone: "info" });
    } else {
      store.connection = "reconnecting";
      view.renderConnection();
    }
  });

  socket.on("disconnect", (reason) => {
    clearTimeout(welcomeTimer);
    if (reason === "io client disconnect") return;
    store.syncGeneration += 1;
    for (const conv of store.conversations.values()) {
      conv.synced = false;
      conv.typing.clear();
    }
    for (const item of store.outbox) if (item.state === "sending") item.state = "queued";
    if (!store.signedIn) return;
    store.connection = "reconnecting";
    store.lastCatchUp = null;
    view.renderAll();
    if (reason === "io server disconnect") {
      // The server closed this session on purpose; Socket.IO will not retry
      // by itself, but a fresh session may well be welcome.
      setTimeout(() => {
        if (store.socket === socket && !socket.connected) socket.connect();
      }, 2000);
    }
  });

  socket.io.on("reconnect_attempt", (attempt) => {
    store.reconnectAttempt = attempt;
    if (store.signedIn) view.renderConnection();
  });

  socket.on("message", (m) => {
    if (!isMessage(m) || typeof m.room !== "string") return;
    const conv = roomFor(m.room);
    if (!conv) return;
    settleEcho(conv, m);
    messagesArrived(conv, conv.merge([m]));
  });

  socket.on("private_message", (m) => {
    if (!isMessage(m) || typeof m.to !== "string" || !store.me) return;
    const peer = peerOf(m, store.me);
    const conv = ensureConversation(DM, peer);
    settleEcho(conv, m);
    const fresh = conv.ids.length === 0 && !conv.synced;
    messagesArrived(conv, conv.merge([m]));
    if (fresh) saveProfile();
  });

  socket.on("presence", (p) => {
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

  socket.on("typing", (t) => {
    if (!t || typeof t.room !== "string" || typeof t.user !== "string" || t.user === store.me) return;
    const conv = roomFor(t.room);
    if (!conv) return;
    conv.typing.set(t.user, Date.now() + TYPING_SHOWN_MS);
    if (conv.key === store.activeKey) {
      view.renderTyping();
      view.renderMembers();
    }
    setTimeout(() => {
      if (conv.key === store.activeKey) {
        view.renderTyping();
        view.renderMembers();
      }
    }, TYPING_SHOWN_MS + 50);
  });

  socket.on("announcement", (a) => {
    if (!isMessage(a)) return;
    const conv = ensureConversation(NEWS, "announcements");
    const added = conv.merge([a]);
    if (!added.length) return;
    store.banner = a;
    view.renderAnnouncementBanner();
    messagesArrived(conv, added);
  });

  // The server lost its link to the other processes for a while and has it
  // back: what they sent meanwhile is in history, so catch up as after a
  // reconnect.
  socket.on("resync", () => {
    if (store.signedIn && socket.connected) resync({ reconnect: true });
  });
}

function onWelcome(payload) {
  const user = payload && typeof payload.user === "string" ? payload.user : null;
  if (!user || !store.socket?.connected) return;
  if (!store.signedIn) {
    onSignedIn(user);
    resync({ reconnect: false });
  } else if (user !== store.me) {
    // Someone else's token in the same tab: start over as them.
    const auth = store.auth;
    signOut();
    signIn(auth);
  } else if (store.connection !== "syncing" && store.connection !== "online") {
    resync({ reconnect: true });
  }
}

/**
 * Bring every conversation up to date on a new connection: rooms re-join with
 * `since` (the newest id the page holds), private conversations page back
 * through `history` until they meet what the page holds, and `conversations`
 * brings in the private conversations the page has never seen. Merging by id
 * makes this safe against overlaps with live events arriving meanwhile.
 */
async function resync({ reconnect }) {
  const generation = ++store.syncGeneration;
  store.connection = reconnect ? "syncing" : "online";
  store.lastCatchUp = null;
  view.renderConnection();
  const rooms = [...store.conversations.values()].filter((c) => c.kind === ROOM);
  const privates = [...store.conversations.values()].filter((c) => c.kind === DM
    && (c.ids.length > 0 || c.key === store.activeKey));
  const counts = await Promise.all([
    ...rooms.map((c) => joinRoom(c, generation, { reconnect })),
    ...privates.map((c) => refillPrivate(c, generation, { reconnect })),
    discoverPrivates(generation, { reconnect }),
  ]);
  if (generation !== store.syncGeneration) return;
  store.connection = "online";
  store.lastCatchUp = reconnect ? counts.reduce((a, b) => a + b, 0) : null;
  view.renderAll();
  flushOutbox();
}

/** Join (or re-join) `conv`; returns how many messages it added. */
async function joinRoom(conv, generation, { reconnect = false } = {}) {
  const since = conv.lastId;
  let answer;
  try {
    answer = await request(store.socket, "join", since ? { room: conv.name, since } : { room: conv.name });
  } catch (err) {
    if (generation !== store.syncGeneration) return 0;
    if (err.code === "invalid") {
      store.conversations.delete(conv.key);
      if (store.activeKey === conv.key) store.activeKey = sidebarOrder()[0]?.key ?? null;
      saveProfile();
      view.toast(`Could not join #${conv.name}: ${err.detail}`, "error");
    } else {
      conv.notice = `Could not join this room: ${err.detail}`;
    }
    view.renderAll();
    return 0;
  }
  if (generation !== store.syncGeneration) return 0;
  return applyJoin(conv, answer, since, { reconnect });
}

function applyJoin(conv, answer, since, { reconnect }) {
  conv.synced = true;
  if (store.connection === "online") flushOutbox();
  conv.members = new Set((answer.members ?? []).filter((u) => typeof u === "string"));
  const history = Array.isArray(answer.history) ? answer.history : [];
  let added;
  if (since && answer.recovered === false) {
    conv.clear();
    added = conv.merge(history);
    conv.notice = "Some messages from while you were away could not be recovered, so this room's history was reloaded.";
    if (conv.key === store.activeKey) view.renderTimeline({ scroll: "bottom" });
    countUnread(conv, added, reconnect);
  } else {
    if (!since) conv.reachedStart = history.length < PAGE_SIZE;
    added = conv.merge(history);
    countUnread(conv, added, reconnect);
    if (conv.key === store.activeKey) view.entriesAdded(conv, added);
  }
  if (conv.key === store.activeKey) {
    view.renderHeader();
    view.renderMembers();
    view.renderTimelineTop();
  }
  view.renderSidebar();
  return reconnect ? added.length : 0;
}

function countUnread(conv, added, reconnect) {
  if (!reconnect) return;
  const visible = conv.key === store.activeKey && !document.hidden;
  for (const m of added) {
    if (m.from === store.me || visible) continue;
    conv.unread += 1;
    if (mentions(m.text, store.me)) conv.mentions += 1;
    if (!conv.firstUnreadId) conv.firstUnreadId = m.id;
  }
}

/**
 * Fetch a private conversation's history; after a reconnect, page back until
 * the pages meet the newest message the page already had, so nothing in
 * between is skipped. Returns how many messages it added.
 */
async function refillPrivate(conv, generation, { reconnect = false } = {}) {
  if (conv.loading) return 0;
  conv.loading = true;
  const since = conv.lastId;
  try {
    let page = await historyPage(conv, { limit: PAGE_SIZE });
    let collected = page;
    let exhausted = page.length < PAGE_SIZE;
    let rounds = 0;
    while (since && !exhausted && collected.length && compareIds(collected[0].id, since) > 0
           && rounds < GAP_FILL_ROUNDS) {
      if (generation !== store.syncGeneration) return 0;
      page = await historyPage(conv, { before: collected[0].id, limit: 200 });
      collected = page.concat(collected);
      exhausted = page.length < 200;
      rounds += 1;
    }
    if (generation !== store.syncGeneration) return 0;
    conv.synced = true;
    const met = !since || !collected.length || compareIds(collected[0].id, since) <= 0;
    let added;
    if (met) {
      // a short last page means the pages reached the start of what the server keeps
      if (exhausted) conv.reachedStart = true;
      added = conv.merge(collected);
      countUnread(conv, added, reconnect);
      if (conv.key === store.activeKey) view.entriesAdded(conv, added);
    } else {
      conv.clear();
      added = conv.merge(collected);
      conv.reachedStart = exhausted;
      conv.notice = "Some private messages from while you were away could not be recovered, so this conversation was reloaded.";
      if (conv.key === store.activeKey) view.renderTimeline({ scroll: "bottom" });
    }
    if (conv.key === store.activeKey) {
      view.renderHeader();
      view.renderTimelineTop();
    }
    view.renderSidebar();
    return reconnect ? added.length : 0;
  } catch (err) {
    if (generation === store.syncGeneration && err.code !== "offline") {
      view.toast(`Could not load the conversation with ${conv.name}: ${err.detail}`, "error");
    }
    return 0;
  } finally {
    conv.loading = false;
  }
}

/**
 * Add the private conversations the page does not know: those started while it
 * was offline or on another device, or closed here before something newer came.
 * Each arrives with its newest message, which counts as unread when the other
 * person wrote it; its history loads when it is opened. Merging by id keeps a
 * message that also arrives live (or was already here) from counting twice.
 * Returns how many messages it added after a reconnect.
 */
async function discoverPrivates(generation, { reconnect }) {
  const known = new Set(store.conversations.keys());
  let answer;
  try {
    answer = await request(store.socket, "conversations", { limit: DISCOVER_LIMIT });
  } catch (err) {
    // A server without the event (`unknown_event`) leaves the page as it was before it.
    if (generation === store.syncGeneration && err.code !== "offline" && err.code !== "unknown_event") {
      view.toast(`Could not list your private conversations: ${err.detail}`, "error");
    }
    return 0;
  }
  if (generation !== store.syncGeneration) return 0;
  let count = 0;
  let found = false;
  for (const entry of Array.isArray(answer.conversations) ? answer.conversations : []) {
    const peer = entry !== null && typeof entry === "object" && typeof entry.with === "string" ? entry.with : "";
    if (!peer) continue;
    const last = isMessage(entry.last) && typeof entry.last.to === "string"
      && peerOf(entry.last, store.me) === peer ? entry.last : null;
    if (last) store.partnerLast.set(peer, last.id);
    if (known.has(conversationKey(DM, peer))) continue;
    const closedAt = store.closedPrivates.get(peer);
    if (closedAt !== undefined && (!last || compareIds(last.id, closedAt) <= 0)) continue;
    const conv = ensureConversation(DM, peer);
    found = true;
    const added = conv.merge(last ? [last] : []);
    countUnread(conv, added, true);
    if (conv.key === store.activeKey) view.entriesAdded(conv, added);
    count += added.length;
  }
  if (found) {
    saveProfile();
    view.renderSidebar();
  }
  return reconnect ? count : 0;
}

async function historyPage(conv, { before, limit }) {
  const payload = conv.kind === ROOM ? { room: conv.name } : { with: conv.name };
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
function fillViewport(conv) {
  if (!conv || conv.reachedStart || conv.loadingOlder || !conv.synced) return;
  requestAnimationFrame(() => {
    if (conv.key === store.activeKey && !view.overflows()) loadOlder(conv);
  });
}

// -- sending -------------------------------------------------------------------------

let outboxSeq = 0;

function send(text) {
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
    createdAt: Date.now(),
    afterId: conv.lastId,
    state: "queued",
    attempted: false,
    error: null,
  };
  store.outbox.push(item);
  stopTyping(conv);
  enqueue(item);
  return true;
}

/** Send one outbox item after those before it, so a burst keeps its order. */
function enqueue(item) {
  item.state = "queued";
  item.error = null;
  view.renderPending();
  store.sendChain = store.sendChain.then(() => deliver(item)).catch(() => {});
}

function flushOutbox() {
  for (const item of store.outbox) if (item.state === "queued") enqueue(item);
}

function dropFromOutbox(item) {
  store.outbox = store.outbox.filter((i) => i !== item);
  view.renderPending();
}

/** If the server echoed our own message before acking it, the echo settles the item. */
function settleEcho(conv, m) {
  if (m.from !== store.me) return;
  const item = store.outbox.find((i) => i.convKey === conv.key && i.state === "sending" && i.text === m.text);
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
  if (item.attempted) {
    // A try whose answer was lost may still have been stored: the catch-up
    // after reconnecting shows it, so do not send it twice.
    const stored = [...conv.messages.values()].some((m) => m.from === store.me && m.text === item.text
      && (item.afterId === null || compareIds(m.id, item.afterId) > 0));
    if (stored) {
      dropFromOutbox(item);
      return;
    }
  }
  item.state = "sending";
  item.attempted = true;
  view.renderPending();
  try {
    const answer = conv.kind === ROOM
      ? await request(socket, "message", { room: conv.name, text: item.text })
      : await request(socket, "private_message", { to: conv.name, text: item.text });
    dropFromOutbox(item);
    const message = conv.kind === ROOM
      ? { id: answer.id, room: conv.name, from: store.me, text: item.text, ts: answer.ts }
      : { id: answer.id, from: store.me, to: conv.name, text: item.text, ts: answer.ts };
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

/**
 * Tell the room we are typing: at most once per TYPING_EVERY_MS, with one
 * trailing send at the end of a window, so steady typing keeps the others'
 * indicator alive without flooding the server.
 */
function sendTyping() {
  const conv = activeConversation();
  const socket = store.socket;
  if (!conv || conv.kind !== ROOM || !conv.synced || !socket?.connected) return;
  const wait = TYPING_EVERY_MS - (Date.now() - (store.lastTypingSent.get(conv.key) ?? 0));
  if (wait <= 0) {
    store.lastTypingSent.set(conv.key, Date.now());
    socket.emit("typing", { room: conv.name });
  } else if (!store.typingTimer) {
    store.typingTimer = setTimeout(() => {
      store.typingTimer = null;
      if (activeConversation() === conv && $("message-input").value.trim()) sendTyping();
    }, wait);
  }
}

function stopTyping(conv) {
  clearTimeout(store.typingTimer);
  store.typingTimer = null;
  // our message ends the others' "is typing" for us, so the next keystroke may say it again
  store.lastTypingSent.delete(conv.key);
}

// -- joining rooms -------------------------------------------------------------------

async function joinByName(raw) {
  const name = raw.trim();
  const error = $("join-error");
  error.textContent = "";
  if (!name) {
    error.textContent = "Type the name of a room.";
    return false;
  }
  const key = conversationKey(ROOM, name);
  if (store.conversations.has(key)) {
    openConversation(key);
    return true;
  }
  if (!store.socket?.connected || store.connection !== "online") {
    ensureConversation(ROOM, name); // joined by the next sync
    openConversation(key);
    return true;
  }
  const conv = store.joining.get(key) ?? new Conversation(ROOM, name);
  store.joining.set(key, conv);
  let answer;
  try {
    answer = await request(store.socket, "join", { room: name });
  } catch (err) {
    error.textContent = err.detail;
    return false;
  } finally {
    store.joining.delete(key);
  }
  store.conversations.set(key, conv);
  applyJoin(conv, answer, null, { reconnect: false });
  markRead(conv); // anything that arrived before the answer is part of the first view
  openConversation(key);
  return true;
}

// -- wiring the page -----------------------------------------------------------------

function wireSignIn() {
  const form = $("signin-form");
  const username = $("username");
  const token = $("token");
  const last = readJSON(localStorage, "last-username");
  if (typeof last === "string") username.value = last;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const tokenText = token.value.trim();
    if (tokenText) {
      signIn({ token: tokenText });
      return;
    }
    const name = username.value.trim();
    if (!name) {
      view.setSignInError("Type a username (or open “Sign in with a token”).");
      username.focus();
      return;
    }
    // The server decides what a valid name is and says why it refuses one.
    signIn({ username: name });
  });
}

function wireChat() {
  const input = $("message-input");
  const timeline = $("timeline");

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
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
    }
  });

  input.addEventListener("input", () => {
    view.autosizeComposer();
    const length = textLength(input.value);
    view.setCount(length > MAX_TEXT - 200 ? `${length} / ${MAX_TEXT}` : "", { over: length > MAX_TEXT });
    if (input.value.trim()) sendTyping();
  });

  timeline.addEventListener("scroll", () => {
    const conv = activeConversation();
    if (view.isNearBottom()) $("jump-latest").hidden = true;
    if (conv && view.isNearTop()) loadOlder(conv);
  }, { passive: true });

  $("load-older").addEventListener("click", () => loadOlder(activeConversation()));
  $("jump-latest").addEventListener("click", () => {
    view.scrollToBottom();
    input.focus();
  });

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = $("join-room");
    if (await joinByName(field.value)) field.value = "";
  });

  $("leave-button").addEventListener("click", () => {
    const conv = activeConversation();
    if (conv) closeConversation(conv.key);
  });

  $("conv-notice-close").addEventListener("click", () => {
    const conv = activeConversation();
    if (conv) conv.notice = null;
    view.renderHeader();
  });

  $("signout-button").addEventListener("click", () => signOut());
  $("sidebar-open").addEventListener("click", () => view.setDrawer(true));
  $("sidebar-close").addEventListener("click", () => {
    view.setDrawer(false);
    $("sidebar-open").focus();
  });
  $("members-toggle").addEventListener("click", () => view.toggleMembers());
  $("members-close").addEventListener("click", () => {
    view.toggleMembers(false);
    $("members-toggle").focus();
  });
  $("scrim").addEventListener("click", () => {
    view.setDrawer(false);
    if (document.body.classList.contains("members-overlay")) view.toggleMembers(false);
  });

  document.addEventListener("keydown", (event) => {
    if (store.signedIn !== true) return;
    if (event.key === "Escape") {
      if (document.body.classList.contains("drawer-open")) {
        view.setDrawer(false);
        $("sidebar-open").focus();
      } else if (document.body.classList.contains("members-overlay")) {
        view.toggleMembers(false);
        $("members-toggle").focus();
      }
      return;
    }
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      const order = sidebarOrder();
      if (!order.length) return;
      const at = order.findIndex((c) => c.key === store.activeKey);
      const step = event.key === "ArrowUp" ? -1 : 1;
      openConversation(order[(at + step + order.length) % order.length].key);
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      if (matchMedia("(max-width: 760px)").matches) view.setDrawer(true);
      $("join-room").focus();
    }
  });

  document.addEventListener("visibilitychange", () => {
    const conv = activeConversation();
    if (!document.hidden && conv && conv.unread) {
      markRead(conv);
      view.renderSidebar();
    }
  });
}

function boot() {
  wireSignIn();
  wireChat();
  const session = readJSON(sessionStorage, "session");
  if (session && (typeof session.username === "string" || typeof session.token === "string")) {
    view.showSignIn({ busy: true });
    signIn(session.token ? { token: session.token } : { username: session.username });
  } else {
    view.showSignIn();
    $("username").focus();
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();

// Exposed for curious people in the console; the page does not depend on it.
window.chat = { store, ChatError };
