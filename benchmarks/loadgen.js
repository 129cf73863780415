// The one load generator for every server under test: the official npm socket.io-client.
//
//   node benchmarks/loadgen.js '<json options>'        (cwd = the repository root)
//
// Options (JSON): url, scenario, clients, inflight, count, maxSeconds, payloadBytes, warmup.
// Scenarios (see benchmarks/README.md):
//   ack_rtt         1 client, `emitWithAck("echo", payload)` one after another; latency percentiles
//   ack_throughput  `clients` clients, each keeping `inflight` acks outstanding, `count` acks in all
//   fanout          `clients` clients in room "r"; client 0 emits `bcast`, every client counts `msg`;
//                   at most `inflight` broadcasts not yet delivered to everyone; `count` broadcasts
//   polling         like ack_throughput over HTTP long-polling only
//   conn_memory     opens `clients` idle WebSocket connections (the measured phase is the opening)
//
// The driver (benchmarks/run.py) steers the phases over stdin/stdout, one JSON object per line:
//   < {"event":"ready"}          set-up done (clients connected, warm-up acks answered)
//   > go                         the driver has sampled the server's CPU time and RSS
//   < {"event":"result", ...}    measured phase done: messages, elapsed_s, latencies
//   > quit                       the driver has sampled again; disconnect everyone and exit
// A failure prints {"event":"error","message":...} and exits with status 1. Every phase is bounded
// by `maxSeconds`, and the whole process by a hard limit, so a stuck server cannot hang a run.
"use strict";

const http = require("http");
const { io } = require("socket.io-client");
const readline = require("readline");

const opts = {
  url: "http://127.0.0.1:3000",
  scenario: "ack_rtt",
  clients: 1,
  inflight: 1,
  count: 1000,
  maxSeconds: 10,
  payloadBytes: 32,
  warmup: 100,
  connectBatch: 50,
  keepAlive: true, // polling: reuse HTTP connections as a browser does (the Node client does not)
  ...JSON.parse(process.argv[2] || "{}"),
};
const HARD_LIMIT_MS = (3 * opts.maxSeconds + 60) * 1000;

function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function fail(err) {
  out("error", { message: String((err && err.stack) || err) });
  process.exit(1);
}

const hardLimit = setTimeout(() => fail(`hard limit of ${HARD_LIMIT_MS} ms reached`), HARD_LIMIT_MS);

// One line of stdin at a time: `await command()` resolves with the next line.
const lines = readline.createInterface({ input: process.stdin });
const pending = [];
const queued = [];
lines.on("line", (line) => (pending.length ? pending.shift()(line.trim()) : queued.push(line.trim())));
lines.on("close", () => {
  while (pending.length) pending.shift()("quit");
  queued.push("quit");
});
function command() {
  return queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => pending.push(resolve));
}

const payload = { text: "x".repeat(opts.payloadBytes) };
const agent = new http.Agent({ keepAlive: opts.keepAlive });
let httpRequests = 0; // polling requests (GET and POST) made through the agent
const addRequest = agent.addRequest.bind(agent);
agent.addRequest = (...a) => {
  httpRequests++;
  return addRequest(...a);
};
const sockets = [];

function connect(transports) {
  return new Promise((resolve, reject) => {
    const socket = io(opts.url, {
      forceNew: true,
      reconnection: false,
      timeout: 10000,
      transports,
      agent, // used by the polling transport's requests
      // Off for every server alike: aiohttp would otherwise compress every frame it sends.
      perMessageDeflate: false,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    sockets.push(socket);
  });
}

async function connectMany(n, transports) {
  const connected = [];
  for (let i = 0; i < n; i += opts.connectBatch) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + opts.connectBatch); j++) batch.push(connect(transports));
    connected.push(...(await Promise.all(batch)));
  }
  return connected;
}

function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

// `emitWithAck` with a time limit, so that a lost ack fails the run instead of hanging it.
function ack(socket, seq) {
  return socket.timeout(opts.maxSeconds * 1000).emitWithAck("echo", { seq, ...payload });
}

// `clients` sockets, each with `inflight` acks outstanding, until `total` acks or `deadline`.
async function ackLoad(clients, total, deadline, latencies) {
  let issued = 0;
  let done = 0;
  async function worker(socket) {
    while (issued < total && now() < deadline) {
      const seq = issued++;
      const t0 = latencies ? now() : 0;
      const reply = await ack(socket, seq);
      if (!reply || reply.seq !== seq) throw new Error(`bad ack for ${seq}: ${JSON.stringify(reply)}`);
      if (latencies) latencies.push(now() - t0);
      done++;
    }
  }
  const workers = [];
  for (const socket of clients) for (let k = 0; k < opts.inflight; k++) workers.push(worker(socket));
  await Promise.all(workers);
  return done;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// Client 0 emits `bcast` with a sequence number; every client counts `msg`. At most `inflight`
// broadcasts are outstanding (not yet received by every client).
function fanout(clients, total, deadline) {
  return new Promise((resolve, reject) => {
    const n = clients.length;
    const received = new Map(); // seq → how many clients have it
    let sent = 0;
    let complete = 0;
    let delivered = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      resolve({ delivered, broadcasts: complete, sent });
    };
    const pump = () => {
      while (!finished && sent - complete < opts.inflight && sent < total && now() < deadline) {
        clients[0].emit("bcast", { seq: sent++, ...payload });
      }
      if (complete >= sent && (sent >= total || now() >= deadline)) finish();
    };
    for (const socket of clients) {
      socket.on("msg", (data) => {
        delivered++;
        const c = (received.get(data.seq) || 0) + 1;
        if (c === n) {
          received.delete(data.seq);
          complete++;
          pump();
        } else received.set(data.seq, c);
      });
    }
    const watchdog = setInterval(() => {
      if (now() > deadline + 5) {
        if (complete < sent) reject(new Error(`fanout: ${sent - complete} broadcasts undelivered`));
        else finish();
      } else if (now() >= deadline) pump();
    }, 100);
    pump();
  });
}

async function main() {
  const s = opts.scenario;
  let clients = [];
  // Set-up: connect, then warm both ends up (JIT, caches) outside the measured phase.
  if (s === "ack_rtt" || s === "ack_throughput" || s === "fanout") {
    clients = await connectMany(s === "ack_rtt" ? 1 : opts.clients, ["websocket"]);
  } else if (s === "polling") {
    clients = await connectMany(opts.clients, ["polling"]);
  } else if (s === "conn_memory") {
    clients = await connectMany(Math.min(opts.warmup, 20), ["websocket"]);
  } else throw new Error(`unknown scenario ${s}`);
  if (s !== "conn_memory" && opts.warmup > 0) {
    await ackLoad(clients, opts.warmup, now() + opts.maxSeconds, null);
  }
  out("ready", { clients: clients.length });
  if ((await command()) !== "go") return finishRun();

  const t0 = now();
  const requests0 = httpRequests;
  const deadline = t0 + opts.maxSeconds;
  const result = { scenario: s, clients: clients.length };
  if (s === "ack_rtt") {
    const latencies = [];
    result.messages = await ackLoad(clients, opts.count, deadline, latencies);
    latencies.sort((a, b) => a - b);
    result.latency_p50_ms = percentile(latencies, 0.5) * 1e3;
    result.latency_p99_ms = percentile(latencies, 0.99) * 1e3;
  } else if (s === "ack_throughput" || s === "polling") {
    result.messages = await ackLoad(clients, opts.count, deadline, null);
    if (s === "polling") result.http_requests = httpRequests - requests0;
  } else if (s === "fanout") {
    const f = await fanout(clients, opts.count, deadline);
    result.messages = f.delivered;
    result.broadcasts = f.broadcasts;
  } else if (s === "conn_memory") {
    const opened = await connectMany(opts.clients, ["websocket"]);
    result.messages = opened.length; // connections
    result.clients = clients.length + opened.length;
  }
  result.elapsed_s = now() - t0;
  result.timed_out = now() >= deadline;
  out("result", result);
  await command(); // "quit" (or stdin closed)
  finishRun();
}

function finishRun() {
  for (const socket of sockets) socket.disconnect();
  agent.destroy();
  clearTimeout(hardLimit);
  // Let the close frames leave, then exit even if a socket lingers.
  setTimeout(() => process.exit(0), 100);
}

main().catch(fail);
