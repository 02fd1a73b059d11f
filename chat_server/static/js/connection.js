// The Socket.IO connection: opening it, and asking the server things as promises.

/** An `{ok: false, error}` answer, a timeout, or a request made while offline. */
export class ChatError extends Error {
  constructor(code, message, fields = null, retryAfter = null) {
    super(message);
    this.name = "ChatError";
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }

  /** The most specific message the server gave (a field's, else the general one). */
  get detail() {
    if (this.fields && typeof this.fields === "object") {
      for (const messages of Object.values(this.fields)) {
        if (Array.isArray(messages) && typeof messages[0] === "string") return messages[0];
      }
    }
    return this.message;
  }
}

const ACK_TIMEOUT_MS = 10_000;
const RATE_LIMIT_RETRIES = 3;

/**
 * Open a connection to the page's own origin.
 *
 * WebSocket only: the server is meant to run as several processes behind a
 * plain load balancer, and HTTP long-polling needs every request of a session
 * to reach the same process (sticky sessions). Listing polling after websocket
 * would not help either: socket.io-client only falls back when asked to with
 * `tryAllTransports`, which starts with polling again.
 */
export function openSocket(auth) {
  if (typeof window.io !== "function") {
    throw new Error("The Socket.IO client did not load (/static/vendor/socket.io.min.js).");
  }
  return window.io({
    auth,
    transports: ["websocket"],
    forceNew: true, // a new sign-in must not reuse the previous user's manager
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.3,
    timeout: 10_000,
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function once(socket, event, payload, timeoutMs) {
  return new Promise((resolve, reject) => {
    if (!socket.connected) {
      // Socket.IO would buffer the emit and send it right after reconnecting,
      // before the page has re-joined its rooms: the server would refuse it.
      reject(new ChatError("offline", "Not connected to the server."));
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (err, answer) => {
      if (err) {
        const code = socket.connected ? "timeout" : "offline";
        reject(new ChatError(code, code === "timeout"
          ? "The server did not answer in time."
          : "The connection dropped before the server answered."));
        return;
      }
      if (answer && typeof answer === "object" && answer.ok === true) {
        resolve(answer);
        return;
      }
      const error = answer && typeof answer === "object" && answer.error ? answer.error : {};
      reject(new ChatError(
        typeof error.code === "string" ? error.code : "error",
        typeof error.message === "string" ? error.message : "The server refused the request.",
        error.fields ?? null,
        Number.isFinite(error.retry_after) ? error.retry_after : null,
      ));
    });
  });
}

/**
 * Emit `event` with an ack and resolve with the `{ok: true, ...}` answer.
 * A `rate_limited` answer is retried after the server's `retry_after`.
 */
export async function request(socket, event, payload, { timeoutMs = ACK_TIMEOUT_MS } = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(socket, event, payload, timeoutMs);
    } catch (err) {
      if (err.code !== "rate_limited" || attempt >= RATE_LIMIT_RETRIES) throw err;
      await sleep(Math.min(10, Math.max(0.2, err.retryAfter ?? 1)) * 1000);
    }
  }
}
