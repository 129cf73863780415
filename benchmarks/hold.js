// Idle clients held on a heartbeat: the official npm socket.io-client, one client per connection.
//
//   node benchmarks/hold.js '<json options>'           (cwd = the repository root)
//
// Options (JSON): url, clients, connectBatch, connectLimitSeconds, holdSeconds, ackSample, ackEvent.
// Every client uses the WebSocket transport only, never reconnects, and sends nothing while held:
// the only traffic is the server's pings and the clients' pongs. Driven by
// benchmarks/heartbeat_hold.py, which reads one JSON object per line on stdout:
//   {"event":"connected", ...}   every client has connected (or failed to): the hold starts
//   {"event":"held", ...}        holdSeconds later: the hold is over
//   {"event":"result", ...}      the figures, after `ackSample` held clients were asked for an ack
// Drops are counted by phase ("connecting": before the last client connected; "held": after) and
// by the reason socket.io-client gives ("ping timeout": the server's ping came late;
// "transport close" / "io server disconnect": the server closed the connection).
// A client whose own event loop stalls longer than pingTimeout times out by itself: the largest
// stall of this process is reported per phase (client_max_lag_ms) to tell the two apart.
// Every phase is bounded, and the whole process by a hard limit.
"use strict";

const { io } = require("socket.io-client");

const opts = {
  url: "http://127.0.0.1:3000",
  clients: 2000,
  connectBatch: 50,
  connectTimeoutMs: 10000,
  connectLimitSeconds: 60, // no new batch starts after this: the others count as connect errors
  holdSeconds: 20,
  ackSample: 100,
  ackEvent: "message-with-ack",
  ...JSON.parse(process.argv[2] || "{}"),
};
const HARD_LIMIT_MS = (opts.connectLimitSeconds + opts.holdSeconds + 60) * 1000;

function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

const hardLimit = setTimeout(() => {
  out("error", { message: `hard limit of ${HARD_LIMIT_MS} ms reached` });
  process.exit(1);
}, HARD_LIMIT_MS);

function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

let phase = "connecting";
const sockets = []; // every client that connected
const dropped = { connecting: {}, held: {} }; // phase -> reason -> count
let pings = 0;
let connectErrors = 0;
const maxLagMs = { connecting: 0, held: 0 }; // the longest this process's event loop was late
let lastTick = now();
const lagMonitor = setInterval(() => {
  const t = now();
  const lag = (t - lastTick) * 1e3 - 10;
  lastTick = t;
  if (phase !== "done" && lag > maxLagMs[phase]) maxLagMs[phase] = lag;
}, 10);
const connectErrorSamples = [];

function connect() {
  return new Promise((resolve) => {
    const socket = io(opts.url, {
      forceNew: true,
      reconnection: false,
      timeout: opts.connectTimeoutMs,
      transports: ["websocket"],
      perMessageDeflate: false,
    });
    socket.io.on("ping", () => pings++);
    socket.once("connect", () => {
      sockets.push(socket);
      socket.on("disconnect", (reason) => {
        if (phase === "done") return;
        dropped[phase][reason] = (dropped[phase][reason] || 0) + 1;
      });
      resolve();
    });
    const failed = (message) => {
      if (socket.connected || sockets.includes(socket)) return;
      connectErrors++;
      if (connectErrorSamples.length < 5) connectErrorSamples.push(message);
      socket.close();
      resolve();
    };
    socket.once("connect_error", (err) => failed(String(err.message)));
    // the connection may also end after the handshake, before the CONNECT reply
    socket.once("disconnect", (reason) => failed(`disconnected before CONNECT: ${reason}`));
  });
}

function count(byReason) {
  return Object.values(byReason).reduce((a, b) => a + b, 0);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Ask `n` clients still connected for one ack each (time limit 2 s); how many answered.
async function sampleAcks(n) {
  const alive = sockets.filter((s) => s.connected);
  const step = Math.max(1, Math.floor(alive.length / Math.max(1, n)));
  const picked = [];
  for (let i = 0; i < alive.length && picked.length < n; i += step) picked.push(alive[i]);
  const replies = await Promise.allSettled(
    picked.map((s, i) => s.timeout(2000).emitWithAck(opts.ackEvent, i)),
  );
  return { asked: picked.length, answered: replies.filter((r) => r.status === "fulfilled").length };
}

async function main() {
  const t0 = now();
  for (let i = 0; i < opts.clients; i += opts.connectBatch) {
    if (now() - t0 > opts.connectLimitSeconds) {
      connectErrors += opts.clients - i; // never tried: the server is too slow to accept them
      break;
    }
    const batch = [];
    for (let j = i; j < Math.min(opts.clients, i + opts.connectBatch); j++) batch.push(connect());
    await Promise.all(batch);
  }
  const connectS = now() - t0;
  phase = "held";
  const pingsAtConnected = pings;
  out("connected", {
    connected: sockets.length,
    connect_errors: connectErrors,
    connect_s: connectS,
    dropped_connecting: count(dropped.connecting),
  });
  const heldFrom = now();
  await sleep(opts.holdSeconds * 1000);
  const heldS = now() - heldFrom;
  const pingsHeld = pings - pingsAtConnected;
  const stillConnected = sockets.filter((s) => s.connected).length;
  out("held", { held_s: heldS, still_connected: stillConnected });
  const acks = await sampleAcks(opts.ackSample);
  phase = "done";
  out("result", {
    clients: opts.clients,
    connected: sockets.length,
    connect_errors: connectErrors,
    connect_error_samples: connectErrorSamples,
    connect_s: connectS,
    held_s: heldS,
    still_connected: stillConnected,
    dropped_connecting: count(dropped.connecting),
    dropped_held: count(dropped.held),
    dropped_reasons: dropped,
    pings_total: pings,
    pings_held: pingsHeld,
    acks_asked: acks.asked,
    acks_answered: acks.answered,
    client_max_lag_ms: { connecting: Math.round(maxLagMs.connecting), held: Math.round(maxLagMs.held) },
  });
  clearInterval(lagMonitor);
  for (const socket of sockets) socket.disconnect();
  clearTimeout(hardLimit);
  setTimeout(() => process.exit(0), 200); // let the close frames leave
}

main().catch((err) => {
  out("error", { message: String((err && err.stack) || err) });
  process.exit(1);
});
