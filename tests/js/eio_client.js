// Drive the official engine.io-client (v6) against an Engine.IO echo server; print what it saw.
//
//   node tests/js/eio_client.js <url> <transports> [count] [stay_ms] [deadline_ms]
//
//   url         http://127.0.0.1:PORT (the path is /engine.io/)
//   transports  "polling" | "websocket" | "default" (polling, then upgrade to websocket)
//   count       numbered text messages "m0".."m<count-1>" sent right at open (default 0); in
//               "default" mode <count> more when the upgrade starts (the client's "upgrading"
//               event, while polling is being paused) and <count> more right after the upgrade
//   stay_ms     after every echo arrived, stay connected this long, then send "final" (default 0)
//   deadline_ms give up (exit 1) after this long (default 20000)
//
// At open it sends "hello", the binary Buffer <01 02 03 04>, then the numbered messages, and waits
// for every echo (and, in "default" mode, for the upgrade). Text messages starting with "srv:" are
// the server's own (not echoes): they are printed but not counted. Output: one JSON object per line:
//   {"event":"handshake", ...open packet data}     {"event":"open","transport":"polling"}
//   {"event":"upgrade","transport":"websocket"}    {"event":"ping","transport":...}
//   {"event":"message","kind":"text","data":"m0","transport":...}
//   {"event":"message","kind":"binary","data":[1,2,3,4],"transport":...}
//   {"event":"close","reason":...}                 {"event":"done","transport":...,"pings":N}
//   {"event":"error","message":...}
// Exit status: 0 when done and closed cleanly, 1 on a deadline, 2 on an unexpected close.
"use strict";

const { Socket } = require("engine.io-client");

const [url, mode, countArg, stayArg, deadlineArg] = process.argv.slice(2);
const count = Number(countArg || 0);
const stayMs = Number(stayArg || 0);
const deadlineMs = Number(deadlineArg || 20000);
if (!url || !["polling", "websocket", "default"].includes(mode)) {
  console.error("usage: eio_client.js <url> polling|websocket|default [count] [stay_ms] [deadline_ms]");
  process.exit(64);
}

const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const options = { path: "/engine.io/" };
if (mode !== "default") options.transports = [mode];
const expectUpgrade = mode === "default";

const socket = new Socket(url, options);
let pings = 0;
let echoes = 0;
let upgraded = false;
let finished = false;
let finalSent = false;
let sent = 0;
const expectedEchoes = 2 + (expectUpgrade ? 3 : 1) * count;

function sendNumbered(n) {
  for (let i = 0; i < n; i++) socket.send(`m${sent++}`);
}

const deadline = setTimeout(() => {
  out({ event: "error", message: `deadline of ${deadlineMs} ms reached`, echoes, upgraded });
  process.exit(1);
}, deadlineMs);

function transportName() {
  return socket.transport ? socket.transport.name : null;
}

function maybeFinish() {
  if (finalSent || echoes < expectedEchoes || (expectUpgrade && !upgraded)) return;
  finalSent = true;
  setTimeout(() => socket.send("final"), stayMs);
}

socket.on("handshake", (data) => out({ event: "handshake", ...data }));

socket.on("open", () => {
  out({ event: "open", transport: transportName() });
  socket.send("hello");
  socket.send(Buffer.from([1, 2, 3, 4]));
  sendNumbered(count);
});

socket.on("upgrading", (transport) => {
  out({ event: "upgrading", transport: transport.name });
  sendNumbered(count);
});

socket.on("upgrade", (transport) => {
  upgraded = true;
  out({ event: "upgrade", transport: transport.name });
  sendNumbered(count);
  maybeFinish();
});

socket.on("ping", () => {
  pings += 1;
  out({ event: "ping", transport: transportName() });
});

socket.on("message", (data) => {
  const transport = transportName();
  if (typeof data === "string") {
    out({ event: "message", kind: "text", data, transport });
    if (data === "final") {
      finished = true;
      out({ event: "done", transport, pings });
      socket.close();
      return;
    }
    if (data.startsWith("srv:")) return; // the server's own message, not an echo
  } else {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data instanceof ArrayBuffer ? data : data.buffer);
    out({ event: "message", kind: "binary", data: [...bytes], buffer: Buffer.isBuffer(data), transport });
  }
  echoes += 1;
  maybeFinish();
});

socket.on("error", (error) => out({ event: "error", message: String(error && error.message || error) }));

socket.on("close", (reason, description) => {
  out({ event: "close", reason, description: description ? String(description.message || description) : null });
  clearTimeout(deadline);
  // give the close packet / WebSocket close frame a moment to leave, then exit
  setTimeout(() => process.exit(finished ? 0 : 2), 50);
});
