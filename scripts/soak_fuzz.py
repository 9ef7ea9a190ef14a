"""Soak the differential fuzz test: random programs of draws under checkpoint, compile, fork_rng
and mode switches, against torch, for as long as asked (tests/parity/test_fuzz_programs.py
runs a fixed 200 of them in the suite).

Unlike the suite's run, the search is not derandomized: each batch explores new programs. A
failure stops the run and prints hypothesis's smallest failing program, which the suite's
test can then pin with ``@example``.

    .venv/bin/python scripts/soak_fuzz.py --minutes 5
"""

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.parity.test_fuzz_programs import check_program, programs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--batch", type=int, default=50, help="programs per hypothesis run")
    args = parser.parse_args()

    checked = 0

    @settings(
        max_examples=args.batch,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(program=programs, seed=st.integers(0, 2**32 - 1))
    def batch(program, seed) -> None:
        nonlocal checked
        check_program(program, seed)
        checked += 1

    start = time.monotonic()
    end = start + 60 * args.minutes
    batches = 0
    while time.monotonic() < end:
        batch()
        batches += 1
        elapsed = time.monotonic() - start
        print(f"{checked} programs checked in {elapsed:.0f} s ({batches} batches), no failure")
    print(f"soak passed: {checked} programs in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
