// The client's model of the chat: conversations, their messages and who is in them.
// Nothing here touches the DOM or the network, so the merge rules stay easy to reason about.

export const ROOM = "room";
export const DM = "dm";
export const NEWS = "news";

/** Messages asked for per history page (the server's default). */
export const PAGE_SIZE = 50;

export function conversationKey(kind, name) {
  return `${kind}:${name}`;
}

/** How events address a conversation: `{room}` or `{with}`. */
export function conversationTarget(conv) {
  return conv.kind === ROOM ? { room: conv.name } : { with: conv.name };
}

/** Message ids are fixed-width strings that sort in the order they were stored. */
export function compareIds(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isString(value) {
  return typeof value === "string" && value.length > 0;
}

/** Keep only well-formed messages: the page never trusts a payload's shape. */
export function isMessage(m) {
  return (
    m !== null &&
    typeof m === "object" &&
    isString(m.id) &&
    isString(m.from) &&
    typeof m.text === "string" &&
    Number.isFinite(m.ts)
  );
}

/** A message's place in the sequence of changes: `rev`, or its id before any change. */
export function revOf(m) {
  return typeof m.rev === "string" && m.rev ? m.rev : m.id;
}

/** Users who reacted with each emoji, as the server sent them (bad entries dropped). */
export function reactionsOf(m) {
  const out = [];
  if (m.reactions === null || typeof m.reactions !== "object") return out;
  for (const [emoji, users] of Object.entries(m.reactions)) {
    const list = Array.isArray(users) ? users.filter((u) => typeof u === "string") : [];
    if (list.length) out.push([emoji, list]);
  }
  return out;
}

/** Emoji the reaction picker offers. */
export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];

let noticeSeq = 0;

/**
 * One room, one private conversation, or the announcements channel.
 *
 * Messages are kept by id, so whatever order and however often they arrive
 * (live events, join history, reconnect catch-up, older pages) each is shown
 * once and in id order. Local notices ("bob joined") are anchored after the
 * newest message known when they happened.
 */
export class Conversation {
  constructor(kind, name) {
    this.kind = kind;
    this.name = name;
    this.key = conversationKey(kind, name);
    this.messages = new Map();
    this.ids = [];
    this.notices = [];
    this.members = new Set();
    this.typing = new Map(); // user -> expiry time (ms)
    this.unread = 0;
    this.readId = null; // our own read marker, as the server keeps it
    this.seenId = null; // the newest message the reader has seen here
    this.peerReadId = null; // private conversations: the other side's read marker
    this.mentions = 0;
    this.firstUnreadId = null;
    this.reachedStart = false;
    this.loadingOlder = false;
    this.synced = false; // joined (room) or history fetched (dm) on the current connection
    this.notice = null; // a banner shown above this conversation's messages
    this.scrollFromBottom = 0;
    this.info = null; // rooms: the server's `info` (owner, topic, moderators, ...), once known
    this.infoStale = false; // rooms: joined since `info` was last asked for
    this.out = null; // rooms: why we are not in it (kicked, banned, not invited), or null
  }

  get lastId() {
    return this.ids.length ? this.ids[this.ids.length - 1] : null;
  }

  get firstId() {
    return this.ids.length ? this.ids[0] : null;
  }

  has(id) {
    return this.messages.has(id);
  }

  /** Add what is new; return the messages actually added, in id order. */
  merge(list) {
    const added = [];
    for (const m of Array.isArray(list) ? list : []) {
      if (!isMessage(m) || this.messages.has(m.id)) continue;
      this.messages.set(m.id, m);
      added.push(m);
    }
    if (!added.length) return added;
    added.sort((a, b) => compareIds(a.id, b.id));
    const last = this.lastId;
    if (last === null || compareIds(added[0].id, last) > 0) {
      for (const m of added) this.ids.push(m.id);
    } else {
      this.ids = [...this.messages.keys()].sort(compareIds);
    }
    return added;
  }

  /**
   * Apply the current state of messages already known (a `message_updated`
   * event or a join's `updates`): each replaces the shown one only when its
   * `rev` is newer, so a late or repeated change never undoes a later one.
   * Returns the messages replaced.
   */
  update(list) {
    const changed = [];
    for (const m of Array.isArray(list) ? list : []) {
      if (!isMessage(m)) continue;
      const shown = this.messages.get(m.id);
      if (!shown || compareIds(revOf(m), revOf(shown)) <= 0) continue;
      this.messages.set(m.id, m);
      changed.push(m);
    }
    return changed;
  }

  /** The largest id or rev this conversation holds: what a rejoin passes as `since`. */
  get lastSeen() {
    let newest = this.lastId;
    for (const m of this.messages.values()) {
      if (newest === null || compareIds(revOf(m), newest) > 0) newest = revOf(m);
    }
    return newest;
  }

  /** The newest message of our own that is not a tombstone (what Up in the composer edits). */
  lastOwn(me) {
    for (let i = this.ids.length - 1; i >= 0; i--) {
      const m = this.messages.get(this.ids[i]);
      if (m.from === me && !m.deleted) return m;
    }
    return null;
  }

  /** Forget every message and notice (history reload after an incomplete recovery). */
  clear() {
    this.messages.clear();
    this.ids = [];
    this.notices = [];
    this.firstUnreadId = null;
    this.reachedStart = false;
  }

  addNotice(text, ts = Date.now()) {
    const notice = { notice: true, anchor: this.lastId ?? "", seq: ++noticeSeq, text, ts };
    this.notices.push(notice);
    // a busy room would otherwise grow join/leave lines without bound
    if (this.notices.length > 200) this.notices.shift();
    return notice;
  }

  /** Messages and notices in display order. */
  entries() {
    const out = [];
    let n = 0;
    for (const id of this.ids) {
      while (n < this.notices.length && compareIds(this.notices[n].anchor, id) < 0) {
        out.push(this.notices[n++]);
      }
      out.push(this.messages.get(id));
    }
    while (n < this.notices.length) out.push(this.notices[n++]);
    return out;
  }

  /** Users typing right now (expired entries dropped), sorted. */
  typingUsers(now = Date.now()) {
    for (const [user, until] of this.typing) {
      if (until <= now) this.typing.delete(user);
    }
    return [...this.typing.keys()].sort(compareIds);
  }

  sortedMembers() {
    return [...this.members].sort(compareIds);
  }
}

/** Sort key for sidebar order: rooms and conversations by name, code point order. */
export function byName(a, b) {
  return compareIds(a.name, b.name);
}

/** Which private conversation a private_message belongs to, seen from `me`. */
export function peerOf(message, me) {
  return message.from === me ? message.to : message.from;
}

/** Does `text` mention `@user` (followed by something that cannot be part of a name)? */
export function mentions(text, user) {
  if (!user) return false;
  const escaped = user.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_.-])@${escaped}(?![A-Za-z0-9_-]|\\.[A-Za-z0-9_-])`, "i").test(text);
}

/** The longest message the server accepts, in code points. */
export const MAX_TEXT = 2000;

/** Length the way the server counts it: Unicode code points, after trimming. */
export function textLength(text) {
  return [...text.trim()].length;
}

// -- rooms that belong to someone --------------------------------------------------

/** The roles a user may hold in a room, strongest first (as the server ranks them). */
export const ROLES = ["admin", "owner", "moderator", "member"];

/** A room `info` as the server sends it, or null when the payload is not one. */
export function roomInfoOf(info) {
  if (info === null || typeof info !== "object" || typeof info.name !== "string") return null;
  const names = (list) => (Array.isArray(list) ? list.filter((u) => typeof u === "string") : []);
  return {
    name: info.name,
    private: info.private === true,
    topic: typeof info.topic === "string" ? info.topic : "",
    owner: typeof info.owner === "string" ? info.owner : null,
    moderators: names(info.moderators),
    members: Array.isArray(info.members) ? names(info.members) : null,
    created: Number.isFinite(info.created_ts),
  };
}

/**
 * `user`'s role in a room with `info` ("admin", "owner", "moderator" or
 * "member"). The page only uses it to choose what to offer: the server
 * decides every action itself.
 */
export function roleIn(info, user, admin = false) {
  if (admin) return "admin";
  if (info && info.owner === user) return "owner";
  if (info && info.moderators.includes(user)) return "moderator";
  return "member";
}

/** Ban lengths the member list offers, in seconds ("" = until unbanned). */
export const BAN_LENGTHS = [
  ["", "until lifted"],
  ["600", "10 minutes"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "1 week"],
];

/** May `role` change the topic, kick, ban and unban? */
export function moderates(role) {
  return role === "admin" || role === "owner" || role === "moderator";
}

/** May `role` aim a kick or ban at someone holding `target` (never the owner; moderators not at moderators)? */
export function mayRemove(role, target) {
  if (!moderates(role) || target === "owner" || target === "admin") return false;
  return role !== "moderator" || target === "member";
}

/**
 * Does this token claim `admin: true`? Read from the token's payload without
 * checking its signature: only the server's answers count, this only decides
 * which controls the page shows.
 */
export function adminClaim(auth) {
  const token = auth && typeof auth.token === "string" ? auth.token : "";
  const payload = token.split(".")[1];
  if (!payload) return false;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    return JSON.parse(json).admin === true;
  } catch {
    return false;
  }
}
