// The official socket.io-client (npm) through a server restart: nothing lost, nothing doubled.
//
//   node tests/js/reliability_restart.js <url> <mode> <tag> <before> <while_down> [lifetime_s]
//
// mode: "default" (polling, then upgrade), "websocket" or "polling".
// Talks to the conformance app (`message` → `message-back` with the same args). It:
//   1. connects, emits `message` (tag, 0 … before-1), makes a round trip, prints "ready";
//   2. on the first disconnect prints "disconnect", then emits `message` (tag, before …
//      before+while_down-1), one every 10 ms, each while disconnected (they wait in the client's
//      send buffer), and prints "buffered" with the buffer's length;
//   3. reconnects by itself (the test restarts the server), waits for every `message-back`, makes
//      a round trip, prints "done" with the numbers that came back, in arrival order, and exits 0.
// Every line on stdout is one JSON object; a failure prints {"event": "error", ...} and exits 1.
"use strict";

const { io } = require("socket.io-client");

const [url, mode, tag, beforeArg, whileDownArg, lifetimeArg] = process.argv.slice(2);
const BEFORE = Number(beforeArg);
const WHILE_DOWN = Number(whileDownArg);
const LIFETIME_MS = 1000 * Number(lifetimeArg || 60);
const WAIT_MS = 10000;

function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function fail(message) {
  out("error", { message });
  process.exit(1);
}

setTimeout(() => fail(`the script timed out (${LIFETIME_MS} ms)`), LIFETIME_MS).unref();

const options = {
  forceNew: true,
  timeout: WAIT_MS,
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 300,
  randomizationFactor: 0,
};
if (mode === "websocket") options.transports = ["websocket"];
else if (mode === "polling") options.transports = ["polling"];
else if (mode !== "default") fail(`unknown mode ${mode}`);

const socket = io(url, options);
const backs = []; // the numbers of our `message-back`s, in arrival order
let next = 0; // the next number to emit
let connects = 0;
let downEmitting = false;

socket.on("message-back", (from, n) => {
  if (from === tag) backs.push(n);
});

// Resolves once `predicate()` is true (checked every 10 ms); rejects after `ms`.
function until(predicate, what, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (predicate()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what} (backs: ${JSON.stringify(backs)})`));
      }
    }, 10);
  });
}

async function roundTrip() {
  const value = await socket.timeout(WAIT_MS).emitWithAck("message-with-ack", "sync");
  if (value !== "sync") throw new Error(`round trip answered ${JSON.stringify(value)}`);
}

socket.on("connect", async () => {
  connects += 1;
  out("connect", { n: connects, transport: socket.io.engine.transport.name });
  try {
    if (connects === 1) {
      for (; next < BEFORE; next++) socket.emit("message", tag, next);
      await roundTrip();
      out("ready", { backs });
    } else if (connects === 2) {
      await until(() => backs.length >= BEFORE + WHILE_DOWN, "every message-back");
      await roundTrip(); // a duplicate or a straggler would have arrived before its answer
      out("done", { backs, connects, sendBuffer: socket.sendBuffer.length });
      socket.disconnect();
      process.exit(0);
    }
  } catch (err) {
    fail(String((err && err.stack) || err));
  }
});

socket.on("disconnect", (reason) => {
  out("disconnect", { reason, active: socket.active });
  if (downEmitting) return;
  downEmitting = true;
  const timer = setInterval(() => {
    if (socket.connected) {
      clearInterval(timer);
      fail(`reconnected after ${next - BEFORE} of ${WHILE_DOWN} emits: the server was up too soon`);
    }
    socket.emit("message", tag, next++);
    if (next === BEFORE + WHILE_DOWN) {
      clearInterval(timer);
      out("buffered", { sendBuffer: socket.sendBuffer.length });
    }
  }, 10);
});

socket.on("connect_error", (err) => out("connect_error", { message: err.message }));
socket.io.on("reconnect_attempt", (n) => out("reconnect_attempt", { n }));
socket.io.on("reconnect_error", (err) => out("reconnect_error", { message: err.message }));
socket.io.on("reconnect", (n) => out("reconnect", { n }));
