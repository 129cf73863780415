// The official emitter (@socket.io/redis-emitter) driven from stdin, for tests/adapters/test_emitter.py.
//
//   node tests/js/redis_emitter.js redis://127.0.0.1:PORT
//
// Prints {"ready": true} once connected, then reads one JSON operation per line and prints
// {"done": N} once Redis has taken it (a PING after the publish: one connection, in order):
//   {"op": "emit", "nsp": "/", "to": ["r"], "except": ["x"], "volatile": true, "args": ["ev", 1]}
//   {"op": "socketsJoin" | "socketsLeave", "to": [...], "rooms": ["a"]}
//   {"op": "disconnectSockets", "close": true}
//   {"op": "serverSideEmit", "args": ["hello", 1]}
// An argument {"$bin": "hex"} is sent as a Buffer. It exits when stdin closes.
const readline = require("readline");
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "hex");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
  }
  return value;
}

async function main() {
  const client = createClient({ url: process.argv[2] });
  client.on("error", (err) => console.error("redis", err.message));
  await client.connect();
  const emitter = new Emitter(client);
  console.log(JSON.stringify({ ready: true }));
  let done = 0;
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const op = JSON.parse(line);
    let target = op.nsp ? emitter.of(op.nsp) : emitter;
    if (op.to) target = target.to(op.to);
    if (op.except) target = target.except(op.except);
    if (op.volatile) target = target.volatile;
    const args = decode(op.args || []);
    if (op.op === "emit") target.emit(...args);
    else if (op.op === "socketsJoin") target.socketsJoin(op.rooms);
    else if (op.op === "socketsLeave") target.socketsLeave(op.rooms);
    else if (op.op === "disconnectSockets") target.disconnectSockets(op.close);
    else if (op.op === "serverSideEmit") target.serverSideEmit(...args);
    await client.ping();
    console.log(JSON.stringify({ done: ++done }));
  }
  client.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
