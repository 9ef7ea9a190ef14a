"""How calls are timed: round-robin rounds, so that a shared machine's drift cancels in ratios."""

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import flashdrop


@dataclass(frozen=True)
class Contender:
    """One implementation on one workload: a call without arguments, timed as a whole."""

    key: str
    label: str
    mode: str  # flashdrop's random mode while it runs, set outside the timed region
    call: Callable[[], object]


def time_round_robin(contenders: list[Contender], rounds: int, warmup: int) -> dict:
    """Seconds per call of each contender, one list entry per round, rounds in step.

    Each round calls every contender once, starting one further along the list each round; the
    first ``warmup`` rounds are discarded. The garbage collector is paused while timing, so that
    a collection does not land on one side of a pair.
    """
    times: dict[str, list[float]] = {c.key: [] for c in contenders}
    gc.collect()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            start = r % len(contenders)
            for c in contenders[start:] + contenders[:start]:
                flashdrop.set_rng_mode(c.mode)
                t0 = time.perf_counter()
                c.call()
                elapsed = time.perf_counter() - t0
                if r >= warmup:
                    times[c.key].append(elapsed)
    finally:
        gc.enable()
        flashdrop.set_rng_mode("mlx")
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    """The median over rounds of a[i] / b[i], each pair timed in the same round."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def warmup_rounds(rounds: int, quick: bool) -> int:
    """A tenth of the timed rounds, at least 2 (1 with --quick): enough to trace and allocate."""
    return max(1 if quick else 2, rounds // 10)
