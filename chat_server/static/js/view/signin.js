// The sign-in card.

import { $ } from "../dom.js";

export function showSignIn({ error = "", busy = false } = {}) {
  document.body.dataset.view = "signin";
  $("signin-view").hidden = false;
  $("chat-view").hidden = true;
  setSignInBusy(busy);
  setSignInError(error);
  document.title = "Chat";
}

export function setSignInBusy(busy, label = "Connecting…") {
  const button = $("signin-button");
  button.disabled = busy;
  button.textContent = busy ? label : "Sign in";
  $("signin-form").setAttribute("aria-busy", String(busy));
}

export function setSignInError(message, { tone = "error" } = {}) {
  const box = $("signin-error");
  box.textContent = message;
  box.dataset.tone = tone;
  box.hidden = !message;
}
