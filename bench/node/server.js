// Node socket.io 4.8 baseline for bench/: the chat contract's `join` and
// `message` events and `POST /api/emit`, minimally, so that the benchmark
// compares like with like. Not a chat server: no validation, history or presence.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || "127.0.0.1";
const redisUrl = process.env.REDIS_URL || "";
// "sharded": @socket.io/redis-adapter's sharded adapter (SPUBLISH/SSUBSCRIBE,
// a channel per room, Redis 7); otherwise its classic adapter.
const adapterKind = process.env.REDIS_ADAPTER || "classic";
const apiKey = process.env.CHAT_API_KEY || "bench";

let counter = 0;
// Fixed-width, time-ordered ids, as the contract asks of ours.
function nextId() {
  counter = (counter + 1) % 1e6;
  return String(Date.now()).padStart(13, "0") + "-" + String(process.pid % 1e5).padStart(5, "0")
    + String(counter).padStart(6, "0");
}

function roomMessage(room, from, text) {
  const ts = Date.now();
  return { id: nextId(), room, from, text, ts };
}

const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: 65536 });

// socket.io answers its own path; every other request reaches this listener.
httpServer.on("request", (req, res) => {
  if (req.url && req.url.startsWith("/socket.io/")) return;
  const reply = (status, body) => {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
    res.end(data);
  };
  if (req.method === "GET" && req.url === "/healthz") return reply(200, { status: "ok" });
  if (req.method !== "POST" || req.url !== "/api/emit") return reply(404, { ok: false });
  if (req.headers.authorization !== `Bearer ${apiKey}`) return reply(401, { ok: false });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (err) {
      return reply(400, { ok: false, error: { code: "invalid" } });
    }
    if (typeof body.room !== "string" || typeof body.text !== "string") {
      return reply(400, { ok: false, error: { code: "invalid" } });
    }
    const msg = roomMessage(body.room, body.from || "bot", body.text);
    io.to(body.room).emit("message", msg);
    reply(200, { ok: true, id: msg.id, ts: msg.ts });
  });
});

io.on("connection", (socket) => {
  const user = (socket.handshake.auth && socket.handshake.auth.username) || "anonymous";
  socket.emit("welcome", { user });
  socket.on("join", (payload, ack) => {
    if (typeof ack !== "function") return;
    const room = payload && payload.room;
    if (typeof room !== "string") return ack({ ok: false, error: { code: "invalid" } });
    socket.join(room);
    ack({ ok: true, room, members: [user], history: [], recovered: true });
  });
  socket.on("message", (payload, ack) => {
    if (typeof ack !== "function") return;
    const room = payload && payload.room;
    const text = payload && payload.text;
    if (typeof room !== "string" || typeof text !== "string") {
      return ack({ ok: false, error: { code: "invalid" } });
    }
    if (!socket.rooms.has(room)) return ack({ ok: false, error: { code: "not_in_room" } });
    const msg = roomMessage(room, user, text);
    io.to(room).emit("message", msg);
    ack({ ok: true, id: msg.id, ts: msg.ts });
  });
});

async function main() {
  if (redisUrl) {
    const { createClient } = require("redis");
    const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(adapterKind === "sharded" ? createShardedAdapter(pub, sub) : createAdapter(pub, sub));
  }
  httpServer.listen(port, host, () => {
    const redis = redisUrl ? `yes (${adapterKind} adapter)` : "no";
    console.log(`node baseline listening on ${host}:${port} redis=${redis}`);
  });
}

process.on("SIGTERM", () => process.exit(0));
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
