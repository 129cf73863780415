// The official Engine.IO server (npm `engine.io`), as an echo peer for our Python client.
//
//   node tests/js/eio_server.js PORT [--report] [--max-payload=BYTES] [--ping-timeout=MS]
//                                    [--lifetime=SECONDS]
//
// Run with cwd = the repository root so that `require("engine.io")` finds ./node_modules.
// Listens on 127.0.0.1:PORT (0: any free port) with pingInterval 300 ms, pingTimeout 200 ms (or
// --ping-timeout), and
// echoes every message back as it came (text as text, binary as binary). The text message
// "!close" is not echoed: the server closes that socket instead (socket.close()).
// --max-payload sets maxHttpBufferSize (advertised to the client as maxPayload; default 1e6).
//
// stdout is one JSON object per line (the test reads them):
//   {"event":"listening","port":P}
//   {"event":"connection","sid":S,"transport":"polling"|"websocket","query":{...}}
//   {"event":"upgrade","sid":S,"transport":"websocket"}
//   {"event":"message","sid":S,"type":"text"|"binary","data":...}   (only with --report;
//                                                                    binary data as base64)
//   {"event":"close","sid":S,"reason":R,"description":D,"detail":X}
//        (D: the error behind R, e.g. "write error"; X: the first line of its cause; or null)
//
// --lifetime (default 120 s) makes the server exit by itself, so that a test run that dies
// cannot leave it behind.

"use strict";

const http = require("http");
const engine = require("engine.io");

const args = process.argv.slice(2);
const port = Number(args[0] || 0);
const report = args.includes("--report");
const lifetimeArg = args.find((a) => a.startsWith("--lifetime="));
const lifetime = lifetimeArg ? Number(lifetimeArg.split("=")[1]) : 120;
const maxPayloadArg = args.find((a) => a.startsWith("--max-payload="));
const maxPayload = maxPayloadArg ? Number(maxPayloadArg.split("=")[1]) : 1e6;
const pingTimeoutArg = args.find((a) => a.startsWith("--ping-timeout="));
const pingTimeout = pingTimeoutArg ? Number(pingTimeoutArg.split("=")[1]) : 200;

function emit(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});

const server = engine.attach(httpServer, {
  pingInterval: 300,
  pingTimeout,
  maxHttpBufferSize: maxPayload,
});

server.on("connection", (socket) => {
  emit({
    event: "connection",
    sid: socket.id,
    transport: socket.transport.name,
    query: socket.request._query,
  });
  socket.on("upgrade", (transport) => {
    emit({ event: "upgrade", sid: socket.id, transport: transport.name });
  });
  socket.on("message", (data) => {
    if (report) {
      // engine.io-parser decodes an empty text message ("4") as `undefined`
      const binary = typeof data !== "string" && data !== undefined;
      emit({
        event: "message",
        sid: socket.id,
        type: binary ? "binary" : "text",
        data: binary ? Buffer.from(data).toString("base64") : (data ?? ""),
      });
    }
    if (data === "!close") {
      socket.close();
      return;
    }
    socket.send(data); // echo
  });
  socket.on("close", (reason, error) => {
    // a "transport error" comes with the Error (message, and engine.io's own description)
    const inner = error && typeof error.description === "string" ? error.description : null;
    emit({
      event: "close",
      sid: socket.id,
      reason,
      description: error ? String(error.message || error) : null,
      detail: inner ? inner.split("\n")[0] : null,
    });
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  emit({ event: "listening", port: httpServer.address().port, pingTimeout });
});

setTimeout(() => process.exit(0), lifetime * 1000).unref();
