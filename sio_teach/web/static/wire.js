// What crossed the wire, as this page's client saw it: a tap on the official client's engine,
// and the decoding of one packet (both layers). The views subscribe with `onWire(listener)`.
//
// The tap listens where engine.io-client (v6) speaks: each transport's `packet` (received),
// `poll`/`pollComplete` (a long-poll GET is sent / answered), `drain` (a POST is answered),
// `open`/`close` (a WebSocket); and it wraps `transport.send(packets)`, the one door every
// outgoing packet takes (the engine's flushes, the probe `2probe`, the upgrade `5`).

export const EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
export const SIO_TYPES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"];

const start = performance.now();
export const now = () => (performance.now() - start) / 1000; // seconds since the page loaded

const listeners = [];
export const onWire = (listener) => listeners.push(listener);
export const emit = (event) => listeners.forEach((listener) => listener({ t: now(), ...event }));
export const note = (text, extra = {}) => emit({ kind: "note", text, ...extra });

// -- decoding ----------------------------------------------------------------------------------

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const utf8 = new TextEncoder();

function asBytes(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null; // a Blob: its bytes cannot be read synchronously
}

// A Socket.IO packet, as text: <type>[<attachments>-][<nsp>,][<ack id>][JSON]
export function decodeSio(text) {
  const sio = { type: SIO_TYPES[Number(text[0])], nsp: "/", id: null, attachments: 0, json: undefined };
  let i = 1;
  if (sio.type === "BINARY_EVENT" || sio.type === "BINARY_ACK") {
    const dash = text.indexOf("-", i);
    sio.attachments = Number(text.slice(i, dash));
    i = dash + 1;
  }
  if (text[i] === "/") {
    const comma = text.indexOf(",", i);
    sio.nsp = comma < 0 ? text.slice(i) : text.slice(i, comma);
    i = comma < 0 ? text.length : comma + 1;
  }
  const digits = /^\d+/.exec(text.slice(i));
  if (digits) {
    sio.id = Number(digits[0]);
    i += digits[0].length;
  }
  if (i < text.length) {
    try { sio.json = JSON.parse(text.slice(i)); } catch { sio.json = text.slice(i); }
  }
  return sio;
}

// An engine.io-client packet ({type, data}) as it went over `channel` (GET, POST or ws).
export function decode(packet, channel) {
  const digit = EIO_TYPES.indexOf(packet.type);
  const d = { eio: `${digit} ${packet.type}`, layer: "eio", kind: packet.type, sio: null, bytes: null };
  if (packet.data === undefined) {
    d.wire = String(digit);
  } else if (typeof packet.data === "string") {
    d.wire = digit + packet.data;
    if (packet.type === "message" && /^[0-6]/.test(packet.data)) {
      d.sio = decodeSio(packet.data);
      d.layer = "sio";
      d.kind = d.sio.type;
    }
  } else {
    d.kind = "binary";
    d.bytes = asBytes(packet.data);
    const length = d.bytes ? d.bytes.length : packet.data.size;
    // over long-polling a binary packet travels as "b" + base64; over a WebSocket as is
    d.wire = d.bytes ? (channel === "ws" ? hex(d.bytes) : "b" + btoa(String.fromCharCode(...d.bytes))) : "?";
    d.size = channel === "ws" ? length : 1 + 4 * Math.ceil(length / 3);
    d.hex = d.bytes ? hex(d.bytes) : "(a Blob)";
  }
  d.size ??= utf8.encode(d.wire).length;
  return d;
}

// -- acks: an ACK answers the EVENT of the same namespace and id, sent the other way -------------

const waiting = new Map(); // "> /chat 3" -> {event, t}
const expecting = { ">": null, "<": null }; // a BINARY_* packet waits for its attachments

function follow(direction, d, t) {
  if (d.kind === "binary" && expecting[direction]) {
    const owner = expecting[direction];
    owner.sio.parts.push(d);
    d.partOf = owner;
    if (owner.sio.parts.length === owner.sio.attachments) expecting[direction] = null;
    return;
  }
  if (!d.sio) return;
  if (d.sio.attachments) {
    d.sio.parts = [];
    expecting[direction] = d;
  }
  const key = (dir) => `${dir} ${d.sio.nsp} ${d.sio.id}`;
  if ((d.kind === "EVENT" || d.kind === "BINARY_EVENT") && d.sio.id !== null) {
    waiting.set(key(direction), { event: d.sio.json?.[0], t });
  } else if ((d.kind === "ACK" || d.kind === "BINARY_ACK") && d.sio.id !== null) {
    const other = direction === ">" ? "<" : ">";
    const asked = waiting.get(key(other));
    if (asked) {
      waiting.delete(key(other));
      d.answers = { event: asked.event, rtt: (t - asked.t) * 1000 };
      if (other === ">") emit({ kind: "rtt", event: asked.event, ms: d.answers.rtt });
    }
  }
}

// -- the tap -------------------------------------------------------------------------------------

// The packets of /inspector (the server's trace and sessions, for this page) are not drawn.
const inspector = (p) => p.type === "message" && typeof p.data === "string" && /^\d(\d+-)?\/inspector,/.test(p.data);

let requests = 0;
const tapped = new WeakMap(); // transport -> what it received: (packet) => …

function tapTransport(engine, transport, alreadyPolling) {
  if (tapped.has(transport)) return;
  const polling = transport.name === "polling";
  let get = null, post = null;
  let drawn = 0, hidden = 0; // in the current GET's answer
  const packet = (direction, channel, p) => {
    const count = channel === "GET";
    if (inspector(p)) {
      if (count) hidden += 1;
      return;
    }
    if (count) drawn += 1;
    const d = decode(p, channel);
    const t = now();
    follow(direction, d, t);
    emit({ kind: "packet", direction, channel, packet: d, request: channel === "GET" ? get : channel === "POST" ? post : null, t });
  };
  const startGet = () => {
    get = ++requests;
    drawn = hidden = 0;
    emit({ kind: "request", method: "GET", phase: "start", id: get, handshake: !engine.id });
  };
  if (polling) {
    transport.on("poll", startGet);
    transport.on("pollComplete", () => { if (get) emit({ kind: "request", method: "GET", phase: "end", id: get, drawn, hidden }); get = null; });
    transport.on("drain", () => { if (post) emit({ kind: "request", method: "POST", phase: "end", id: post }); post = null; });
    if (alreadyPolling) startGet(); // the handshake GET left before anyone could listen
  } else {
    transport.on("open", () => emit({ kind: "ws", phase: "open", probe: engine.transport !== transport }));
    transport.on("close", () => emit({ kind: "ws", phase: "close" }));
  }
  // Received: the engine's own `packet` event comes before the engine acts on the packet (the
  // handshake, which sends CONNECT); the transport's is used only while it probes.
  tapped.set(transport, (p) => packet("<", polling ? "GET" : "ws", p));
  transport.on("packet", (p) => { if (engine.transport !== transport) tapped.get(transport)(p); });
  const send = transport.send.bind(transport);
  transport.send = (packets) => {
    const shown = packets.filter((p) => !inspector(p));
    if (polling && shown.length) {
      post = ++requests;
      emit({ kind: "request", method: "POST", phase: "start", id: post });
    }
    packets.forEach((p) => packet(">", polling ? "POST" : "ws", p));
    send(packets);
  };
}

// Follow every engine the Manager creates (one per (re)connection), and the transports they make.
export function tapManager(manager) {
  let hooked = false;
  const open = manager.open.bind(manager);
  manager.open = (callback) => {
    const before = manager.engine;
    const result = open(callback);
    const engine = manager.engine;
    if (engine && engine !== before) {
      if (!hooked) { // from now on, every transport is tapped as it is created, before it opens
        let proto = Object.getPrototypeOf(engine);
        while (proto && !Object.prototype.hasOwnProperty.call(proto, "createTransport")) proto = Object.getPrototypeOf(proto);
        const create = proto.createTransport;
        proto.createTransport = function (name) {
          const transport = create.call(this, name);
          tapTransport(this, transport, false);
          return transport;
        };
        hooked = true;
      }
      tapTransport(engine, engine.transport, engine.transport.name === "polling");
      engine.on("packet", (p) => tapped.get(engine.transport)?.(p));
      engine.on("upgrade", (transport) => note(`upgraded to ${transport.name}`));
      engine.on("upgradeError", (error) => note(`${error.transport} probe failed: staying on ${engine.transport.name}`));
    }
    return result;
  };
  // the reconnection: its delay comes from the Manager's backoff (randomized, doubling)
  const backoff = manager.backoff;
  const duration = backoff.duration.bind(backoff);
  backoff.duration = () => {
    const ms = duration();
    emit({ kind: "wait", phase: "start", ms, attempt: backoff.attempts });
    return ms;
  };
  manager.on("close", (reason) => note(`connection closed (${reason})`, { alert: true }));
  manager.on("reconnect_attempt", (attempt) => emit({ kind: "wait", phase: "end", attempt }));
  manager.on("reconnect", (attempt) => note(`reconnected after ${attempt} attempt${attempt > 1 ? "s" : ""}`));
}
