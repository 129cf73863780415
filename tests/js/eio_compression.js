// The official engine.io-client (v6) with compression, against an Engine.IO echo server.
//
//   node tests/js/eio_compression.js <url> websocket|fetch <size>
//
//   websocket  the WebSocket transport only; in Node it offers permessage-deflate and compresses
//              its own frames of >= 1024 bytes (engine.io-client's perMessageDeflate default)
//   fetch      long-polling over Node's fetch(), which sends "Accept-Encoding: gzip, deflate"
//              and inflates the answers
//   size       the length of the large messages (a text and a binary one); a small text is sent too
//
// Output, one JSON object per line:
//   {"event":"open","transport":...,"extensions":"permessage-deflate"|""}
//   {"event":"echo","kind":"text"|"binary","length":N,"same":true|false}
//   {"event":"done","bytesRead":N,"bytesWritten":N}   (the WebSocket's TCP counts; null on fetch)
//   {"event":"error","message":...}  then exit 1
"use strict";

const { Socket, Fetch } = require("engine.io-client");

const [url, mode, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg || 4000);
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");
const fail = (message) => {
  out({ event: "error", message });
  process.exit(1);
};
setTimeout(() => fail("deadline of 15000 ms reached"), 15000);

// Compressible, as real JSON is: the same keys again and again, with numbers that change.
let text = "";
for (let i = 0; text.length < size; i++) text += `{"id":${i},"name":"user-${i}","online":true},`;
text = text.slice(0, size);
const binary = Buffer.alloc(size);
for (let i = 0; i < size; i++) binary[i] = i % 7;
const sent = [["small", "hi"], ["text", text], ["binary", binary]];

const socket = new Socket(url, {
  path: "/engine.io/",
  transports: mode === "fetch" ? [Fetch] : ["websocket"],
});
const ws = () => (socket.transport && socket.transport.ws) || null;
let next = 0;

socket.on("open", () => {
  out({ event: "open", transport: socket.transport.name, extensions: ws() ? ws().extensions : null });
  for (const [, data] of sent) socket.send(data);
});
socket.on("message", (received) => {
  const data = received instanceof ArrayBuffer ? Buffer.from(received) : received;
  const [kind, expected] = sent[next++];
  const same = Buffer.isBuffer(expected)
    ? Buffer.isBuffer(data) && expected.equals(data)
    : data === expected;
  out({ event: "echo", kind, length: data.length, same });
  if (next === sent.length) {
    const tcp = ws() && ws()._socket;
    out({ event: "done", bytesRead: tcp ? tcp.bytesRead : null, bytesWritten: tcp ? tcp.bytesWritten : null });
    socket.close();
    process.exit(0);
  }
});
socket.on("error", (err) => fail(String(err && err.message)));
socket.on("close", (reason) => {
  if (next < sent.length) fail(`closed before every echo: ${reason}`);
});
