// The server's view: the sessions it holds (S1, S2…), over which transport, and for each the
// namespaces it joined with their rooms (besides the room each socket has, named by its id).
// Streamed live over /inspector (event `sessions`).
let table, mine = null, last = [];

function render() {
  table.replaceChildren();
  for (const s of last) {
    const tr = table.insertRow();
    tr.dataset.alias = s.alias;
    if (s.alias === mine) tr.className = "mine";
    const cells = [
      s.alias + (s.alias === mine ? " (this page)" : ""),
      s.transport + (s.upgrading ? " (probing websocket)" : ""),
      Object.entries(s.namespaces).map(([nsp, rooms]) => (rooms.length ? `${nsp} [${rooms.join(", ")}]` : nsp)).join("  ") || "(none yet)",
    ];
    cells.forEach((text) => { tr.insertCell().textContent = text; });
  }
}

export function init(element, inspector) {
  table = element.querySelector("tbody");
  inspector.on("hello", (alias) => { mine = alias; render(); });
  inspector.on("sessions", (rows) => { last = rows; render(); });
}
