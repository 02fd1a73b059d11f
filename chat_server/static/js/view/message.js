// One entry of a message list as DOM: a message (confirmed or pending), a local
// notice, and the day and "New messages" separators before it. A message's node
// carries `data-id`, so a later change to one message can find and replace it.

import { avatar, dayKey, dayLabel, el, hueOf, richText, timeElement } from "../dom.js";
import { NEWS, ROOM, mentions } from "../state.js";
import { store } from "../store.js";
import { actions } from "./actions.js";

const GROUP_GAP_MS = 5 * 60 * 1000;

function sameGroup(prev, m) {
  return (
    prev &&
    !prev.notice &&
    prev.from === m.from &&
    m.ts - prev.ts < GROUP_GAP_MS &&
    dayKey(prev.ts) === dayKey(m.ts)
  );
}

/** The nodes for `entry`, given the entry shown just before it (or null). */
export function entryNodes(conv, entry, prev) {
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
    nodes.push(messageNode(conv, entry, { continued }));
  }
  return nodes;
}

export function messageNode(conv, m, { continued = false, pending = null } = {}) {
  const me = store.me;
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
      onclick: () => actions.startPrivate(m.from),
    }, m.from);
  } else {
    sender = el("span", { className: "sender" }, m.from);
  }

  // Only the server sets `bot` (on what a bot token posted), so the badge
  // cannot be claimed by a user typing a name like "ci-bot".
  const badge = m.bot === true ? [el("span", { className: "bot-badge", title: "Posted by a bot" }, "bot"), " "] : [];
  const meta = el("div", { className: "meta" }, sender, " ", ...badge, timeElement(m.ts ?? Date.now()));
  const text = el("div", { className: "text" }, ...richText(m.text));
  const bubble = el("div", { className: "bubble" }, meta, text);
  if (pending) bubble.append(pendingStatus(pending));

  const props = { className: classes.join(" "), dataset: { from: m.from } };
  if (m.id) props.dataset.id = m.id;
  const face = own ? null : continued ? el("span", { className: "avatar-spacer" }) : avatar(m.from);
  const node = el("li", props, face, bubble);
  node.style.setProperty("--hue", String(hueOf(m.from)));
  return node;
}

function pendingStatus(item) {
  const status = el("div", { className: "pending-status" });
  if (item.state === "sending") status.append("Sending…");
  else if (item.state === "queued") status.append("Waiting for the connection…");
  else {
    status.append(el("span", { className: "pending-error" }, `Not sent: ${item.error}`), " ",
      el("button", { type: "button", className: "link-button", onclick: () => actions.retry(item) }, "Retry"), " ",
      el("button", { type: "button", className: "link-button", onclick: () => actions.discard(item) }, "Discard"));
  }
  return status;
}
