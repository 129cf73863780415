"""Reconnection delays: exponential backoff with randomization, as the official client computes them.

socket.io-client ``lib/contrib/backo2.ts``: the n-th attempt (from 0) waits
``min(delay * factor**n ± rand * randomization * delay * factor**n, delay_max)``.
Pure: the random number comes in as an argument, so a notebook (or a test) can replay it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The official client's defaults: 1 s, doubling, at most 5 s, ±50 % jitter."""

    delay: float = 1.0  # reconnectionDelay 1000
    delay_max: float = 5.0  # reconnectionDelayMax 5000
    factor: float = 2.0
    randomization: float = 0.5  # randomizationFactor 0.5

    def duration(self, attempt: int, rand: float) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based); ``rand`` in [0, 1)."""
        try:
            ms = self.delay * 1000 * self.factor**attempt
        except OverflowError:  # attempt 1024 and beyond: far past the cap anyway
            return self.delay_max
        if math.isinf(ms):  # far past the cap: inf * jitter cannot go through int()
            return self.delay_max
        if self.randomization:
            deviation = int(rand * self.randomization * ms)
            # backo2: the tenths digit of rand picks the sign
            ms = ms - deviation if int(rand * 10) & 1 == 0 else ms + deviation
        return int(min(ms, self.delay_max * 1000)) / 1000
