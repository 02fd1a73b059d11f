// The server's refusals of room actions, said in words a person understands.
// The codes come from the contract; anything else falls back to the server's
// own message.

const ACTIONS = {
  join: () => "join",
  create_room: () => "create it",
  set_topic: () => "change the topic",
  invite: (user) => `invite ${user}`,
  kick: (user) => `remove ${user}`,
  ban: (user) => `ban ${user}`,
  unban: (user) => `lift ${user}'s ban`,
  set_role: (user) => `change ${user}'s role`,
};

/**
 * What to tell a person whose `action` in `room` (aimed at `user`, when it
 * names one) the server refused with `err` (a ChatError).
 */
export function refusalText(err, action, room, user = "") {
  const place = `#${room}`;
  switch (err.code) {
    case "banned":
      return `You are banned from ${place}. You can join again when the ban is lifted or runs out.`;
    case "forbidden":
      if (action === "join") {
        return `${place} is a private room: only its members can join. Ask its owner or a moderator to invite you.`;
      }
      return `You may not ${(ACTIONS[action] ?? (() => "do that"))(user)} in ${place}.`
        + " Only its owner, its moderators and admins moderate a room, never against its owner,"
        + " and a moderator never against another moderator.";
    case "room_exists":
      return `${place} exists already: pick another name, or join it.`;
    case "not_found":
      return `Nobody created ${place}, so it has no settings to change.`;
    default:
      return err.detail;
  }
}
