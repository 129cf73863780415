// The official socket.io-client (npm, pinned in package.json) against a sio_teach server.
//
//   node tests/js/sio_client.js <url> <mode> <scenario> [msgpack]
//
// mode: "default" (polling, then upgrade to WebSocket), "websocket" (WebSocket only),
//       "polling" (long-polling only)
// scenario: basic | rooms | refused | reconnect  (see the functions below)
// msgpack: speak npm `socket.io-msgpack-parser` instead of the default parser
//
// Every line on stdout is one JSON object {"event": ..., ...}; a failure prints
// {"event": "error", "message": ...} and exits with status 1. Buffers are written as
// {"$bytes": [..]} (and {"$arraybuffer": [..]} for an ArrayBuffer) so that the Python side can
// check that binary stayed binary.
"use strict";

const { io, Manager } = require("socket.io-client");

const [url, mode, scenario, parserName] = process.argv.slice(2);
const WAIT_MS = 5000;

function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function plain(value) {
  if (Buffer.isBuffer(value)) return { $bytes: [...value] };
  if (value instanceof ArrayBuffer) return { $arraybuffer: [...new Uint8Array(value)] };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value === undefined ? null : value;
}

function options(extra = {}) {
  const opts = { forceNew: true, reconnection: false, timeout: WAIT_MS, ...extra };
  if (parserName === "msgpack") opts.parser = require("socket.io-msgpack-parser");
  else if (parserName !== undefined) throw new Error(`unknown parser ${parserName}`);
  if (mode === "websocket") opts.transports = ["websocket"];
  else if (mode === "polling") opts.transports = ["polling"];
  else if (mode !== "default") throw new Error(`unknown mode ${mode}`);
  return opts;
}

// The arguments of the next `event` on `emitter`, as an array; rejects after `ms`.
function once(emitter, event, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

// Resolves when `socket` is connected; rejects on connect_error or timeout.
function connected(socket, ms = WAIT_MS) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${socket.nsp}: not connected within ${ms} ms`)), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${socket.nsp}: connect_error ${err.message}`));
    });
  });
}

// emit with an ack callback; resolves with *every* ack argument (emitWithAck gives the first only).
function emitAck(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(WAIT_MS).emit(event, ...args, (err, ...values) => (err ? reject(err) : resolve(values)));
  });
}

async function waitForUpgrade(manager) {
  if (mode === "default" && manager.engine.transport.name !== "websocket") {
    await once(manager.engine, "upgrade");
  }
}

// -- scenarios ----------------------------------------------------------------------------------

async function basic() {
  const manager = new Manager(url, options());
  const socket = manager.socket("/", { auth: { token: "abc" } });
  const custom = manager.socket("/custom"); // the same Engine.IO connection
  const authSeen = once(socket, "auth");
  const customAuth = once(custom, "auth");
  const customConnected = connected(custom);
  await connected(socket);
  out("connect", { transport: manager.engine.transport.name, hasId: typeof socket.id === "string" });
  out("auth", { args: plain(await authSeen) });

  // emit + ack
  out("ack", { args: plain(await emitAck(socket, "message-with-ack", 1, "2", { 3: [true] })) });
  out("emitWithAck", { value: await socket.timeout(WAIT_MS).emitWithAck("message-with-ack", "x") });
  out("empty-ack", { args: plain(await emitAck(socket, "message-with-ack")) });

  // an event nobody handles is never acknowledged: the client's ack times out
  const started = Date.now();
  try {
    await socket.timeout(300).emitWithAck("no-such-event", 1);
    out("unknown-event-acked");
  } catch (err) {
    out("unknown-event-timeout", { message: err.message, elapsed: Date.now() - started });
  }

  // Buffer round trip
  const back = once(socket, "message-back");
  socket.emit("message", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5])] }, "text", Buffer.alloc(0));
  const args = await back;
  out("message-back", { args: plain(args), isBuffer: Buffer.isBuffer(args[0]) });

  // binary ack
  const binAck = await emitAck(socket, "message-with-ack", Buffer.from([9, 8]), "t");
  out("binary-ack", { args: plain(binAck), isBuffer: Buffer.isBuffer(binAck[0]) });

  // server → client event with an ack, answered by this client (with binary)
  socket.on("callback", (...cbArgs) => {
    const ack = cbArgs.pop();
    out("callback", { args: plain(cbArgs), ackIsFunction: typeof ack === "function" });
    ack("y", { z: Buffer.from([7]) });
  });
  const cbAck = once(socket, "callback-ack");
  socket.emit("call-me-back", "x", 2);
  out("callback-ack", { args: plain(await cbAck) });

  // /custom, on the same connection
  await customConnected;
  out("custom-auth", { args: plain(await customAuth) });
  out("custom", { value: await custom.timeout(WAIT_MS).emitWithAck("message-with-ack", "on custom") });
  const customGone = once(custom, "disconnect");
  custom.emit("disconnect-me");
  const [reason] = await customGone;
  out("custom-disconnect", { reason, mainConnected: socket.connected });
  out("after", { value: await socket.timeout(WAIT_MS).emitWithAck("message-with-ack", "still here") });

  await waitForUpgrade(manager);
  out("transport", { name: manager.engine.transport.name });
  socket.disconnect();
}

async function rooms() {
  const make = (nsp) => io(url + (nsp === "/" ? "" : nsp), options());
  const clients = { a: make("/"), b: make("/"), c: make("/"), d: make("/custom") };
  const received = {};
  for (const [name, socket] of Object.entries(clients)) {
    received[name] = [];
    for (const event of ["room-message", "broadcast-message"]) {
      socket.on(event, (...args) => received[name].push([event, ...plain(args)]));
    }
  }
  const all = Object.values(clients);
  await Promise.all(all.map((s) => connected(s)));
  // Every client makes a round trip: whatever the server sent it before has arrived by then.
  const report = async (step) => {
    await Promise.all(all.map((s) => s.timeout(WAIT_MS).emitWithAck("message-with-ack", "sync")));
    out(step, { received });
    for (const name of Object.keys(received)) received[name] = [];
  };
  const { a, b, c, d } = clients;
  for (const s of [a, b, d]) {
    const room = await s.timeout(WAIT_MS).emitWithAck("join", "room-1");
    if (room !== "room-1") throw new Error(`join acknowledged with ${room}`);
  }
  await emitAck(a, "to-room", "room-1", "hello", Buffer.from([1]));
  await report("to-room");
  await emitAck(b, "broadcast", "hi", { n: 1 });
  await report("broadcast");
  await a.timeout(WAIT_MS).emitWithAck("leave", "room-1");
  await emitAck(c, "to-room", "room-1", "again");
  await report("after-leave");
  await emitAck(d, "broadcast", "custom only");
  await report("custom-broadcast");
  all.forEach((s) => s.disconnect());
}

async function refused() {
  const manager = new Manager(url, options());
  const priv = manager.socket("/private", { auth: { token: "bad" } });
  const [err] = await once(priv, "connect_error");
  out("connect_error", { message: err.message, data: plain(err.data), connected: priv.connected });
  const main = manager.socket("/"); // the connection is still usable
  await connected(main);
  out("main", { value: await main.timeout(WAIT_MS).emitWithAck("message-with-ack", "ok") });
  priv.auth = { token: "good" };
  priv.connect();
  await connected(priv);
  out("private", { value: await priv.timeout(WAIT_MS).emitWithAck("whoami") });
  manager.engine.close();
}

function reconnect() {
  // Runs until the test has stopped and restarted the server: it prints "ready" once connected,
  // "disconnect" and "buffered" when the server goes away, "done" after reconnecting by itself.
  return new Promise((resolve, reject) => {
    const socket = io(
      url,
      options({ reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, randomizationFactor: 0 }),
    );
    let connects = 0;
    let buffered = false;
    socket.on("connect", async () => {
      connects += 1;
      out("connect", { n: connects, transport: socket.io.engine.transport.name });
      try {
        if (connects === 1) {
          await socket.timeout(WAIT_MS).emitWithAck("record", "before");
          out("ready");
        } else {
          const value = await socket.timeout(WAIT_MS).emitWithAck("message-with-ack", "after");
          out("done", { value, connects });
          socket.disconnect();
          resolve();
        }
      } catch (err) {
        reject(err);
      }
    });
    socket.on("disconnect", (reason) => {
      out("disconnect", { reason, active: socket.active });
      if (!buffered) {
        buffered = true;
        socket.emit("record", "while-disconnected"); // not connected: socket.io-client buffers it
        out("buffered", { sendBuffer: socket.sendBuffer.length });
      }
    });
    socket.io.on("reconnect_attempt", (n) => out("reconnect_attempt", { n }));
    socket.io.on("reconnect_error", (err) => out("reconnect_error", { message: err.message }));
  });
}

const scenarios = { basic, rooms, refused, reconnect };

async function main() {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  await run();
  out("done-script");
}

setTimeout(() => {
  out("error", { message: "the script timed out (25 s)" });
  process.exit(2);
}, 25000).unref();

main().then(
  () => process.exit(0),
  (err) => {
    out("error", { message: String((err && err.stack) || err) });
    process.exit(1);
  },
);
