// Inside a packet: the arrow clicked in the diagram, decoded layer by layer.
import { SIO_TYPES } from "./wire.js";

let panel;

function field(list, name, value, className = "") {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  if (className) dd.className = className;
  dd.textContent = value;
  list.append(dt, dd);
}

export function show(e) {
  const d = e.packet;
  const list = document.createElement("dl");
  const who = e.direction === ">" ? "sent by this page" : "received by this page";
  const over = { GET: "in the answer to a long-poll GET", POST: "in the body of a POST", ws: "in a WebSocket frame" }[e.channel];
  field(list, "when", `${e.t.toFixed(3)} s, ${who}, ${over}`);
  field(list, "Engine.IO type", d.eio);
  if (d.sio) {
    field(list, "Socket.IO type", `${SIO_TYPES.indexOf(d.sio.type)} ${d.sio.type}`);
    field(list, "namespace", d.sio.nsp);
    field(list, "ack id", d.sio.id === null ? "none (no answer expected)" : String(d.sio.id));
    field(list, "attachments", String(d.sio.attachments));
    if (d.sio.json !== undefined) field(list, "JSON", JSON.stringify(d.sio.json, null, 2), "json");
    (d.sio.parts || []).forEach((part, i) => field(list, `attachment ${i}`, part.hex, "hex"));
  }
  if (d.answers) {
    field(list, "answers", `the EVENT "${d.answers.event}" with the same id`);
    field(list, "round trip", `${d.answers.rtt.toFixed(1)} ms`);
  }
  if (d.hex !== undefined) {
    field(list, "binary (hex)", d.hex, "hex");
    if (d.partOf) field(list, "attachment of", `${d.partOf.kind} ${d.partOf.wire.slice(0, 60)}`);
  }
  field(list, "on the wire", d.wire, "wire");
  field(list, "size", `${d.size} bytes`);
  panel.replaceChildren(list);
}

export function init(element) {
  panel = element;
}
