// The official socket.io-client (v4) against a sio_teach server with engine options.
//
//   node tests/js/sio_engine_options.js <url> <scenario>
//
//   no-trailing-slash  addTrailingSlash: false (the path is "/socket.io"); polling, then the
//                      upgrade; one emitWithAck("message-with-ack", "hi")
//   cookie             withCredentials: true, long-polling only (Node keeps the cookies that the
//                      server sets, and sends them back); one emitWithAck
//   deflate            WebSocket only (permessage-deflate offered); a large and a small
//                      emitWithAck, a large "message" answered by "message-back"
//
// Output, one JSON object per line: {"event":"connect","transport":...},
// {"event":"ack","value":...} / {"event":"back","length":N,"same":bool}, {"event":"done",
// "transport":...,"extensions":...}, or {"event":"error","message":...} then exit 1.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario] = process.argv.slice(2);
const out = (record) => process.stdout.write(JSON.stringify({ ...record }) + "\n");
const fail = (message) => {
  out({ event: "error", message });
  process.exit(1);
};
setTimeout(() => fail("deadline of 15000 ms reached"), 15000);

const options = { forceNew: true, reconnection: false, timeout: 5000 };
if (scenario === "no-trailing-slash") options.addTrailingSlash = false;
else if (scenario === "cookie") Object.assign(options, { withCredentials: true, transports: ["polling"] });
else if (scenario === "deflate") options.transports = ["websocket"];
else fail(`unknown scenario ${scenario}`);

const big = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, name: `user-${i}` })));

async function main() {
  const socket = io(url, options);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) => reject(new Error(`connect_error ${err.message}`)));
  });
  const engine = socket.io.engine;
  out({ event: "connect", transport: engine.transport.name });
  if (scenario === "no-trailing-slash" && engine.transport.name !== "websocket") {
    await new Promise((resolve) => engine.once("upgrade", resolve));
  }
  out({ event: "ack", value: await socket.timeout(5000).emitWithAck("message-with-ack", "hi") });
  if (scenario === "deflate") {
    const value = await socket.timeout(5000).emitWithAck("message-with-ack", big);
    out({ event: "ack", value: value === big ? "same" : "different" });
    const back = new Promise((resolve) => socket.once("message-back", resolve));
    socket.emit("message", big);
    const got = await back;
    out({ event: "back", length: got.length, same: got === big });
  }
  const ws = engine.transport.ws;
  out({ event: "done", transport: engine.transport.name, extensions: ws ? ws.extensions : null });
  socket.disconnect();
  process.exit(0);
}

main().catch((err) => fail(String(err && err.message)));
