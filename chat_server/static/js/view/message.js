// One entry of a message list as DOM: a message (confirmed or pending), a local
// notice, and the day and "New messages" separators before it. A message's node
// carries `data-id`, so a later change to one message can find and replace it.

import { avatar, dayKey, dayLabel, el, hueOf, richText, timeElement } from "../dom.js";
import { COMMON_EMOJI, DM, NEWS, ROOM, compareIds, mentions, reactionsOf } from "../state.js";
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
  const meta = el("div", { className: "meta" }, sender, " ", ...badge, timeElement(m.ts ?? Date.now()),
    Number.isFinite(m.edited_ts) && !m.deleted ? editedLabel(m.edited_ts) : null);
  const text = m.deleted
    ? el("div", { className: "text tombstone" }, "message deleted")
    : el("div", { className: "text" }, ...richText(m.text));
  const bubble = el("div", { className: "bubble" }, meta, text);
  if (pending) bubble.append(pendingStatus(pending));
  if (m.id && !pending && !announcement && !m.deleted) {
    const chips = reactionChips(m);
    if (chips) bubble.append(chips);
    bubble.append(messageTools(m, own));
  }
  if (m.id && own && conv.kind === DM && m.id === seenId(conv)) {
    bubble.append(el("div", { className: "seen" }, "Seen"));
  }

  if (m.deleted) classes.push("deleted");
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

const editedFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function editedLabel(ts) {
  const when = editedFormat.format(new Date(ts));
  return el("span", { className: "edited", title: `Edited ${when}` }, " (edited)",
    el("span", { className: "visually-hidden" }, ` ${when}`));
}

/** The existing reactions as toggle buttons with their counts (pressed when one is ours). */
function reactionChips(m) {
  const list = reactionsOf(m);
  if (!list.length) return null;
  return el("div", { className: "reactions" }, ...list.map(([emoji, users]) => {
    const mine = users.includes(store.me);
    return el("button", {
      type: "button",
      className: `reaction${mine ? " mine" : ""}`,
      title: users.join(", "),
      dataset: { emoji },
      attrs: {
        "aria-pressed": String(mine),
        "aria-label": `${emoji} ${users.length}: ${users.join(", ")}${mine ? " (click to take yours back)" : ""}`,
      },
      onclick: () => actions.react(m, emoji),
    }, el("span", { className: "reaction-emoji" }, emoji), " ", el("span", { className: "reaction-count" }, String(users.length)));
  }));
}

/** React (a small picker of common emoji), and for our own messages Edit and Delete. */
function messageTools(m, own) {
  const picker = el("div", { className: "emoji-picker", attrs: { role: "group", "aria-label": "Pick a reaction" } },
    ...COMMON_EMOJI.map((emoji) => el("button", {
      type: "button",
      className: "emoji-choice",
      dataset: { emoji },
      attrs: { "aria-label": `React with ${emoji}` },
      onclick: () => {
        picker.hidden = true;
        toggle.setAttribute("aria-expanded", "false");
        actions.react(m, emoji);
      },
    }, emoji)));
  picker.hidden = true;
  picker.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.stopPropagation();
    picker.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  });
  const toggle = el("button", {
    type: "button",
    className: "tool react-button",
    attrs: { "aria-label": "Add a reaction", "aria-expanded": "false" },
    title: "Add a reaction",
    onclick: () => {
      picker.hidden = !picker.hidden;
      toggle.setAttribute("aria-expanded", String(!picker.hidden));
      if (!picker.hidden) picker.querySelector("button").focus();
    },
  }, "☺+");
  const tools = el("div", { className: "msg-tools" }, toggle);
  if (own) {
    tools.append(
      el("button", { type: "button", className: "tool edit-button", title: "Edit",
        attrs: { "aria-label": "Edit this message" }, onclick: () => actions.edit(m) }, "Edit"),
      el("button", { type: "button", className: "tool delete-button", title: "Delete",
        attrs: { "aria-label": "Delete this message" }, onclick: () => actions.remove(m) }, "Delete"),
    );
  }
  tools.append(picker);
  return tools;
}

/** Our newest message in a private conversation that the other side's marker has reached. */
function seenId(conv) {
  if (!conv.peerReadId) return null;
  for (let i = conv.ids.length - 1; i >= 0; i--) {
    const id = conv.ids[i];
    if (conv.messages.get(id).from !== store.me) continue;
    // "Seen" goes under our last message only, and only once it was read
    return compareIds(id, conv.peerReadId) <= 0 ? id : null;
  }
  return null;
}
