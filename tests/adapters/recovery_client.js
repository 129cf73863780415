// The official socket.io-client with connection state recovery, for the cross-node tests.
// argv: url. Prints JSON lines: {"event":"connect","id","recovered"} on every connection
// ("ready" after joining room "r1" on the first), {"event":"news","args"} on every "news".
// It reconnects by itself (100-200 ms) when its server goes away; exits when stdin closes.
const { io } = require("socket.io-client");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const socket = io(process.argv[2], {
  transports: ["websocket"],
  reconnectionDelay: 100,
  reconnectionDelayMax: 200,
});
let first = true;
socket.on("connect", async () => {
  out({ event: "connect", id: socket.id, recovered: socket.recovered });
  if (first) {
    first = false;
    await socket.timeout(5000).emitWithAck("join", "r1");
    out({ event: "ready" });
  }
});
socket.on("news", (...args) => out({ event: "news", args }));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
