// The official socket.io-client against a server with connection state recovery.
// argv: url transports(comma-separated). Prints JSON lines; reads nothing.
// 1. connect, join room "r1" (ack), report "ready";
// 2. on every "news" event report it (with the offset the server appended);
// 3. after "news" number 1, close the Engine.IO connection (as a network cut would);
// 4. on the reconnection report "reconnected" with socket.recovered and the id.
const { io } = require("socket.io-client");
const [url, transports] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const socket = io(url, {
  transports: transports.split(","),
  reconnectionDelay: 100,
  reconnectionDelayMax: 200,
});
let firstId = null;
socket.on("connect", async () => {
  if (firstId === null) {
    firstId = socket.id;
    const room = await socket.timeout(5000).emitWithAck("join", "r1");
    out({ event: "ready", id: socket.id, room, recovered: socket.recovered });
  } else {
    out({ event: "reconnected", id: socket.id, sameId: socket.id === firstId, recovered: socket.recovered });
  }
});
socket.on("news", (...args) => {
  out({ event: "news", args });
  if (args[0] === 1) {
    socket.io.engine.close(); // the transport goes away; the manager reconnects by itself
    out({ event: "cut" });
  }
});
socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
setTimeout(() => { out({ event: "error", message: "timeout" }); process.exit(1); }, 20000);
