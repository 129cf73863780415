"""Plot a benchmark run: server CPU µs per message, per scenario and server (lower is better).

    python -m benchmarks.plot                                   # results/latest.jsonl → latest.png
    python -m benchmarks.plot results.jsonl -o results.png

From a notebook::

    from benchmarks.plot import figure, load
    fig = figure(load("benchmarks/results/latest.jsonl"))

One panel per scenario: a bar per server at the median over the rounds, a line from the lowest to
the highest round, and the ratio to python-socketio on aiohttp written beside the bar. The
``conn_memory`` scenario gets a second panel: KiB of RSS per idle WebSocket connection.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
from typing import Any

from benchmarks.run import BASELINE, RESULTS, SCENARIOS, SERVERS

COLORS = {
    "ours": "tab:blue",
    "ps_tornado": "tab:orange",
    "ps_aiohttp": "tab:green",
    "tornado_bare": "tab:gray",
    "tornado_polling": "tab:brown",
    "tornado_lean": "tab:olive",
    "node": "tab:purple",
}


def load(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """The records of a ``.jsonl`` results file (the ``meta`` line included)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _panels(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(scenario, figure, axis label) for each panel, in the order of ``SCENARIOS``."""
    present = {r["scenario"] for r in records if r.get("kind") == "run"}
    panels = []
    for scenario in SCENARIOS:
        if scenario not in present:
            continue
        unit = SCENARIOS[scenario].unit
        panels.append((scenario, "cpu_us_per_msg", f"server CPU µs per {unit}"))
        if scenario == "conn_memory":
            panels.append((scenario, "kib_per_conn", "server RSS KiB per idle connection"))
    return panels


def figure(records: list[dict[str, Any]], columns: int = 3) -> Any:
    """A matplotlib Figure of the run (see the module docstring)."""
    import matplotlib.pyplot as plt

    runs = [r for r in records if r.get("kind") == "run"]
    servers = [name for name in SERVERS if any(r["server"] == name for r in runs)]
    panels = _panels(records)
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.6 * columns, 0.55 * len(servers) * rows + 1.4 * rows),
        squeeze=False,
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (scenario, key, label) in zip(axes.flat, panels, strict=False):
        values = {
            name: [
                r[key]
                for r in runs
                if r["server"] == name and r["scenario"] == scenario and r.get(key) is not None
            ]
            for name in servers
        }
        names = [name for name in servers if values[name]]
        med = [statistics.median(values[name]) for name in names]
        low = [m - min(values[name]) for m, name in zip(med, names, strict=True)]
        high = [max(values[name]) - m for m, name in zip(med, names, strict=True)]
        y = list(range(len(names)))
        ax.barh(
            y, med, xerr=[low, high], color=[COLORS.get(n, "tab:cyan") for n in names], capsize=3
        )
        ax.set_yticks(y, [SERVERS[n].label for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label, fontsize=8)
        title = SCENARIOS[scenario].title
        if key == "kib_per_conn":
            title = "memory of idle WebSocket connections"
        elif scenario == "conn_memory":
            title = "opening WebSocket connections"
        ax.set_title(title, fontsize=9)
        base = statistics.median(values[BASELINE]) if values.get(BASELINE) else None
        tops = [max(values[name]) for name in names]  # text right of the whisker
        for yi, m, x in zip(y, med, tops, strict=True):
            text = f"{m:,.1f}" + (f"  ×{m / base:.2f}" if base else "")
            ax.text(x, yi, "  " + text, va="center", fontsize=7)
        ax.set_xlim(0, max(tops + [1e-9]) * 1.5)
    meta = next((r for r in records if r.get("kind") == "meta"), {})
    fig.suptitle(
        f"sio_teach benchmark — medians of {meta.get('rounds', '?')} round(s), commit {meta.get('commit')}"
        f"{' (quick)' if meta.get('quick') else ''}; whiskers: lowest to highest round;"
        " ×: ratio to python-socketio (aiohttp), lower is better",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=pathlib.Path, default=RESULTS / "latest.jsonl")
    parser.add_argument("-o", "--output", type=pathlib.Path, default=None, help="PNG path")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    output = args.output or args.results.with_suffix(".png")
    figure(load(args.results)).savefig(output, dpi=110)
    print(output)


if __name__ == "__main__":
    main()
