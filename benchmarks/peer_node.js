// The bench app on the official Node socket.io server (npm `socket.io`, pinned in package.json).
//
//   node benchmarks/peer_node.js --port 3000 [--ping-interval 25 --ping-timeout 20]   (cwd = the repo root)
//
// A reference column: the same app as sio_teach/examples/bench_server.py. A middleware joins
// room "r", so every socket is in it before the CONNECT reply leaves. Exits on SIGTERM / SIGINT.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const portAt = args.indexOf("--port");
const port = portAt >= 0 ? Number(args[portAt + 1]) : 3000;
// --ping-interval / --ping-timeout in seconds, as the Python servers take them
function seconds(flag, fallback) {
  const at = args.indexOf(flag);
  return at >= 0 ? Number(args[at + 1]) : fallback;
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  cors: { origin: "*" },
  pingInterval: Math.round(seconds("--ping-interval", 25) * 1000),
  pingTimeout: Math.round(seconds("--ping-timeout", 20) * 1000),
});

io.use((socket, next) => {
  socket.join("r");
  next();
});

io.on("connection", (socket) => {
  socket.on("echo", (...a) => {
    const ack = typeof a[a.length - 1] === "function" ? a.pop() : null;
    if (ack) ack(...a);
  });
  socket.on("bcast", (...a) => {
    if (typeof a[a.length - 1] === "function") a.pop();
    io.to("r").emit("msg", ...a);
  });
  socket.on("ping", (...a) => {
    if (typeof a[a.length - 1] === "function") a.pop();
    socket.emit("pong", ...a);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`node socket.io on http://127.0.0.1:${port}/socket.io/\n`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
