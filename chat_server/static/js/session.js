// Signing in and out, and the life of the connection: connect, the server's
// `welcome` (its word on who you are), refusals, drops and reconnect attempts.

import { openSocket } from "./connection.js";
import { $ } from "./dom.js";
import { requeueInFlight } from "./outbox.js";
import { bindServerEvents } from "./server-events.js";
import { readJSON, restoreProfile, writeJSON } from "./storage.js";
import { activeConversation, store } from "./store.js";
import { connectionLost, resync } from "./sync.js";
import * as view from "./view/index.js";

const WELCOME_WAIT_MS = 3000;

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
  bindLifecycle(socket);
  bindServerEvents(socket);
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

function bindLifecycle(socket) {
  let welcomeTimer = null;
  // Set when an administrator closed this session (the server says why just
  // before its DISCONNECT): then the session ends here, with no reconnect.
  let removal = null;

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

  socket.on("removed", (notice) => {
    removal = notice && typeof notice.message === "string" ? notice.message : "";
  });

  socket.on("disconnect", (reason) => {
    clearTimeout(welcomeTimer);
    if (reason === "io client disconnect") return;
    if (reason === "io server disconnect" && removal !== null) {
      signOut(`You were signed out: ${removal || "an administrator closed your session."}`);
      return;
    }
    connectionLost();
    requeueInFlight();
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
}

export function wireSignIn() {
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

  $("signout-button").addEventListener("click", () => signOut());
}

/** Sign back in with the tab's session, if it has one; else show the sign-in card. */
export function startSession() {
  const session = readJSON(sessionStorage, "session");
  if (session && (typeof session.username === "string" || typeof session.token === "string")) {
    view.showSignIn({ busy: true });
    signIn(session.token ? { token: session.token } : { username: session.username });
  } else {
    view.showSignIn();
    $("username").focus();
  }
}
