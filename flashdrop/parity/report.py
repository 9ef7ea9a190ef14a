"""The report: run each row of the grid on both sides, judge it, print the verdict.

:func:`main` is ``python -m flashdrop.parity``. It prints the verdict first, then one line per
op (:func:`format_summary`) and any failures; ``--all`` adds the table of every row
(:func:`format_table`).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import mlx.core as mx

import flashdrop
from flashdrop import compat
from flashdrop._builds import Builds
from flashdrop.parity._types import Tensor, Torch
from flashdrop.parity.grid import FULL, QUICK, Case, Grid, Op
from flashdrop.parity.plot import PLOT_HINT, draw_plot, import_pyplot
from flashdrop.parity.reference import Reference, Tally, same_bits, sample_input
from flashdrop.parity.stats import P_VALUE_THRESHOLD, two_proportion_p_value

__all__ = ["Row", "format_summary", "format_table", "main", "run_row", "verdict"]


@dataclass
class Row:
    """One op, shape, dtype, p and random mode, run on both sides."""

    op: str
    dtype: str
    shape: str
    p: float
    mode: str
    theirs: Tally = field(default_factory=Tally)
    ours: Tally = field(default_factory=Tally)
    bit_exact: bool | None = None  # torch mode only
    inexact_from: int | None = None  # torch mode: the first call whose bits differ
    p_value: float | None = None  # mlx mode only
    time_theirs: float = math.nan  # median seconds per call
    time_ours: float = math.nan
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def _timed(fn: Callable[[], Any], times: list[float]) -> Any:
    start = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - start)
    return out


def _calls(grid: Grid, case: Case, p: float, mode: str) -> int:
    """Calls per side: ``grid.calls``, or enough for ``grid.draws`` draws in a random mlx row."""
    if mode == "torch" or p in (0.0, 1.0):
        return grid.calls
    return max(grid.calls, math.ceil(grid.draws / case.units()))


def run_row(
    torch: Torch, grid: Grid, op: Op, case: Case, dtype: str, p: float, mode: str, seed: int
) -> Row:
    """Run ``op`` on both sides and judge the row (exceptions become a failed row)."""
    row = Row(op.label, dtype, case.label(), p, mode)
    try:
        _run(torch, grid, op, case, p, mode, seed, row)
    except Exception as exc:  # a failing op is a failed row, not a crashed report
        row.problems.append(f"error: {type(exc).__name__}: {exc}")
    return row


def _run(
    torch: Torch, grid: Grid, op: Op, case: Case, p: float, mode: str, seed: int, row: Row
) -> None:
    x = sample_input(torch, case.shape, row.dtype, seed)
    xm = compat.to_mlx(x)
    mx.eval(xm)
    reference = Reference(torch, x, p, op.alpha, case)
    theirs_fn, ours_fn = op.make(torch, p)

    def ours() -> mx.array:
        out = ours_fn(xm)
        mx.eval(out)
        return out

    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    times_theirs: list[float] = []
    times_ours: list[float] = []
    row.bit_exact = True if mode == "torch" else None
    with flashdrop.rng_mode(mode):
        for call in range(1, _calls(grid, case, p, mode) + 1):
            out_theirs = _timed(lambda: theirs_fn(x), times_theirs)
            out_ours = compat.to_torch(_timed(ours, times_ours))
            _check_like(out_ours, out_theirs)
            reference.tally(out_theirs, row.theirs)
            reference.tally(out_ours, row.ours)
            if mode == "torch" and not same_bits(out_ours, out_theirs) and row.bit_exact:
                row.bit_exact, row.inexact_from = False, call
    row.time_theirs = statistics.median(times_theirs)
    row.time_ours = statistics.median(times_ours)
    _judge(row)


def _check_like(ours: Tensor, theirs: Tensor) -> None:
    """Raise a ``TypeError`` when flashdrop's output has another dtype or shape than torch's."""
    if ours.dtype != theirs.dtype or ours.shape != theirs.shape:
        raise TypeError(
            f"flashdrop returned {ours.dtype} {tuple(ours.shape)}, "
            f"torch {theirs.dtype} {tuple(theirs.shape)}"
        )


def _judge(row: Row) -> None:
    """Fill in the p-value (mlx mode) and the row's problems."""
    if not row.theirs.clean:
        row.problems.append("torch's output is not the reference (report bug)")
    if not row.ours.clean:
        row.problems.append("values differ from torch's")
    if row.mode == "torch":
        if not row.bit_exact:
            row.problems.append(f"not bit-exact from call {row.inexact_from} on")
        return
    row.p_value = two_proportion_p_value(
        row.theirs.kept, row.theirs.draws, row.ours.kept, row.ours.draws
    )
    if row.p_value < P_VALUE_THRESHOLD:
        row.problems.append(f"keep rates differ (p-value < {P_VALUE_THRESHOLD:g})")


class Progress:
    """A ``[k/N] ...`` line on stderr: rewritten in place on a terminal, else every so often."""

    def __init__(self, total: int, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self._last = -math.inf
        self._width = 0

    def update(self, k: int, text: str) -> None:
        line = f"[{k}/{self.total}] {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        elif k in (1, self.total) or time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


_COLUMNS = (  # title, right-aligned
    ("op", False),
    ("dtype", False),
    ("shape", False),
    ("p", True),
    ("mode", False),
    ("bit-exact", False),
    ("keep torch", True),
    ("keep flashdrop", True),
    ("p-value", True),
    ("values", False),
    ("torch ms", True),
    ("flashdrop ms", True),
    ("result", False),
)


def _fmt_p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value >= 0.01 else f"{value:.1e}"


def _cells(row: Row) -> list[str]:
    bit_exact = "-" if row.bit_exact is None else ("yes" if row.bit_exact else "NO")
    return [
        row.op,
        row.dtype,
        row.shape,
        f"{row.p:g}",
        row.mode,
        bit_exact,
        f"{row.theirs.rate:.4f}",
        f"{row.ours.rate:.4f}",
        _fmt_p_value(row.p_value),
        "exact" if row.ours.clean else "DIFFER",
        _fmt_ms(row.time_theirs),
        _fmt_ms(row.time_ours),
        "FAIL" if row.failed else "ok",
    ]


def _align(columns: Sequence[tuple[str, bool]], body: Sequence[list[str]]) -> list[str]:
    """A header, a rule and the body as aligned text lines (``columns``: title, right-aligned)."""
    titles = [title for title, _ in columns]
    widths = [max(len(cells[i]) for cells in [titles, *body]) for i in range(len(titles))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, right) in zip(cells, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(titles), line(["-" * w for w in widths]), *(line(cells) for cells in body)]


def format_table(rows: Sequence[Row]) -> list[str]:
    """Every row as aligned text lines: a header, a rule, one line per row (``--all``)."""
    return _align(_COLUMNS, [_cells(row) for row in rows])


_SUMMARY_COLUMNS = (  # title, right-aligned
    ("op", False),
    ("rows", True),
    ("bit-exact", True),
    ("equivalent", True),
    ("failed", True),
    ("lowest p-value", True),
    ("torch ms", True),
    ("flashdrop ms", True),
)


def format_summary(rows: Sequence[Row]) -> list[str]:
    """One line per op, in the grid's order: its rows, how many passed in each mode, how many
    failed, the lowest p-value of its mlx-mode rows and the median times over its rows."""
    by_op: dict[str, list[Row]] = {}
    for row in rows:
        by_op.setdefault(row.op, []).append(row)
    body = []
    for op, own in by_op.items():
        p_values = [row.p_value for row in own if row.p_value is not None]
        body.append(
            [
                op,
                str(len(own)),
                _passed_of(own, "torch"),
                _passed_of(own, "mlx"),
                str(sum(row.failed for row in own)),
                _fmt_p_value(min(p_values, default=None)),
                _fmt_ms(statistics.median(row.time_theirs for row in own)),
                _fmt_ms(statistics.median(row.time_ours for row in own)),
            ]
        )
    return _align(_SUMMARY_COLUMNS, body)


def _passed_of(rows: Sequence[Row], mode: str) -> str:
    """``"passed/total"`` of the rows in ``mode``."""
    own = [row for row in rows if row.mode == mode]
    return f"{sum(not row.failed for row in own)}/{len(own)}"


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def header(builds: Builds) -> str:
    """The second line: what ran, on both sides (the builds: torch mode's target and the
    torch compared), and where."""
    return (
        f"flashdrop {flashdrop.__version__} parity report, on mlx {mx.__version__} "
        f"({mx.default_device().type.name} backend): {builds.line()}; "
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs"
    )


def verdict(rows: Sequence[Row]) -> str:
    """The first line: PASS or FAIL, and the rows counted by outcome."""
    exact = sum(row.mode == "torch" and not row.failed for row in rows)
    equivalent = sum(row.mode == "mlx" and not row.failed for row in rows)
    failed = sum(row.failed for row in rows)
    return (
        f"{'FAIL' if failed else 'PASS'}: {len(rows)} rows: {exact} bit-exact, "
        f"{equivalent} statistically equivalent, {failed} failed"
    )


def failures(rows: Sequence[Row], builds: Builds) -> list[str]:
    """Each failed row with its problems; nothing when every row passed. Where torch-mode rows
    differ from their first call on, the hint that the torch compared may draw otherwise than
    torch mode's target, and how to set it."""
    failed = [row for row in rows if row.failed]
    if not failed:
        return []
    lines = [
        "",
        "Failures:",
        *(
            f"  {row.op} {row.dtype} {row.shape} p={row.p:g} {row.mode}: {'; '.join(row.problems)}"
            for row in failed
        ),
    ]
    from_the_first = sum(row.inexact_from == 1 for row in rows)
    if from_the_first:
        torch_rows = sum(row.mode == "torch" for row in rows)
        evidence = (
            f"{from_the_first} of the {torch_rows} torch-mode rows differ from their first call on"
        )
        lines.append(builds.hint(evidence))
    return lines


def legend(grid: Grid, rows: Sequence[Row], every_row: bool) -> list[str]:
    """What the columns mean, with the false-failure rate of the statistical rows."""
    statistical = sum(row.mode == "mlx" for row in rows)
    lines = [
        "",
        f"bit-exact:  rows in rng_mode('torch'), both sides seeded alike, whose {grid.calls}"
        " consecutive calls give",
        "  torch's bits (NaN compared as NaN).",
        "equivalent: rows in MLX's own random mode (other masks) whose keep rate (fraction of"
        " kept elements,",
        f"  channels for feature dropout, over >= {grid.draws} draws per side when 0 < p < 1)"
        " is torch's: a row fails",
        f"  when the two-proportion z-test's p-value < {P_VALUE_THRESHOLD:g}; that threshold is"
        " the false-failure rate",
        f"  per row (normal approximation): over these {statistical} rows, at most about"
        f" {statistical * P_VALUE_THRESHOLD:.1g} in all.",
        "In every row each output element is torch's kept value (x * (1/(1-p)); alpha ops:"
        " x*a + b) or its",
        "  dropped value, rounded as torch rounds them; whole channels agree in feature dropout.",
        "ms:         median milliseconds per call; flashdrop's output evaluated (mx.eval) inside"
        " the timing;",
        "  in torch mode flashdrop draws its masks on the host (numpy's mt19937), as torch does.",
    ]
    if not every_row:
        lines.append("Every row, with its shape, dtype and p: python -m flashdrop.parity --all")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flashdrop.parity",
        description="Run every torch dropout function and module next to its flashdrop twin "
        "and report bit-exactness (torch mode) and statistical equivalence (mlx mode).",
    )
    parser.add_argument("--quick", action="store_true", help="a small grid, in seconds")
    parser.add_argument(
        "--all", action="store_true", help="also print every row (op, dtype, shape, p, mode)"
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the keep-rate distributions (needs matplotlib)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report and print it, verdict first; return 0 when every row passes, 1 when any
    fails, 2 when a needed package (torch, or matplotlib for ``--plot``) is missing."""
    args = parse_args(argv)
    grid = QUICK if args.quick else FULL
    try:
        torch = compat.import_torch()
    except ImportError as exc:
        print(f"flashdrop.parity: {exc}", file=sys.stderr)
        return 2
    plt = None
    if args.plot:
        try:
            plt = import_pyplot()
        except ImportError:
            print(f"flashdrop.parity: {PLOT_HINT}", file=sys.stderr)
            return 2

    builds = Builds.now()
    rows = _run_grid(torch, grid, args.seed)
    lines = [verdict(rows), header(builds), "", *format_summary(rows), *failures(rows, builds)]
    if args.all:
        lines += ["", *format_table(rows)]
    lines += legend(grid, rows, every_row=args.all)
    if plt is not None:
        print(f"drawing keep-rate histograms to {args.plot} ...", file=sys.stderr)
        draw_plot(plt, torch, args.plot, grid.plot_calls, args.seed, builds.compared)
        lines.append(f"keep-rate plot: {args.plot}")
    print("\n".join(lines))
    return 1 if any(row.failed for row in rows) else 0


def _run_grid(torch: Torch, grid: Grid, seed: int) -> list[Row]:
    """Every row of the grid, row k seeded with ``seed + k`` on both sides."""
    plan = grid.rows()
    progress = Progress(len(plan))
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy shapes warn on both sides; tests compare them
        for k, (op, case, dtype, p, mode) in enumerate(plan, start=1):
            progress.update(k, f"{op.label} {dtype} {case.label()} p={p:g} {mode}")
            rows.append(run_row(torch, grid, op, case, dtype, p, mode, seed + k))
    progress.done()
    return rows
