// What the page says about itself: the connection banner and status, the
// announcement banner, and toasts.

import { $, el, icon, richText, timeElement } from "../dom.js";
import { store } from "../store.js";
import { actions } from "./actions.js";

let bannerTimer = null;

export function renderConnection() {
  const { connection, reconnectAttempt, lastCatchUp } = store;
  document.body.dataset.connection = connection;
  const banner = $("connection-banner");
  const status = $("me-status");
  clearTimeout(bannerTimer);
  banner.className = `connection-banner ${connection}`;
  if (connection === "reconnecting") {
    banner.hidden = false;
    banner.replaceChildren(el("span", { className: "spinner", attrs: { "aria-hidden": "true" } }),
      el("span", {}, reconnectAttempt > 0
        ? `Connection lost. Reconnecting… (attempt ${reconnectAttempt})`
        : "Connection lost. Reconnecting…"));
    status.textContent = "reconnecting…";
  } else if (connection === "syncing") {
    banner.hidden = false;
    banner.replaceChildren(el("span", { className: "spinner", attrs: { "aria-hidden": "true" } }),
      el("span", {}, "Reconnected. Catching up on what you missed…"));
    status.textContent = "catching up…";
  } else if (connection === "online" && lastCatchUp !== null) {
    banner.hidden = false;
    const n = lastCatchUp;
    banner.replaceChildren(el("span", {}, n > 0
      ? `Back online. ${n} missed ${n === 1 ? "message" : "messages"} filled in.`
      : "Back online. You did not miss anything."));
    status.textContent = "online";
    bannerTimer = setTimeout(() => {
      banner.hidden = true;
    }, 5000);
  } else {
    banner.hidden = true;
    banner.replaceChildren();
    status.textContent = connection === "online" ? "online" : "connecting…";
  }
}

export function renderAnnouncementBanner() {
  const a = store.banner;
  const box = $("announcement-banner");
  if (!a) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  box.replaceChildren(
    el("span", { className: "announcement-icon", attrs: { "aria-hidden": "true" } }, icon("megaphone", 22)),
    el("div", { className: "announcement-body" },
      el("div", { className: "announcement-meta" },
        el("strong", {}, "Announcement"), " from ", el("span", { className: "sender" }, a.from), " · ", timeElement(a.ts)),
      el("div", { className: "announcement-text" }, ...richText(a.text))),
    el("button", {
      type: "button",
      className: "icon-button small",
      attrs: { "aria-label": "Dismiss the announcement" },
      onclick: () => actions.dismissBanner(),
    }, "×"),
  );
}

export function toast(message, tone = "info") {
  const node = el("div", { className: `toast ${tone}`, attrs: { role: tone === "error" ? "alert" : "status" } }, message);
  $("toasts").append(node);
  setTimeout(() => node.classList.add("leaving"), 4500);
  setTimeout(() => node.remove(), 5000);
}
