// The Admin UI's side of the protocol (npm @socket.io/admin-ui 0.5.x), played with the official
// socket.io-client against a sio_teach server instrumented with username admin / changeit.
//
//   node tests/js/admin_ui.js <url> [msgpack]
//
// With "msgpack", every client speaks socket.io-msgpack-parser (the UI's "MessagePack parser").
// It logs in as the UI does (a wrong password first), watches an application socket connect,
// send an event, join rooms, and obeys the UI's commands (emit, join, leave, _disconnect); then it
// logs in again with the session id. Every line on stdout is one JSON object {"event": ...};
// a failure prints {"event": "error", "message": ...} and exits with status 1.
"use strict";

const { io } = require("socket.io-client");

const [url, parserName] = process.argv.slice(2);
const parser = parserName === "msgpack" ? require("socket.io-msgpack-parser") : undefined;
const WAIT_MS = 5000;

function out(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

// The arguments of the first `event` on `emitter` for which `test(...args)` holds.
function when(emitter, event, test = () => true, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching "${event}" within ${ms} ms`)), ms);
    const listener = (...args) => {
      if (!test(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

const UI_EVENTS = [
  "session", "config", "all_sockets", "server_stats", "socket_connected", "socket_updated",
  "socket_disconnected", "room_joined", "room_left", "event_received", "event_sent",
];

function admin(auth) {
  // as ui/src/App.vue tryConnect: a new Manager, the namespace in the URL, auth in the CONNECT
  return io(url + "/admin", { forceNew: true, reconnection: false, timeout: WAIT_MS, auth, parser });
}

async function main() {
  // 1. a wrong password: CONNECT_ERROR "invalid credentials"
  const refused = admin({ username: "admin", password: "wrong" });
  const [error] = await when(refused, "connect_error");
  out("refused", { message: error.message });
  refused.close();

  // 2. the right one: session, config, all_sockets
  const ui = admin({ username: "admin", password: "changeit" });
  const seen = [];
  for (const name of UI_EVENTS) ui.on(name, (...args) => seen.push([name, ...args]));
  if (process.env.ADMIN_DEBUG) ui.onAny((...args) => process.stderr.write(JSON.stringify(args).slice(0, 150) + "\n"));
  const session = when(ui, "session");
  const config = when(ui, "config");
  const all = when(ui, "all_sockets");
  await when(ui, "connect");
  const [sessionId] = await session;
  out("session", { length: sessionId.length });
  out("config", { config: (await config)[0] });
  out("all_sockets", { sockets: (await all)[0] });

  // 3. an application socket: connected, joins its own room, sends an event
  const app = io(url, { forceNew: true, reconnection: false, timeout: WAIT_MS, parser });
  const connectedEvent = when(ui, "socket_connected", (s) => s.nsp === "/");
  await when(app, "connect");
  const [socket, timestamp] = await connectedEvent;
  out("socket_connected", { socket, timestamp, id: app.id });
  const received = when(ui, "event_received", (nsp, id) => id === app.id);
  const sent = when(ui, "event_sent", (nsp, id) => id === app.id);
  const joinedR1 = when(ui, "room_joined", (nsp, room, id) => room === "r1" && id === app.id);
  app.emit("hello", "x");
  out("event_received", { args: await received });
  out("event_sent", { args: await sent });
  out("room_joined", { args: await joinedR1 });

  // 4. the commands
  const ping = when(app, "ping");
  ui.emit("emit", "/", "r1", "ping", 1, { two: 2 });
  out("emit", { args: await ping });

  const joined = when(ui, "room_joined", (nsp, room) => room === "r2");
  ui.emit("join", "/", "r2", app.id);
  out("join", { args: await joined });

  const left = when(ui, "room_left", (nsp, room) => room === "r2");
  ui.emit("leave", "/", "r2", app.id);
  out("leave", { args: await left });

  const appId = app.id; // the client forgets its id once disconnected
  const gone = when(ui, "socket_disconnected", (nsp, id) => id === appId);
  const appGone = when(app, "disconnect");
  ui.emit("_disconnect", "/", false, appId);
  out("_disconnect", { args: await gone, client: (await appGone)[0] });

  // 5. server_stats
  const [stats] = await when(ui, "server_stats", (s) => s.aggregatedEvents.length > 0);
  out("server_stats", { stats });
  ui.close();

  // 6. the UI's reconnection: the session id alone is enough; a made-up one is not
  const again = admin({ sessionId });
  await when(again, "connect");
  out("session_login", { connected: again.connected });
  again.close();
  const forged = admin({ sessionId: "0123456789abcdef" });
  const [forgedError] = await when(forged, "connect_error");
  out("forged_session", { message: forgedError.message });
  forged.close();
  out("seen", { names: [...new Set(seen.map((e) => e[0]))].sort() });
}

main().then(
  () => process.exit(0),
  (error) => {
    out("error", { message: String(error && error.stack || error) });
    process.exit(1);
  },
);
