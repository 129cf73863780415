// The demo page: a chat over the official socket.io client (the global `io`, a classic script
// loaded before this module), the packets of this page's connection traced live, and the
// server's own trace streamed over /inspector. The other views are modules of their own.
import * as diagram from "./diagram.js";
import * as faults from "./faults.js";
import * as heartbeat from "./heartbeat.js";
import * as packet from "./packet.js";
import * as sessions from "./sessions.js";
import { note, tapManager } from "./wire.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const pollingOnly = params.has("polling");
const name = params.get("name") || `guest-${Math.floor(Math.random() * 1000)}`;

// -- the trace: one line per packet, as sio_teach.trace.Record.line() renders it (keep in step) --

const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
const SIO_TYPES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"];
const INSPECTOR = /^\d(\d+-)?\/inspector,/; // a Socket.IO packet of /inspector: not traced
const aliases = new Map(); // sid -> "S1", "S2"… in order of first appearance (as trace.py)

function alias(sid) {
  if (!aliases.has(sid)) aliases.set(sid, `S${aliases.size + 1}`);
  return aliases.get(sid);
}

function show(panel, text, className) {
  const line = document.createElement("div");
  line.textContent = text;
  if (className) line.className = className;
  panel.append(line);
  while (panel.childElementCount > 500) panel.firstElementChild.remove();
  panel.scrollTop = panel.scrollHeight;
}

// The engine's packets are objects ({type: "message", data: "2[…]"}); write them back as on the
// wire: the type's digit, then the data (a Socket.IO packet inside a `message`).
function traceLine(sid, direction, transport, packet) {
  const digit = EIO_TYPES.indexOf(packet.type);
  let layer = "eio", kind = packet.type, wire;
  if (packet.data === undefined) {
    wire = String(digit);
  } else if (typeof packet.data !== "string") {
    kind = "binary";
    wire = `<binary ${packet.data.byteLength ?? packet.data.size} B>`;
  } else {
    wire = digit + packet.data;
    if (sid !== "?") wire = wire.replaceAll(sid, alias(sid)); // as trace.py: the sid shows as S1
    if (packet.type === "message" && /^[0-6]/.test(packet.data)) {
      layer = "sio";
      kind = SIO_TYPES[Number(packet.data[0])];
    }
  }
  const text = `${alias(sid)} ${direction} ${transport.padEnd(4)} ${layer} ${kind.padEnd(13)} ${wire.slice(0, 200)}`;
  return text.length > 100 ? text.slice(0, 99) + "…" : text;
}

// Follow one Engine.IO connection (the Manager opens a new one on each reconnection).
// Its events: `packetCreate` (about to be sent), `packet` (received), and around the upgrade
// `upgrading` and `upgrade`. The probe itself (2probe, 3probe) travels on the new WebSocket before
// it becomes the engine's transport, outside `packet`/`packetCreate`: the engine tells us once the
// 3probe has arrived (`upgrading`), and we write both lines then.
function traceEngine(engine) {
  let sid = engine.id || "?";
  const over = (direction, transportName) =>
    ({ polling: direction === ">" ? "POST" : "GET", websocket: "ws" })[transportName] ?? transportName;
  const record = (direction, transportName, packet) => {
    if (packet.type === "open") sid = JSON.parse(packet.data).sid;
    if (packet.type === "message" && INSPECTOR.test(packet.data)) return;
    show($("#trace"), traceLine(sid, direction, over(direction, transportName), packet));
  };
  engine.on("packetCreate", (packet) => record(">", engine.transport.name, packet));
  engine.on("packet", (packet) => record("<", engine.transport.name, packet));
  engine.on("upgrading", (transport) => {
    record(">", transport.name, { type: "ping", data: "probe" });
    record("<", transport.name, { type: "pong", data: "probe" });
  });
  engine.on("upgrade", (transport) => {
    record(">", transport.name, { type: "upgrade" });
    $("#transport").textContent = transport.name;
  });
  engine.on("upgradeError", (error) =>
    show($("#trace"), `-- ${error.transport} probe failed (${error.message}): staying on ${engine.transport.name}`, "note"));
}

// -- the connection: one Manager (one Engine.IO connection), two namespaces over it ------------

const transports = pollingOnly ? ["polling"] : ["polling", "websocket"];
const manager = new io.Manager(location.origin, { transports, autoConnect: false });
const open = manager.open.bind(manager);
manager.open = (callback) => {   // every (re)connection creates its engine here: follow it
  const engineBefore = manager.engine;
  const result = open(callback);
  if (manager.engine !== engineBefore) traceEngine(manager.engine);
  return result;
};
tapManager(manager); // the views below draw what it sees
const socket = manager.socket("/", { auth: { name } }); // the chat
const inspector = manager.socket("/inspector");         // the server's trace and sessions
window.sioTeach = { manager, socket, inspector };        // for the console (and the tests)

packet.init($("#packet"));
diagram.init($("#sequence"), { select: packet.show });
heartbeat.init($("#heartbeat-view"));
sessions.init($("#sessions"), inspector);
faults.init($("#faults"), { myAlias: () => $("#alias").textContent });
socket.connect();
// The inspector joins once the upgrade is settled, so that the handshake, the probe, the noop and
// the upgrade show alone in the diagram (its own packets would race with them on the held GET).
new Promise((settled) => {
  if (pollingOnly) settled();
  manager.engine.once("upgrade", settled).once("upgradeError", settled);
  setTimeout(settled, 3000);
}).then(() => inspector.connect());

// -- at a glance: who, state, transport ---------------------------------------------------------

$("#name").textContent = name;
$("#polling").checked = pollingOnly;
$("#polling").addEventListener("change", (event) => {
  event.target.checked ? params.set("polling", "1") : params.delete("polling");
  location.search = params.toString();
});
const setState = (state) => { $("#state").textContent = state; };
socket.on("connect", () => {
  setState("connected");
  $("#transport").textContent = manager.engine.transport.name;
});
socket.on("disconnect", (reason) => setState(`disconnected (${reason})`));
socket.on("connect_error", (error) => setState(`connect error (${error.message})`));
manager.on("reconnect_attempt", (attempt) => setState(`reconnecting (attempt ${attempt})`));

// -- the chat -----------------------------------------------------------------------------------

function addMessage(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  $("#messages").append(item);
  return item;
}

const shown = (data) => (typeof data === "string" ? data
  : `<${data.byteLength} bytes: ${Array.from(new Uint8Array(data), (b) => b.toString(16).padStart(2, "0")).join(" ")}>`);
socket.on("chat", (who, text) => addMessage(`${who}: ${shown(text)}`, who === "server" ? "server" : ""));

// Send the message as text, or as bytes (its UTF-8): a BINARY_EVENT and its attachment.
// Sent while disconnected, it waits in the socket's send buffer, which drains on connection.
let buffered = 0;
socket.on("connect", () => {
  if (buffered) note(`send buffer drained: ${buffered} event${buffered > 1 ? "s" : ""} sent as the namespace connected (above)`);
  buffered = 0;
});
function send(asBytes) {
  const text = $("#message").value.trim();
  if (!text) return;
  const data = asBytes ? new TextEncoder().encode(text) : text;
  const item = addMessage(`${name}: ${shown(asBytes ? data.buffer : data)}`, "mine");
  if (!socket.connected) {
    buffered += 1;
    note(`not connected: "chat" waits in the socket's send buffer (${socket.sendBuffer.length + 1})`);
  }
  socket.emit("chat", data, (reply) => { item.textContent += ` (${reply})`; }); // the server's ACK
  $("#message").value = "";
}
$("#form").addEventListener("submit", (event) => { event.preventDefault(); send(false); });
$("#bytes").addEventListener("click", () => send(true));

// -- the inspector: the server's trace ------------------------------------------------------------

inspector.on("hello", (serverAlias) => { $("#alias").textContent = serverAlias; });
inspector.on("trace", (lines) => lines.forEach((line) => show($("#inspector"), line)));
