// Faults at a button (only with `serve --faults`): each button turns one of the lab's knobs on
// the server (sio_teach/lab.py's Lab, the same as in the notebooks) through POST /faults.
import { note } from "./wire.js";

let state, alias = () => null;

async function turn(action, value) {
  note(`fault: ${action}${value === undefined ? "" : ` ${value}`}`, { alert: true });
  const answer = await fetch("/faults", { method: "POST", body: JSON.stringify({ action, value }) });
  if (answer.ok) show(await answer.json());
}

function show(knobs) {
  state.textContent = `latency ${knobs.latency} s, WebSockets ${knobs.block ? "blocked" : "allowed"}` +
    (knobs.partitioned ? ", partitioned" : "");
}

export async function init(element, { myAlias }) {
  alias = myAlias;
  const answer = await fetch("/faults");
  if (!answer.ok) return; // served without --faults
  element.hidden = false;
  state = element.querySelector("#fault-state");
  show(await answer.json());
  setInterval(async () => { // a partition heals by itself, a restart resets the knobs
    const now = await fetch("/faults").catch(() => null);
    if (now?.ok) show(await now.json());
  }, 1000);
  const $ = (selector) => element.querySelector(selector);
  $("#fault-latency").addEventListener("click", () => turn("latency", Number($("#latency").value)));
  $("#fault-block").addEventListener("click", () => turn("block", !state.textContent.includes("blocked")));
  $("#fault-drop").addEventListener("click", () => turn("drop", alias()));
  $("#fault-partition").addEventListener("click", () => turn("partition", Number($("#partition-seconds").value)));
  $("#fault-restart").addEventListener("click", () => turn("restart"));
}
