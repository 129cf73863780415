"""Reconnection delays: ``Backoff.duration`` against values worked out by hand from backo2.

socket.io-client ``lib/contrib/backo2.ts``::

    ms = min * factor ** attempts
    if jitter:
        deviation = floor(rand * jitter * ms)
        ms = ms - deviation if (floor(rand * 10) & 1) == 0 else ms + deviation
    return min(ms, max) | 0

Every golden value below was computed by hand with that formula (rand values chosen exact in
binary, except 0.3 and 0.05), and agrees with the real backo2 of socket.io-client 4.8.4.
"""

from __future__ import annotations

import dataclasses

import pytest

from sio_teach.sio.backoff import Backoff

DEFAULT = Backoff()  # 1 s, x2, at most 5 s, +-50 %


def test_defaults_are_the_official_clients() -> None:
    # reconnectionDelay 1000, reconnectionDelayMax 5000, randomizationFactor 0.5, factor 2
    assert (DEFAULT.delay, DEFAULT.delay_max, DEFAULT.factor, DEFAULT.randomization) == (
        1.0,
        5.0,
        2,
        0.5,
    )


@pytest.mark.parametrize(
    ("attempt", "rand", "seconds", "why"),
    [
        # rand 0.25: floor(2.5) = 2, even -> minus; deviation floor(0.25*0.5*1000) = 125
        (0, 0.25, 0.875, "1000 - 125"),
        # rand 0.375: floor(3.75) = 3, odd -> plus; ms 2000, deviation floor(375.0) = 375
        (1, 0.375, 2.375, "2000 + 375"),
        # rand 0.5: floor(5) = 5, odd -> plus
        (0, 0.5, 1.25, "1000 + 250"),
        (1, 0.5, 2.5, "2000 + 500"),
        (2, 0.5, 5.0, "4000 + 1000 = 5000, exactly the cap"),
        # rand 0.625: floor(6.25) = 6, even -> minus
        (2, 0.625, 2.75, "4000 - 1250"),
        (3, 0.625, 5.0, "8000 - 2500 = 5500, capped"),
        # rand 0: deviation 0, even -> minus 0: the bare exponential
        (0, 0.0, 1.0, "1000"),
        (1, 0.0, 2.0, "2000"),
        (2, 0.0, 4.0, "4000"),
        (3, 0.0, 5.0, "8000, capped"),
        # rand 0.75: floor(7.5) = 7, odd -> plus
        (0, 0.75, 1.375, "1000 + 375"),
        (2, 0.75, 5.0, "4000 + 1500 = 5500, capped"),
        # rand 0.125: floor(1.25) = 1, odd -> plus; deviation floor(0.125*0.5*2000) = 125
        (1, 0.125, 2.125, "2000 + 125"),
        # rand 0.9375: odd -> plus; deviation floor(468.75) = 468 (floored, not rounded)
        (0, 0.9375, 1.468, "1000 + 468"),
        # rand 0.3: floor(3.0) = 3, odd -> plus; 0.3*0.5*1000 = 150.0 in floating point
        (0, 0.3, 1.15, "1000 + 150"),
        # rand 0.05: floor(0.5) = 0, even -> minus; deviation floor(0.05*0.5*2000) = 50
        (1, 0.05, 1.95, "2000 - 50"),
        # rand 0.99: odd -> plus: 4000 + 1980 = 5980, capped
        (2, 0.99, 5.0, "5980, capped"),
    ],
)
def test_duration_golden_values(attempt: int, rand: float, seconds: float, why: str) -> None:
    assert DEFAULT.duration(attempt, rand) == seconds, why


def test_the_tenths_digit_of_rand_picks_the_sign() -> None:
    # same attempt, same |deviation| scale: even tenths digit subtracts, odd adds
    assert DEFAULT.duration(0, 0.2) < 1.0 < DEFAULT.duration(0, 0.1)
    assert DEFAULT.duration(0, 0.4) < 1.0 < DEFAULT.duration(0, 0.3)


@pytest.mark.parametrize("rand", [0.0, 0.1, 0.25, 0.5, 0.75, 0.99])
def test_never_more_than_the_cap(rand: float) -> None:
    for attempt in range(0, 30):
        assert 0 < DEFAULT.duration(attempt, rand) <= 5.0
    assert DEFAULT.duration(10, rand) == 5.0  # 1024 s +- 50 % is far above 5 s


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.99])
def test_no_jitter_when_randomization_is_zero(rand: float) -> None:
    plain = Backoff(randomization=0)
    assert [plain.duration(n, rand) for n in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_other_parameters() -> None:
    fast = Backoff(delay=0.1, delay_max=0.5)  # what the interop tests use
    assert [fast.duration(n, 0.5) for n in range(4)] == [0.125, 0.25, 0.5, 0.5]
    # a non-integer number of ms is truncated ("| 0"): 1000 * 1.5**5 = 7593.75 -> 7593
    assert Backoff(factor=1.5, delay_max=10.0, randomization=0).duration(5, 0.0) == 7.593
    assert Backoff(factor=1.5, delay_max=10.0, randomization=0).duration(3, 0.0) == 3.375


def test_is_a_frozen_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.delay = 2.0  # type: ignore[misc]
    assert Backoff() == DEFAULT


@pytest.mark.parametrize(
    ("backoff", "attempt", "rand"),
    [
        (Backoff(), 1014, 0.375),  # the last attempt that still works today
        (Backoff(), 1015, 0.375),  # 1000 * 2.0**1015 is inf; int(rand * 0.5 * inf) raises
        (Backoff(), 2000, 0.375),  # 2.0 ** 2000 itself raises OverflowError
        (Backoff(randomization=0), 1024, 0.0),  # 2.0 ** 1024 raises OverflowError
    ],
)
def test_a_very_late_attempt_is_still_capped(backoff: Backoff, attempt: int, rand: float) -> None:
    """With ``reconnection_attempts=inf`` (the default) attempt numbers grow without bound, so the
    delay must stay at the cap even where ``factor ** attempt`` overflows a float (attempt 1015 is
    about 85 minutes offline at 5 s each): an OverflowError would kill the reconnection task.
    backo2 gives 5000 here (JS: Infinity + Infinity, then min(Infinity, 5000))."""
    assert backoff.duration(attempt, rand) == 5.0
