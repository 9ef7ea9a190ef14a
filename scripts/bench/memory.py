"""Memory over the many shapes: the resident set's growth, each implementation in a fresh process
(so that neither inherits the other's allocations)."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx

from .figures import mebibytes
from .workloads import FD_MLX, MLX_NN, many_shapes, many_shapes_contenders, many_shapes_count

ENTRY_POINT = Path(__file__).resolve().parents[1] / "bench.py"  # run with --many-shapes-memory


def rss_bytes() -> int:
    """The resident set size now (Linux), or its peak where /proc is missing (macOS)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def many_shapes_memory_worker(impl: str, count: int) -> dict:
    """In a fresh process: RSS before and after ``impl`` runs once on each of ``count`` shapes.

    "Before" is taken after a warm-up on 20 other shapes (imports, first allocations).
    """
    call = {key: c for key, _, _, c in many_shapes_contenders()}[impl]
    for n in range(20):
        call(mx.ones((300, n + 1)), None)
    gc.collect()
    before = rss_bytes()
    for shape in many_shapes(count):
        call(mx.ones(shape), None)
    gc.collect()
    return {"impl": impl, "shapes": count, "rss_before": before, "rss_after": rss_bytes()}


def measure_many_shapes_memory(quick: bool) -> dict:
    """RSS growth of flashdrop and of mlx.nn.Dropout over the many shapes, each in a fresh
    process, and flashdrop's excess over mlx.nn's (the memory target judges it)."""
    count = many_shapes_count(quick)
    growth = {}
    for impl in (FD_MLX, MLX_NN):
        done = subprocess.run(
            [sys.executable, str(ENTRY_POINT), "--many-shapes-memory", impl, str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        growth[impl] = result["rss_after"] - result["rss_before"]
    excess = growth[FD_MLX] - growth[MLX_NN]
    return {"shapes": count, "rss_growth_bytes": growth, "excess_bytes": excess}


def describe_growth(memory: dict) -> str:
    """The growths measured, in a phrase that the terminal and Markdown reports share."""
    growths = ", ".join(
        f"{impl} {mebibytes(size, sign=True)}" for impl, size in memory["rss_growth_bytes"].items()
    )
    return f"RSS growth over {memory['shapes']} distinct shapes, each in a fresh process: {growths}"
