// Which module handles which server event. Each module registers its own handlers
// when it loads, so a new event (say `message_updated` or `read`) is added where
// its concern lives, without touching the connection code. Connection lifecycle
// events (connect, disconnect, welcome, ...) stay with the session.

const handlers = [];

/** `handler(payload, socket)` runs for every `event` on every socket of the session. */
export function onServerEvent(event, handler) {
  handlers.push([event, handler]);
}

export function bindServerEvents(socket) {
  for (const [event, handler] of handlers) {
    socket.on(event, (payload) => handler(payload, socket));
  }
}
