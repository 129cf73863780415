// Golden vectors of the msgpack parser: what the official encoder (npm
// `socket.io-msgpack-parser`, pinned in package.json) produces for a few packet objects.
//
//   node tests/js/msgpack_vectors.js
//
// Run with cwd = the repository root. Prints one JSON object {name: hex} on stdout; the test
// (tests/sio/test_msgpack_parser.py) holds the same hex and checks this output against it.
// The first objects have their keys in the order sio_teach writes them ({type, data, id, nsp});
// the last ones are built as the reference peers build them (other key orders, `undefined`,
// the client's `options`): sio_teach only has to read those.
"use strict";

const { Encoder } = require("socket.io-msgpack-parser");

const packets = {
  event: { type: 2, data: ["chat", "hi"], nsp: "/" },
  "event-with-ack-on-custom": { type: 2, data: ["message-with-ack", 1, "2", { 3: [true] }], id: 12, nsp: "/custom" },
  binary: { type: 2, data: ["message", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5])] }], nsp: "/" },
  ack: { type: 3, data: ["ok"], id: 1, nsp: "/" },
  "connect-with-auth": { type: 0, data: { token: "123" }, nsp: "/" },
  "connect-custom": { type: 0, nsp: "/custom" },
  disconnect: { type: 1, nsp: "/custom" },
  "connect-error": { type: 4, data: { message: "Invalid namespace" }, nsp: "/random" },
  numbers: { type: 2, data: ["n", 1.5, -3, 300, 70000, "\u00e9\u2603", null, false], nsp: "/" },
  // as the reference peers build them
  "server-ack": { id: 1, type: 3, data: ["ok"], nsp: "/" },
  "server-connect": { type: 0, data: { sid: "abc", pid: undefined }, nsp: "/" },
  "client-event": { type: 2, data: ["chat", "hi"], options: { compress: true }, id: 0, nsp: "/" },
  "typed-array": { type: 2, data: ["file", new Uint8Array([1, 2, 3]), undefined], nsp: "/" },
};

const encoder = new Encoder();
const out = {};
for (const [name, packet] of Object.entries(packets)) {
  const [buffer] = encoder.encode(packet);
  out[name] = Buffer.from(buffer).toString("hex");
}
process.stdout.write(JSON.stringify(out) + "\n");
