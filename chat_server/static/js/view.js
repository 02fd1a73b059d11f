// Rendering: turns the store into DOM. Reads the store, never changes it;
// user actions go back to the app through the `actions` callbacks.

import { $, append, avatar, clear, dayKey, dayLabel, el, hueOf, icon, richText, timeElement } from "./dom.js";
import { DM, NEWS, ROOM, byName, compareIds, mentions } from "./state.js";

const GROUP_GAP_MS = 5 * 60 * 1000;
const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 150;
const MAX_COMPOSER_LINES_PX = 180;

function hashIcon() {
  return el("span", { className: "conv-icon", attrs: { "aria-hidden": "true" } }, "#");
}

function badge(count, label) {
  if (!count) return null;
  return el("span", { className: "badge", title: label }, count > 99 ? "99+" : String(count),
    el("span", { className: "visually-hidden" }, ` ${label}`));
}

function sameGroup(prev, m) {
  return (
    prev &&
    !prev.notice &&
    prev.from === m.from &&
    m.ts - prev.ts < GROUP_GAP_MS &&
    dayKey(prev.ts) === dayKey(m.ts)
  );
}

export class ChatView {
  constructor(store, actions) {
    this.store = store;
    this.actions = actions;
    this.shown = { key: null, last: null }; // what the message list currently holds
    this.timeline = $("timeline");
    this.list = $("message-list");
    this.pendingList = $("pending-list");
    this.composer = $("message-input");
    this.bannerTimer = null;
    this.wideMembers = window.matchMedia("(min-width: 1100px)");
    this.membersOpen = this.wideMembers.matches;
    this.wideMembers.addEventListener("change", () => {
      this.membersOpen = this.wideMembers.matches;
      this.renderMembers();
    });
  }

  // -- screens ---------------------------------------------------------------------

  showSignIn({ error = "", busy = false } = {}) {
    document.body.dataset.view = "signin";
    $("signin-view").hidden = false;
    $("chat-view").hidden = true;
    this.setSignInBusy(busy);
    this.setSignInError(error);
    document.title = "Chat";
  }

  setSignInBusy(busy, label = "Connecting…") {
    const button = $("signin-button");
    button.disabled = busy;
    button.textContent = busy ? label : "Sign in";
    $("signin-form").setAttribute("aria-busy", String(busy));
  }

  setSignInError(message, { tone = "error" } = {}) {
    const box = $("signin-error");
    box.textContent = message;
    box.dataset.tone = tone;
    box.hidden = !message;
  }

  showChat() {
    document.body.dataset.view = "chat";
    $("signin-view").hidden = true;
    $("chat-view").hidden = false;
    const me = this.store.me;
    $("me-name").textContent = me;
    $("me-avatar").replaceWith(Object.assign(avatar(me, "me-avatar"), { id: "me-avatar" }));
    this.renderAll();
  }

  renderAll() {
    this.renderSidebar();
    this.renderHeader();
    this.renderTimeline({ scroll: "restore" });
    this.renderPending();
    this.renderMembers();
    this.renderTyping();
    this.renderComposer();
    this.renderConnection();
    this.renderAnnouncementBanner();
  }

  // -- sidebar ---------------------------------------------------------------------

  renderSidebar() {
    const { conversations, activeKey } = this.store;
    const all = [...conversations.values()];
    const rooms = all.filter((c) => c.kind === ROOM).sort(byName);
    const dms = all.filter((c) => c.kind === DM).sort(byName);
    const news = all.filter((c) => c.kind === NEWS);

    $("room-list").replaceChildren(...rooms.map((c) => this.conversationItem(c, activeKey)));
    $("dm-list").replaceChildren(...dms.map((c) => this.conversationItem(c, activeKey)));
    $("dm-empty").hidden = dms.length > 0;
    $("announce-list").replaceChildren(...news.map((c) => this.conversationItem(c, activeKey)));
    $("announce-section").hidden = news.length === 0;

    const total = all.reduce((sum, c) => sum + c.unread, 0);
    const totalBadge = $("total-unread");
    totalBadge.hidden = total === 0;
    totalBadge.textContent = total > 99 ? "99+" : String(total);
    const active = conversations.get(activeKey);
    const place = active ? this.titleOf(active) : "Chat";
    document.title = `${total ? `(${total}) ` : ""}${place} · Chat`;
  }

  titleOf(conv) {
    if (conv.kind === ROOM) return `#${conv.name}`;
    if (conv.kind === DM) return `@${conv.name}`;
    return "Announcements";
  }

  conversationItem(conv, activeKey) {
    const active = conv.key === activeKey;
    const label = conv.kind === NEWS ? "Announcements" : conv.name;
    const glyph = conv.kind === ROOM ? hashIcon()
      : conv.kind === DM ? avatar(conv.name, "small")
      : el("span", { className: "conv-icon", attrs: { "aria-hidden": "true" } }, icon("megaphone", 18));
    const unreadLabel = conv.mentions ? `unread, ${conv.mentions} mentioning you` : "unread";
    const open = el("button", {
      type: "button",
      className: `conv-item${conv.unread ? " has-unread" : ""}${conv.mentions ? " has-mention" : ""}`,
      dataset: { key: conv.key, kind: conv.kind, name: conv.name },
      attrs: active ? { "aria-current": "page" } : {},
      onclick: () => this.actions.open(conv.key),
    }, glyph, el("span", { className: "conv-name" }, label), badge(conv.unread, unreadLabel));

    const closeLabel = conv.kind === ROOM ? `Leave #${conv.name}`
      : conv.kind === DM ? `Close the conversation with ${conv.name}` : "Hide announcements";
    const close = el("button", {
      type: "button",
      className: "conv-close icon-button small",
      title: closeLabel,
      attrs: { "aria-label": closeLabel },
      onclick: () => this.actions.close(conv.key),
    }, "×");
    return el("li", { className: active ? "active" : "" }, open, close);
  }

  // -- header, notices -------------------------------------------------------------

  renderHeader() {
    const conv = this.store.conversations.get(this.store.activeKey);
    const title = $("conv-title");
    const subtitle = $("conv-subtitle");
    clear(title);
    if (!conv) {
      title.textContent = "Chat";
      subtitle.textContent = "";
    } else if (conv.kind === ROOM) {
      append(title, [hashIcon(), conv.name]);
      const n = conv.members.size;
      subtitle.textContent = conv.synced ? `${n} ${n === 1 ? "member" : "members"} here` : "joining…";
    } else if (conv.kind === DM) {
      append(title, [avatar(conv.name, "small"), conv.name]);
      subtitle.textContent = "Private conversation";
    } else {
      append(title, ["Announcements"]);
      subtitle.textContent = "Broadcasts to everyone on the server";
    }
    $("leave-button").hidden = !conv || conv.kind !== ROOM;
    $("leave-button").textContent = "Leave";
    if (conv && conv.kind === ROOM) $("leave-button").setAttribute("aria-label", `Leave #${conv.name}`);
    const toggle = $("members-toggle");
    toggle.hidden = !conv || conv.kind === NEWS;
    $("members-count").textContent = conv && conv.kind === ROOM ? String(conv.members.size) : "";
    this.timeline.setAttribute("aria-label", conv ? `Messages in ${this.titleOf(conv)}` : "Messages");
    this.list.setAttribute("aria-label", conv ? `Messages in ${this.titleOf(conv)}` : "Messages");

    const notice = $("conv-notice");
    notice.hidden = !conv || !conv.notice;
    $("conv-notice-text").textContent = conv && conv.notice ? conv.notice : "";
  }

  // -- timeline --------------------------------------------------------------------

  distanceFromBottom() {
    const t = this.timeline;
    return t.scrollHeight - t.scrollTop - t.clientHeight;
  }

  isNearBottom() {
    return this.distanceFromBottom() < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.timeline.scrollTop = this.timeline.scrollHeight;
    $("jump-latest").hidden = true;
  }

  /** Remember where the reader was in the conversation being left. */
  saveScroll() {
    const conv = this.store.conversations.get(this.shown.key);
    if (conv) conv.scrollFromBottom = this.isNearBottom() ? 0 : this.distanceFromBottom();
  }

  /**
   * Rebuild the message list of the active conversation.
   * scroll: "bottom", "restore" (the conversation's saved place) or "keep"
   * (the same distance from the bottom, so prepended pages do not move the view).
   */
  renderTimeline({ scroll = "keep" } = {}) {
    const conv = this.store.conversations.get(this.store.activeKey);
    const keepDistance = this.isNearBottom() ? 0 : this.distanceFromBottom();
    $("empty-state").hidden = Boolean(conv);
    this.list.setAttribute("aria-busy", "true");
    const fragment = document.createDocumentFragment();
    let prev = null;
    if (conv) {
      for (const entry of conv.entries()) {
        fragment.append(...this.entryNodes(conv, entry, prev));
        prev = entry;
      }
    }
    this.list.replaceChildren(fragment);
    this.list.setAttribute("aria-busy", "false");
    this.shown = { key: conv ? conv.key : null, last: prev };
    this.renderTimelineTop();

    if (scroll === "bottom" || !conv) this.scrollToBottom();
    else {
      const distance = scroll === "restore" ? conv.scrollFromBottom : keepDistance;
      if (distance <= 0) this.scrollToBottom();
      else this.timeline.scrollTop = this.timeline.scrollHeight - this.timeline.clientHeight - distance;
    }
    this.actions.timelineRendered(conv);
  }

  /** New entries for `conv`: appended in place when they all come last, else a rebuild. */
  entriesAdded(conv, entries, { own = false } = {}) {
    if (!entries.length || conv.key !== this.store.activeKey) return;
    const last = this.shown.last;
    const after = (e) => !last || this.compareEntries(last, e) < 0;
    if (this.shown.key !== conv.key || !entries.every(after)) {
      this.renderTimeline({ scroll: "keep" });
      return;
    }
    const wasNearBottom = this.isNearBottom();
    let prev = last;
    for (const entry of entries) {
      const nodes = this.entryNodes(conv, entry, prev);
      for (const node of nodes) node.classList.add("fresh");
      this.list.append(...nodes);
      prev = entry;
    }
    this.shown.last = prev;
    if (wasNearBottom || own) this.scrollToBottom();
    else if (entries.some((e) => !e.notice)) $("jump-latest").hidden = false;
  }

  compareEntries(a, b) {
    const ka = a.notice ? a.anchor : a.id;
    const kb = b.notice ? b.anchor : b.id;
    const c = compareIds(ka, kb);
    if (c !== 0) return c;
    return (a.notice ? a.seq : 0) - (b.notice ? b.seq : 0);
  }

  entryNodes(conv, entry, prev) {
    const nodes = [];
    if (!prev || dayKey(prev.ts) !== dayKey(entry.ts)) {
      nodes.push(el("li", { className: "day-divider", attrs: { role: "separator" } },
        el("span", {}, dayLabel(entry.ts))));
    }
    if (!entry.notice && conv.dividerId && entry.id === conv.dividerId) {
      nodes.push(el("li", { className: "new-divider", attrs: { role: "separator" } },
        el("span", {}, "New messages")));
    }
    if (entry.notice) {
      nodes.push(el("li", { className: "notice-line" }, el("span", {}, entry.text), " ", timeElement(entry.ts)));
    } else {
      const continued = sameGroup(prev, entry) && !(conv.dividerId && entry.id === conv.dividerId);
      nodes.push(this.messageNode(conv, entry, { continued }));
    }
    return nodes;
  }

  messageNode(conv, m, { continued = false, pending = null } = {}) {
    const me = this.store.me;
    const own = m.from === me;
    const announcement = conv.kind === NEWS;
    const classes = ["msg"];
    if (own) classes.push("own");
    if (continued) classes.push("continued");
    if (announcement) classes.push("announcement-msg");
    if (!own && mentions(m.text, me)) classes.push("mention");
    if (pending) classes.push("pending", `pending-${pending.state}`);

    let sender;
    if (own) {
      sender = el("span", { className: "sender" }, "You",
        el("span", { className: "visually-hidden" }, ` (${m.from})`));
    } else if (conv.kind === ROOM && !continued) {
      // only the first of a run is a button: the others' names are hidden, and a
      // hidden control would swallow keyboard focus
      sender = el("button", {
        type: "button",
        className: "sender",
        title: `Message ${m.from} in private`,
        onclick: () => this.actions.startPrivate(m.from),
      }, m.from);
    } else {
      sender = el("span", { className: "sender" }, m.from);
    }

    const meta = el("div", { className: "meta" }, sender, " ", timeElement(m.ts ?? Date.now()));
    const text = el("div", { className: "text" }, ...richText(m.text));
    const bubble = el("div", { className: "bubble" }, meta, text);
    if (pending) bubble.append(this.pendingStatus(pending));

    const props = { className: classes.join(" "), dataset: { from: m.from } };
    if (m.id) props.dataset.id = m.id;
    const face = own ? null : continued ? el("span", { className: "avatar-spacer" }) : avatar(m.from);
    const node = el("li", props, face, bubble);
    node.style.setProperty("--hue", String(hueOf(m.from)));
    return node;
  }

  renderTimelineTop() {
    const conv = this.store.conversations.get(this.store.activeKey);
    const button = $("load-older");
    const start = $("timeline-start");
    if (!conv || conv.kind === NEWS) {
      button.hidden = true;
      start.hidden = !conv;
      start.textContent = conv ? "Announcements received since you signed in." : "";
      return;
    }
    const canLoad = !conv.reachedStart && conv.ids.length > 0;
    button.hidden = !canLoad;
    button.disabled = conv.loadingOlder;
    button.textContent = conv.loadingOlder ? "Loading older messages…" : "Load older messages";
    const showStart = conv.reachedStart || (conv.synced && conv.ids.length === 0);
    start.hidden = !showStart;
    start.textContent = conv.kind === ROOM
      ? `This is the beginning of #${conv.name}.`
      : `This is the beginning of your conversation with ${conv.name}.`;
  }

  isNearTop() {
    return this.timeline.scrollTop < NEAR_TOP_PX;
  }

  overflows() {
    return this.timeline.scrollHeight > this.timeline.clientHeight + 4;
  }

  // -- pending (own messages not yet confirmed) ------------------------------------

  renderPending() {
    const conv = this.store.conversations.get(this.store.activeKey);
    const wasNearBottom = this.isNearBottom();
    const items = conv ? this.store.outbox.filter((item) => item.convKey === conv.key) : [];
    this.pendingList.replaceChildren(...items.map((item) =>
      this.messageNode(conv, { from: this.store.me, text: item.text, ts: item.createdAt }, { pending: item })));
    if (wasNearBottom) this.scrollToBottom();
  }

  pendingStatus(item) {
    const status = el("div", { className: "pending-status" });
    if (item.state === "sending") status.append("Sending…");
    else if (item.state === "queued") status.append("Waiting for the connection…");
    else {
      status.append(el("span", { className: "pending-error" }, `Not sent: ${item.error}`), " ",
        el("button", { type: "button", className: "link-button", onclick: () => this.actions.retry(item) }, "Retry"), " ",
        el("button", { type: "button", className: "link-button", onclick: () => this.actions.discard(item) }, "Discard"));
    }
    return status;
  }

  // -- members -----------------------------------------------------------------------

  renderMembers() {
    const conv = this.store.conversations.get(this.store.activeKey);
    const panel = $("members-panel");
    const toggle = $("members-toggle");
    const available = Boolean(conv) && conv.kind !== NEWS;
    const open = available && this.membersOpen;
    document.body.classList.toggle("members-open", open);
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    const overlay = open && !this.wideMembers.matches;
    document.body.classList.toggle("members-overlay", overlay);
    this.renderScrim();
    if (!available) return;

    const me = this.store.me;
    const list = $("member-list");
    const note = $("members-note");
    if (conv.kind === ROOM) {
      $("members-heading").textContent = `In #${conv.name}`;
      const typing = new Set(conv.typingUsers());
      list.replaceChildren(...conv.sortedMembers().map((name) => this.memberItem(name, me, conv, typing.has(name))));
      note.textContent = conv.members.size > 1 ? "Pick a name to talk in private." : "Nobody else is here yet.";
    } else {
      $("members-heading").textContent = "Private conversation";
      list.replaceChildren(this.memberItem(conv.name, me, conv), this.memberItem(me, me, conv));
      const shared = [...this.store.conversations.values()]
        .filter((c) => c.kind === ROOM && c.members.has(conv.name))
        .map((c) => `#${c.name}`);
      note.textContent = shared.length
        ? `${conv.name} is in ${shared.join(", ")}.`
        : `${conv.name} is not in any of your rooms right now; they will read your messages when they are back.`;
    }
    $("members-count").textContent = conv.kind === ROOM ? String(conv.members.size) : "2";
  }

  memberItem(name, me, conv, typing = false) {
    const content = [avatar(name, "small"), el("span", { className: "member-name" }, name)];
    if (name === me) content.push(el("span", { className: "tag" }, "you"));
    else if (typing) content.push(el("span", { className: "tag typing-tag" }, "typing"));
    if (name === me || conv.kind === DM) {
      return el("li", { dataset: { user: name } }, el("span", { className: "member" }, ...content));
    }
    return el("li", { dataset: { user: name } }, el("button", {
      type: "button",
      className: "member",
      title: `Message ${name} in private`,
      attrs: { "aria-label": `${name}: send a private message` },
      onclick: () => this.actions.startPrivate(name),
    }, ...content));
  }

  toggleMembers(open = !this.membersOpen) {
    this.membersOpen = open;
    this.renderMembers();
    if (open && !this.wideMembers.matches) $("members-close").focus();
  }

  // -- drawer (narrow screens) -------------------------------------------------------

  setDrawer(open) {
    document.body.classList.toggle("drawer-open", open);
    $("sidebar-open").setAttribute("aria-expanded", String(open));
    this.renderScrim();
    if (open) {
      const current = document.querySelector(".conv-item[aria-current='page']") ?? $("join-room");
      current.focus();
    }
  }

  renderScrim() {
    const b = document.body.classList;
    $("scrim").hidden = !(b.contains("drawer-open") || b.contains("members-overlay"));
  }

  // -- typing, composer --------------------------------------------------------------

  renderTyping() {
    const conv = this.store.conversations.get(this.store.activeKey);
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

  renderComposer() {
    const conv = this.store.conversations.get(this.store.activeKey);
    const form = $("composer");
    const writable = Boolean(conv) && conv.kind !== NEWS;
    form.hidden = !writable;
    if (!writable) return;
    const label = conv.kind === ROOM ? `Message #${conv.name}` : `Message ${conv.name}`;
    $("message-label").textContent = label;
    this.composer.placeholder = label;
  }

  autosizeComposer() {
    const box = this.composer;
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, MAX_COMPOSER_LINES_PX)}px`;
  }

  setCount(text) {
    $("composer-count").textContent = text;
  }

  // -- connection, announcements, toasts ---------------------------------------------

  renderConnection() {
    const { connection, reconnectAttempt, lastCatchUp } = this.store;
    document.body.dataset.connection = connection;
    const banner = $("connection-banner");
    const status = $("me-status");
    clearTimeout(this.bannerTimer);
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
      this.bannerTimer = setTimeout(() => {
        banner.hidden = true;
      }, 5000);
    } else {
      banner.hidden = true;
      banner.replaceChildren();
      status.textContent = connection === "online" ? "online" : "connecting…";
    }
  }

  renderAnnouncementBanner() {
    const a = this.store.banner;
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
        onclick: () => this.actions.dismissBanner(),
      }, "×"),
    );
  }

  toast(message, tone = "info") {
    const node = el("div", { className: `toast ${tone}`, attrs: { role: tone === "error" ? "alert" : "status" } }, message);
    $("toasts").append(node);
    setTimeout(() => node.classList.add("leaving"), 4500);
    setTimeout(() => node.remove(), 5000);
  }
}
