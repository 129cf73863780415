// A Node.js Socket.IO node on the official Redis adapter, for the cross-language cluster tests.
//
//   node tests/adapters/redis_node.js redis://127.0.0.1:PORT [pubsub | streams | sharded:MODE] [admin]
//
// With "streams": on @socket.io/redis-streams-adapter instead, connection state recovery on;
// with "sharded:MODE": on createShardedAdapter with that subscriptionMode.
//
// With `sharded:static`, `sharded:dynamic` or `sharded:dynamic-private` the node uses
// createShardedAdapter (sharded Pub/Sub, Redis 7+) with that subscriptionMode.
// With "admin", the official @socket.io/admin-ui instruments it (no auth, serverId "node-js").
// Listens on a free port of 127.0.0.1 and prints one JSON line: {"port": N}. Its clients drive it
// with the same events as the Python nodes of tests/adapters/conftest.py (make_node):
//   chat(...args)              → io.emit("chat", ...args)            (every node, every client)
//   to-room(room, ...args)     → io.to(room).emit("room", ...args)
//   except-room(room, ...args) → io.except(room).emit("room", ...args)
//   join(room) → ack(room);  leave(room) → ack(room)
//   fetch() → ack([{id, rooms}] of io.fetchSockets())
//   sockets-join(room, target) → io.in(room).socketsJoin(target), ack()
//   server-side(...args) → ack(await io.serverSideEmitWithAck("hello", ...args))
//   ask(...args) → ack(await io.timeout(3000).emitWithAck("question", ...args))
// Server-side: on "hello" (...args, callback) → callback("node:" + JSON.stringify(args)).
// It exits on SIGTERM or when stdin closes.
const { createServer } = require("http");
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

async function main() {
  const url = process.argv[2];
  const kind = process.argv[3] || "pubsub";
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  // node-redis reconnects (and resubscribes) by itself; an "error" listener keeps it alive
  pubClient.on("error", (err) => console.error("pub", err.message));
  subClient.on("error", (err) => console.error("sub", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = createServer();
  const io = new Server(httpServer, kind === "streams" ? {
    adapter: require("@socket.io/redis-streams-adapter").createAdapter(pubClient, { blockTimeInMs: 1000 }),
    connectionStateRecovery: { maxDisconnectionDuration: 120000 },
  } : {
    adapter: kind.startsWith("sharded:")
      ? createShardedAdapter(pubClient, subClient, { subscriptionMode: kind.slice(8) })
      : createAdapter(pubClient, subClient, { requestsTimeout: 3000 }),
  });
  if (process.argv[4] === "admin") {
    require("@socket.io/admin-ui").instrument(io, { auth: false, serverId: "node-js" });
  }
  io.on("hello", (...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (callback) callback("node:" + JSON.stringify(args));
  });
  io.on("connection", (socket) => {
    socket.on("chat", (...args) => io.emit("chat", ...args));
    socket.on("to-room", (room, ...args) => io.to(room).emit("room", ...args));
    socket.on("except-room", (room, ...args) => io.except(room).emit("room", ...args));
    socket.on("join", (room, ack) => { socket.join(room); ack(room); });
    socket.on("leave", (room, ack) => { socket.leave(room); ack(room); });
    socket.on("fetch", async (ack) => {
      const sockets = await io.fetchSockets();
      ack(sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })));
    });
    socket.on("sockets-join", (room, target, ack) => { io.in(room).socketsJoin(target); ack(); });
    socket.on("server-side", async (...args) => {
      const ack = args.pop();
      try { ack(await io.serverSideEmitWithAck("hello", ...args)); }
      catch (err) { ack({ error: err.message, responses: err.responses }); }
    });
    socket.on("ask", async (...args) => {
      const ack = args.pop();
      try { ack(await io.timeout(3000).emitWithAck("question", ...args)); }
      catch (err) { ack({ error: err.message }); }
    });
  });

  httpServer.listen(0, "127.0.0.1", () => {
    console.log(JSON.stringify({ port: httpServer.address().port }));
  });

  const stop = () => {
    io.close();
    pubClient.destroy();
    subClient.destroy();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
