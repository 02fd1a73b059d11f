// What the view asks for when a person clicks something it drew. The entry module
// provides these, so that rendering never imports the modules that change the store.

export const actions = {};

/** `open(key)`, `close(key)`, `startPrivate(user)`, `retry(item)`, `discard(item)`,
 * `dismissBanner()`, `timelineRendered(conv)`, `edit(m)`, `remove(m)`, `react(m, emoji)`,
 * and for rooms `kickOrBan(user, {ban, reason, seconds}, report)`,
 * `setRole(user, role, report)`, `openInvitation(room)`, `dismissInvitation(room)`. */
export function provideActions(impl) {
  Object.assign(actions, impl);
}
