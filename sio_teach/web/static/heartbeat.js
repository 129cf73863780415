// Heartbeat at a glance: the server pings, this page pongs. After each ping the next one is due
// within pingInterval (green band); the server then waits pingTimeout more (amber band) before it
// gives the session up. Below: the round-trip time of each of this page's acknowledged events.
import { now, onWire } from "./wire.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 460, H = 70, PAD = 16, PAST = 25, FUTURE = 10; // seconds shown before and after now
let beat, chart, info, interval = null, timeout = null, pingCount = 0, pongCount = 0;
const pings = [], pongs = [], rtts = [];

function el(parent, name, attrs, content) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (content !== undefined) node.textContent = content;
  parent.append(node);
  return node;
}

function drawBeat() {
  const t1 = now(), x = (t) => PAD + ((t - t1 + PAST) / (PAST + FUTURE)) * (W - 2 * PAD);
  const clip = (v) => Math.min(W - PAD, Math.max(PAD, v));
  beat.replaceChildren();
  for (const t of pings) {
    if (interval === null) break;
    const due = t + interval, end = due + timeout;
    const from = clip(x(t)), middle = clip(x(due)), to = clip(x(end));
    el(beat, "rect", { x: from, y: 10, width: middle - from, height: 30, class: "band interval" });
    el(beat, "rect", { x: middle, y: 10, width: to - middle, height: 30, class: "band timeout" });
  }
  pings.filter((t) => x(t) >= PAD).forEach((t) => el(beat, "line", { x1: x(t), y1: 6, x2: x(t), y2: 26, class: "ping" }));
  pongs.filter((t) => x(t) >= PAD).forEach((t) => el(beat, "line", { x1: x(t), y1: 24, x2: x(t), y2: 44, class: "pong" }));
  for (let s = -PAST; s <= FUTURE; s += 5) el(beat, "text", { x: x(t1 + s), y: 60, "text-anchor": "middle" }, s ? `${s > 0 ? "+" : ""}${s} s` : "now");
  el(beat, "line", { x1: x(t1), y1: 2, x2: x(t1), y2: 48, class: "now" });
  const last = pings.at(-1);
  info.textContent = interval === null ? "waiting for the handshake"
    : `pingInterval ${interval * 1000} ms, pingTimeout ${timeout * 1000} ms; pings ${pingCount}, pongs ${pongCount}` +
      (last === undefined ? "" : `; last ping ${(t1 - last).toFixed(1)} s ago`);
}

function drawChart() {
  chart.replaceChildren();
  const shown = rtts.slice(-30);
  const top = Math.max(10, ...shown.map((r) => r.ms));
  const x = (i) => 30 + (i / 29) * (W - 40), y = (ms) => H - 12 - (ms / top) * (H - 22);
  el(chart, "text", { x: 0, y: 10 }, `${Math.round(top)} ms`);
  el(chart, "text", { x: 0, y: H - 10 }, "0");
  el(chart, "polyline", { points: shown.map((r, i) => `${x(i)},${y(r.ms)}`).join(" "), class: "rtt" });
  shown.forEach((r, i) => el(chart, "circle", { cx: x(i), cy: y(r.ms), r: 3, class: "rtt" }, undefined)
    .append(Object.assign(document.createElementNS(SVG, "title"), { textContent: `${r.event}: ${r.ms.toFixed(1)} ms` })));
  chart.dataset.count = rtts.length;
}

export function init(container) {
  beat = container.querySelector("#heartbeat");
  chart = container.querySelector("#rtt");
  info = container.querySelector("#heartbeat-info");
  onWire((e) => {
    if (e.kind === "rtt") { rtts.push(e); if (rtts.length > 100) rtts.shift(); drawChart(); }
    if (e.kind !== "packet" || e.packet.layer !== "eio") return;
    const d = e.packet;
    if (d.kind === "open" && e.direction === "<") {
      const handshake = JSON.parse(d.wire.slice(1));
      interval = handshake.pingInterval / 1000;
      timeout = handshake.pingTimeout / 1000;
    }
    if (d.kind === "ping" && e.direction === "<" && d.wire === "2") {
      pings.push(e.t);
      pingCount += 1;
    }
    if (d.kind === "pong" && e.direction === ">" && d.wire === "3") {
      pongs.push(e.t);
      pongCount += 1;
    }
    for (const list of [pings, pongs]) if (list.length > 100) list.splice(0, 50); // long gone
  });
  setInterval(drawBeat, 250);
  drawChart();
}
