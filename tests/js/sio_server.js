// The official Socket.IO server (npm `socket.io`), as a peer for our Python Client.
//
//   node tests/js/sio_server.js PORT [--lifetime=SECONDS] [--parser=msgpack]
//
// Run with cwd = the repository root so that `require("socket.io")` finds ./node_modules.
// Listens on 127.0.0.1:PORT (0: any free port) with pingInterval 300 ms, pingTimeout 200 ms.
// Namespaces "/" and "/admin" have the same middleware and handlers:
//
//   middleware        refuses a CONNECT whose auth has `refuse: true`:
//                     next(err) with err.message "nope", err.data {reason, code}
//   on connection     emits "auth" with the CONNECT payload (handshake.auth)
//   "echo-ack" ...a   acknowledges with the same args (binary preserved)
//   "echo" ...a       emits "echo-back" with the same args (binary preserved)
//   "ask" q           socket.timeout(2000).emitWithAck("question", q), then reports the value
//                     and emits "answer-received" with it
//   "disconnect-me"   socket.disconnect() (a server-side namespace disconnect)
//   "flaky" a ...     ignores the first arrival of each distinct first argument (no ack), then
//                     acknowledges every later arrival with the same args (for clients with retries)
//
// stdout is one JSON object per line (the test reads them). Binary values are shown as
// {"$binary": "<base64>"} wherever they occur.
//   {"event":"listening","port":P}
//   {"event":"eio-connection","eio":EIO_SID,"transport":T}  (an Engine.IO connection opened)
//   {"event":"connection","nsp":N,"id":ID,"eio":EIO_SID,"transport":T,"auth":{...}}
//   {"event":"upgrade","eio":EIO_SID,"transport":"websocket"}
//   {"event":"conn-close","eio":EIO_SID,"reason":R}        (the Engine.IO connection closed)
//   {"event":"event","nsp":N,"id":ID,"name":E,"args":[...],"ack":bool}   (every incoming event)
//   {"event":"answer","nsp":N,"value":V}  |  {"event":"answer-error","nsp":N,"error":MSG}
//   {"event":"disconnect","nsp":N,"id":ID,"reason":R}
//
// --parser=msgpack makes it speak npm `socket.io-msgpack-parser` instead of the default parser.
// --lifetime (default 120 s) makes the server exit by itself, so that a test run that dies
// cannot leave it behind.

"use strict";

const http = require("http");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const port = Number(args[0] || 0);
const lifetimeArg = args.find((a) => a.startsWith("--lifetime="));
const lifetime = lifetimeArg ? Number(lifetimeArg.split("=")[1]) : 120;
const msgpack = args.includes("--parser=msgpack");

function report(record) {
  process.stdout.write(JSON.stringify(record) + "\n");
}

// Buffers (and typed arrays) as {"$binary": base64}, recursively; functions (acks) left out.
function show(value) {
  if (Buffer.isBuffer(value)) {
    return { $binary: value.toString("base64") };
  }
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (value instanceof ArrayBuffer) {
    return { $binary: Buffer.from(value).toString("base64") };
  }
  if (Array.isArray(value)) {
    return value.filter((v) => typeof v !== "function").map(show);
  }
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = show(v);
    return out;
  }
  return value;
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
  ...(msgpack ? { parser: require("socket.io-msgpack-parser") } : {}),
});

// Engine.IO level: every connection, its upgrade and its end (even one that never gets a
// Socket.IO namespace, e.g. when the middleware refuses the CONNECT).
io.engine.on("connection", (conn) => {
  report({ event: "eio-connection", eio: conn.id, transport: conn.transport.name });
  conn.on("upgrade", (transport) => {
    report({ event: "upgrade", eio: conn.id, transport: transport.name });
  });
  conn.on("close", (reason) => {
    report({ event: "conn-close", eio: conn.id, reason });
  });
});

function setUp(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.refuse) {
      const err = new Error("nope");
      err.data = { reason: "refused by test", code: 4242 };
      return next(err);
    }
    next();
  });

  nsp.on("connection", (socket) => {
    const conn = socket.conn;
    report({
      event: "connection",
      nsp: nsp.name,
      id: socket.id,
      eio: conn.id,
      transport: conn.transport.name,
      auth: show(socket.handshake.auth),
    });
    socket.emit("auth", socket.handshake.auth);

    socket.onAny((name, ...rest) => {
      const ack = rest.length > 0 && typeof rest[rest.length - 1] === "function";
      report({ event: "event", nsp: nsp.name, id: socket.id, name, args: show(rest), ack });
    });

    socket.on("echo-ack", (...rest) => {
      const cb = rest.pop();
      if (typeof cb === "function") cb(...rest);
    });

    socket.on("echo", (...rest) => {
      socket.emit("echo-back", ...rest);
    });

    socket.on("ask", async (question) => {
      try {
        const value = await socket.timeout(2000).emitWithAck("question", question);
        report({ event: "answer", nsp: nsp.name, value: show(value) });
        socket.emit("answer-received", value);
      } catch (err) {
        report({ event: "answer-error", nsp: nsp.name, error: String(err && err.message) });
      }
    });

    socket.on("flaky", (...rest) => {
      const cb = rest.pop();
      const key = JSON.stringify(rest[0]);
      if (!seenFlaky.has(key)) {
        seenFlaky.add(key);
        return; // the first arrival is "lost": no ack
      }
      if (typeof cb === "function") cb(...rest);
    });

    socket.on("disconnect-me", () => {
      socket.disconnect();
    });

    socket.on("disconnect", (reason) => {
      report({ event: "disconnect", nsp: nsp.name, id: socket.id, reason });
    });
  });
}

const seenFlaky = new Set();
setUp(io.of("/"));
setUp(io.of("/admin"));

httpServer.listen(port, "127.0.0.1", () => {
  report({ event: "listening", port: httpServer.address().port });
});

setTimeout(() => process.exit(0), lifetime * 1000).unref();
