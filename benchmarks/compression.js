// The load generator of benchmarks/compression.py: one official socket.io-client on a WebSocket,
// `count` emitWithAck("echo", payload) one after another, counting the bytes on its TCP socket.
//
//   node benchmarks/compression.js '{"url":..., "size":4096, "count":500, "warmup":50}'
//
// The payload is JSON as applications send it (the same keys again and again, numbers that
// change), `size` bytes once serialised. The client offers permessage-deflate (Node's default,
// threshold 1024 bytes); whether it is used is the server's choice. The driver steers it as
// benchmarks/loadgen.js: < {"event":"ready"}  > go  < {"event":"result", ...}  > quit.
"use strict";

const { io } = require("socket.io-client");
const readline = require("readline");

const opts = { url: "http://127.0.0.1:3000", size: 4096, count: 500, warmup: 50, maxSeconds: 10, ...JSON.parse(process.argv[2] || "{}") };
const out = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const fail = (err) => {
  out("error", { message: String((err && err.stack) || err) });
  process.exit(1);
};
setTimeout(() => fail("hard limit reached"), (3 * opts.maxSeconds + 60) * 1000);

const lines = readline.createInterface({ input: process.stdin });
const next = () => new Promise((resolve) => lines.once("line", (line) => resolve(line.trim())));

// A fresh payload for every message: the same shape, other numbers (with context takeover, a
// payload sent twice would cost almost nothing the second time).
function payload(seq) {
  const items = [];
  for (let i = 0; JSON.stringify(items).length < opts.size; i++) {
    const n = (i * 7919 + (seq + 2) * 104729) % 1000003;
    items.push({ id: n, name: `user-${n % 9973}`, online: n % 3 === 0, score: (n * 31) % 100000 });
  }
  return { seq, items };
}

async function main() {
  const socket = io(opts.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
  const ws = socket.io.engine.transport.ws;
  const tcp = ws._socket;
  const ack = (seq) => socket.timeout(opts.maxSeconds * 1000).emitWithAck("echo", payload(seq));
  for (let i = 0; i < opts.warmup; i++) await ack(-1 - i);
  out("ready", { clients: 1, extensions: ws.extensions, payloadBytes: JSON.stringify(payload(0)).length });
  if ((await next()) !== "go") process.exit(0);
  const [read0, written0, t0] = [tcp.bytesRead, tcp.bytesWritten, process.hrtime.bigint()];
  const deadline = Date.now() + opts.maxSeconds * 1000;
  let messages = 0;
  while (messages < opts.count && Date.now() < deadline) {
    const reply = await ack(messages);
    if (reply.seq !== messages) throw new Error(`bad ack for ${messages}`);
    messages++;
  }
  out("result", {
    messages,
    elapsed_s: Number(process.hrtime.bigint() - t0) / 1e9,
    bytes_read: tcp.bytesRead - read0,
    bytes_written: tcp.bytesWritten - written0,
  });
  await next();
  socket.disconnect();
  process.exit(0);
}

main().catch(fail);
