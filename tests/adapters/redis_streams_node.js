// A Node.js Socket.IO node on the official Redis Streams adapter, for the cross-language tests.
//
//   node tests/adapters/redis_streams_node.js redis://127.0.0.1:PORT
//
// The same events as redis_node.js (chat, to-room, join, leave, fetch, sockets-join,
// server-side, ask; server-side "hello"), with connection state recovery on (2 minutes).
// Prints one JSON line {"port": N}; exits on SIGTERM or when stdin closes.
const { createServer } = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { createClient } = require("redis");

async function main() {
  const url = process.argv[2];
  const redisClient = createClient({ url });
  redisClient.on("error", (err) => console.error("redis", err.message));
  await redisClient.connect();

  const httpServer = createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(redisClient, { blockTimeInMs: 1000 }),
    connectionStateRecovery: { maxDisconnectionDuration: 120000 },
  });
  io.on("hello", (...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (callback) callback("node:" + JSON.stringify(args));
  });
  io.on("connection", (socket) => {
    socket.on("chat", (...args) => io.emit("chat", ...args));
    socket.on("to-room", (room, ...args) => io.to(room).emit("room", ...args));
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
      catch (err) { ack({ error: err.message }); }
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
    redisClient.destroy();
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
