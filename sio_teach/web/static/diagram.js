// The live sequence diagram (SVG): this page on the left, the server on the right, time flowing
// down, one row per event. Packets are arrows coloured by layer (Engine.IO, Socket.IO); an HTTP
// request is a bar on the page's lane from the request to its answer (a long-poll GET is held
// open); a WebSocket is a green channel between the lanes while it is open; a reconnection's
// wait is a dashed bar with its delay.
import { onWire } from "./wire.js";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 22, TOP = 10, PAGE_X = 150, SERVER_X = 600, WIDTH = 640, MAX_ROWS = 3000;
const BAR = { GET: PAGE_X - 10, POST: PAGE_X - 4, wait: PAGE_X - 40 };

let svg, box, lanes, rows = 0, y = TOP, lastT = 0, paused = false, onSelect = () => {};
const held = [];            // what arrived while paused
const open = new Map();     // request id / "ws" / "wait" -> its bar, while open
const items = [];           // every packet drawn, by index (data-index)

function el(name, attrs, parent = svg) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  parent.append(node);
  return node;
}

function text(x, yy, content, attrs = {}, parent = svg) {
  const node = el("text", { x, y: yy, ...attrs }, parent);
  node.textContent = content;
  return node;
}

// One row: its y, and the time on the left (a gap of more than a second is drawn as one).
function row(t) {
  if (rows === MAX_ROWS) { // a page left open for days: start a fresh diagram
    clear();
    text(PAGE_X + 6, y + ROW / 2 + 4, `(cleared after ${MAX_ROWS} rows)`, { class: "note" });
    y += ROW;
  }
  if (rows && t - lastT > 1) { // a quiet second or more: one empty row that says how long
    text(8, y + ROW / 2 + 4, `⋮ ${(t - lastT).toFixed(1)} s`, { class: "gap" });
    y += ROW;
  }
  lastT = t;
  rows += 1;
  const at = y + ROW / 2;
  for (const key of open.keys()) stretch(key, at); // what is open (a held GET…) grows with time
  text(8, at + 4, `${t.toFixed(3)} s`, { class: "time" });
  y += ROW;
  svg.setAttribute("height", y + TOP);
  lanes.forEach((lane) => lane.setAttribute("y2", y + TOP));
  return at;
}

function arrow(at, direction, className, label, attrs = {}) {
  const [x1, x2] = direction === ">" ? [PAGE_X, SERVER_X] : [SERVER_X, PAGE_X];
  const g = el("g", { class: `arrow ${className}`, ...attrs });
  el("line", { x1, y1: at, x2: x2 + (direction === ">" ? -6 : 6), y2: at }, g);
  const tip = direction === ">" ? -7 : 7;
  el("path", { d: `M${x2},${at} l${tip},-4 l0,8 z` }, g);
  text((PAGE_X + SERVER_X) / 2, at - 4, label, { "text-anchor": "middle" }, g);
  return g;
}

function bar(key, x, at, className) {
  const rect = el("rect", { x: x - 2, y: at - 6, width: 4, height: 12, class: `bar ${className}` });
  open.set(key, { rect, top: at - 6 });
  return rect;
}

function stretch(key, at, data = {}) {
  const b = open.get(key);
  if (!b) return;
  b.rect.setAttribute("height", Math.max(12, at + 6 - b.top));
  for (const [k, v] of Object.entries(data)) b.rect.dataset[k] = v;
}

const trim = (s, n = 40) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

function draw(e) {
  if (e.kind === "packet") {
    const d = e.packet;
    const at = row(e.t);
    const label = `${e.direction} ${e.channel} ${d.layer} ${d.kind}`;
    const g = arrow(at, e.direction, `${d.layer} ${e.channel}`, `${label}  ${trim(d.wire)}`, {
      "data-label": label, "data-index": items.length, "data-row": rows,
    });
    g.addEventListener("click", () => select(g, e));
    items.push(e);
    if (e.request) stretch(e.request, at, { answer: d.kind });
  } else if (e.kind === "request" && e.phase === "start") {
    const at = row(e.t);
    const label = e.method === "GET" ? (e.handshake ? "GET (handshake)" : "GET (long-poll)") : "POST";
    arrow(at, ">", `request ${e.method}`, label, { "data-label": e.method, "data-row": rows });
    bar(e.id, BAR[e.method], at, e.method).dataset.row = rows;
    open.get(e.id).rect.dataset.method = e.method;
  } else if (e.kind === "request" && e.phase === "end" && e.method === "POST") {
    const at = row(e.t);
    arrow(at, "<", "request answer", "200 ok (POST answered)", { "data-label": "POST answered", "data-row": rows });
    open.delete(e.id);
  } else if (e.kind === "request") { // a GET ends with its last packet, already drawn …
    if (!e.drawn) { // … unless it carried only packets of /inspector
      const at = row(e.t);
      arrow(at, "<", "request answer", `GET answered (${e.hidden} /inspector packet${e.hidden === 1 ? "" : "s"}, not drawn)`, { "data-label": "GET answered", "data-row": rows });
    }
    open.delete(e.id);
  } else if (e.kind === "ws") {
    const at = row(e.t);
    if (e.phase === "open") {
      const r = el("rect", { x: PAGE_X, y: at - 4, width: SERVER_X - PAGE_X, height: 8, class: "ws-channel" });
      svg.prepend(r); // under the arrows
      open.set("ws", { rect: r, top: at - 4 });
      text(PAGE_X + 6, at + 4, e.probe ? "WebSocket opened (probing)" : "WebSocket opened", { class: "note", "data-label": "ws open" });
    } else {
      open.delete("ws");
      text(PAGE_X + 6, at + 4, "WebSocket closed", { class: "note alert", "data-label": "ws close" });
    }
  } else if (e.kind === "wait" && e.phase === "start") {
    const at = row(e.t);
    bar("wait", BAR.wait, at, "wait");
    text(PAGE_X + 6, at + 4, `reconnection: wait ${Math.round(e.ms)} ms (backoff, attempt ${e.attempt})`, { class: "note alert", "data-label": "wait", "data-ms": Math.round(e.ms) });
  } else if (e.kind === "wait") {
    const at = row(e.t);
    open.delete("wait");
    text(PAGE_X + 6, at + 4, `attempt ${e.attempt}: reconnecting`, { class: "note", "data-label": "attempt" });
  } else if (e.kind === "note") {
    const at = row(e.t);
    text(PAGE_X + 6, at + 4, e.text, { class: e.alert ? "note alert" : "note", "data-label": "note" });
  } else {
    return;
  }
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 3 * ROW) box.scrollTop = box.scrollHeight;
}

function select(g, e) {
  svg.querySelectorAll(".selected").forEach((node) => node.classList.remove("selected"));
  g.classList.add("selected");
  onSelect(e);
}

function clear() {
  svg.replaceChildren();
  items.length = 0;
  held.length = 0;
  open.clear();
  rows = 0;
  y = TOP;
  svg.setAttribute("height", 2 * TOP);
  lanes = [PAGE_X, SERVER_X].map((x) => el("line", { x1: x, y1: 0, x2: x, y2: 2 * TOP, class: "lane" }));
}

export function init(container, { select: selected }) {
  onSelect = selected;
  box = container.querySelector(".diagram-box");
  svg = el("svg", { id: "diagram", width: WIDTH, height: 2 * TOP }, box);
  clear();
  const pause = container.querySelector("#diagram-pause");
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? `Resume` : "Pause";
    if (!paused) held.splice(0).forEach(draw);
  });
  container.querySelector("#diagram-clear").addEventListener("click", clear);
  onWire((e) => (paused ? held.push(e) : draw(e)));
}
