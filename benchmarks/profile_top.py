"""The functions with the most self time in a py-spy speedscope profile.

    python -m benchmarks.profile_top PROFILE.speedscope.json [--top 15] [--inclusive]

Made with ``python -m benchmarks.run --py-spy DIR`` (py-spy attached to the server during the
measured phase only), or by hand: ``py-spy record --pid PID --format speedscope -o FILE``. Self time
is the share of samples in which the function was the innermost Python frame; time in C code (json,
socket calls) counts as the self time of the Python function that called it.

py-spy leaves idle samples out, but in its (default) blocking mode it stops the process to read a
sample, and a thread stopped inside ``epoll_wait`` no longer looks idle: samples whose innermost
frame is the event loop's ``select`` are dropped here too (``--keep-wait`` keeps them), so the
shares are shares of the time the loop was working.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import re

WAIT = (
    "EpollSelector.select",
    "PollSelector.select",
    "SelectSelector.select",
    "KqueueSelector.select",
)


def top(
    path: str | pathlib.Path,
    n: int = 15,
    inclusive: bool = False,
    by: str = "function",
    keep_wait: bool = False,
) -> list[tuple[float, str]]:
    """[(share of samples in %, "function (file)")], the largest first.

    ``by="file"`` adds up the functions of each file instead (self time only makes sense there).
    """
    with open(path) as f:
        data = json.load(f)
    frames = data["shared"]["frames"]
    weights: collections.Counter[int] = collections.Counter()
    total = 0.0
    for profile in data["profiles"]:
        samples = profile.get("samples", [])
        for stack, weight in zip(samples, profile.get("weights", [1] * len(samples)), strict=False):
            if not stack or (not keep_wait and frames[stack[-1]]["name"] in WAIT):
                continue
            total += weight
            if inclusive:
                for frame in set(stack):
                    weights[frame] += weight
            else:
                weights[stack[-1]] += weight
    # The same function at different lines is one function.
    by_function: collections.Counter[str] = collections.Counter()
    for index, weight in weights.items():
        frame = frames[index]
        where = _short(frame.get("file", ""))
        by_function[where if by == "file" else f"{frame['name']} ({where})"] += weight
    return [(100 * w / total, name) for name, w in by_function.most_common(n)] if total else []


def _short(path: str) -> str:
    if "site-packages" + os.sep in path:
        return path.split("site-packages" + os.sep, 1)[1]
    stdlib = re.search(r"python3\.\d+/(.*)$", path)
    if stdlib:
        return stdlib.group(1)
    root = str(pathlib.Path(__file__).resolve().parent.parent) + os.sep
    return path.removeprefix(root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=pathlib.Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--inclusive", action="store_true", help="time including callees")
    parser.add_argument("--by", choices=("function", "file"), default="function")
    parser.add_argument("--keep-wait", action="store_true", help="keep samples in epoll_wait")
    args = parser.parse_args(argv)
    kind = "inclusive" if args.inclusive else "self"
    print(f"{args.profile.name}: top {args.top} {args.by}s by {kind} time (% of busy samples)")
    for share, name in top(args.profile, args.top, args.inclusive, args.by, args.keep_wait):
        print(f"{share:6.1f}%  {name}")


if __name__ == "__main__":
    main()
