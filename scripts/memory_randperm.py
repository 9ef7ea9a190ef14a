"""Peak memory of torch-mode ``flashdrop.randperm(n)`` against ``torch.randperm(n)`` (int64, CPU).

Each measurement runs in a fresh process that imports only its own library, warms it up with a
small call, and reports how far the call at ``n`` raised the resident set's peak above the
resident set just before it (Linux: VmHWM, reset through /proc/self/clear_refs where the kernel
allows, and VmRSS, from /proc/self/status; elsewhere, as on macOS, the growth of
``resource.getrusage``'s lifetime peak, which can only understate it). The two libraries
alternate, ``--repeats`` times.

    .venv/bin/python scripts/memory_randperm.py            # n = 50,000,000, 3 repeats
    .venv/bin/python scripts/memory_randperm.py --n 1000000 --repeats 1
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time


def _memory_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS now, VmHWM its peak), in bytes; without /proc,
    the lifetime peak of the resident set for either."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, else kB


def _reset_peak() -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0 on); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _call(library: str, n: int):
    """The call measured, after a warm-up of the same call at a small size."""
    if library == "torch":
        import torch

        torch.manual_seed(0)
        torch.randperm(1000)
        return lambda: torch.randperm(n)
    import mlx.core as mx

    import flashdrop

    flashdrop.manual_seed(0)
    with flashdrop.rng_mode("torch"):
        mx.eval(flashdrop.randperm(1000))

    def draw():
        with flashdrop.rng_mode("torch"):
            out = flashdrop.randperm(n)
            mx.eval(out)
        return out

    return draw


def child(library: str, n: int) -> None:
    """In a fresh process: print the peak growth of one call as JSON."""
    draw = _call(library, n)
    reset = _reset_peak()
    before = _memory_bytes("VmRSS")
    began = time.perf_counter()
    out = draw()
    seconds = time.perf_counter() - began
    peak = _memory_bytes("VmHWM")
    assert out.shape[0] == n
    growth = peak - before
    print(json.dumps({"growth": growth, "seconds": seconds, "peak_was_reset": reset}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("torch", "flashdrop"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n)
        return
    print(f"{platform.platform()}, {platform.processor() or platform.machine()}, n = {args.n:,}")
    print("peak RSS growth (and time) of one randperm(n) call, int64, each in a fresh process:")
    for repeat in range(args.repeats):
        row = []
        for library in ("torch", "flashdrop"):
            command = [sys.executable, __file__, "--child", library, "--n", str(args.n)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout)
            if not result["peak_was_reset"]:
                row.append("(peak not reset)")
            growth = result["growth"]
            row.append(
                f"{library} {growth / 1e9:.2f} GB ({growth / args.n:.1f} B/element,"
                f" {result['seconds']:.2f} s)"
            )
        print(f"  run {repeat + 1}: " + ", ".join(row))


if __name__ == "__main__":
    main()
