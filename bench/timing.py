"""What every benchmark here times with: candidates called in interleaved rounds, so that the
machine's noise hits all of them alike, and durations printed for people."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timings:
    samples: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int) -> Timings:
    """Each round calls every candidate once, in a rotating order."""
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call = candidates[name]
            started = clock()
            call()
            samples[name].append(clock() - started)
    return Timings(samples)


def fmt(seconds: float) -> str:
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if abs(seconds) < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
