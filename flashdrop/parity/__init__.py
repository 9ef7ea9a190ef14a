"""The parity report: every torch dropout function and module next to its flashdrop twin.

Run it with ``python -m flashdrop.parity`` (``--quick`` for a small grid, ``--plot FILE.png`` to
also draw the keep-rate distributions, ``--seed N``). It needs torch (``pip install
'flashdrop[torch]'``), which it gets from :mod:`compat`, the only code that imports torch.

For each op (the six functions of ``torch.nn.functional`` and the six modules of ``torch.nn``),
each shape the op accepts (batched, unbatched, legacy), each dtype and each p, it runs torch and
flashdrop on the same input in both random modes and prints one row per run:

- ``torch`` mode: both sides seeded alike (``torch.manual_seed(s)``, ``flashdrop.manual_seed(s)``),
  several consecutive calls; the row is *bit-exact* when every output bit is torch's (NaN outputs
  compared as NaN: torch does not define which NaN ``nan * 0`` gives).
- ``mlx`` mode: flashdrop draws from MLX's generator, so masks differ; the row compares the
  fraction of kept elements (channels, for feature dropout) of the two sides over enough draws
  with a two-proportion z-test, and fails when its p-value is below :data:`P_VALUE_THRESHOLD`.

In both modes every output element must be either the value torch gives it when kept or the value
torch gives it when dropped, as torch rounds them (see :class:`Reference`), with whole channels
agreeing for feature dropout. The exit status is 0 when every row passes, 1 otherwise, 2 for a
missing dependency.
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

import compat
import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn as fnn

__all__ = ["P_VALUE_THRESHOLD", "main", "two_proportion_p_value"]

# torch is imported only through compat, when the report runs; these name what flows around.
Tensor = Any  # a torch.Tensor
Torch = Any  # the torch module
DropoutFn = Callable[[Any], Any]  # one call of an op: input -> output

# A statistical row fails below this p-value; under the null hypothesis (flashdrop keeps with
# torch's probability) it is also each row's chance of failing by bad luck.
P_VALUE_THRESHOLD = 1e-6

# SELU's scale * alpha, as ATen's alpha dropout writes it.
_ALPHA = 1.7580993408473766

_INT_OF_WIDTH = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}  # torch dtype names, by bytes


# ---------------------------------------------------------------------------------------------
# The ops and the grid


@dataclass(frozen=True)
class Case:
    """One input shape for an op.

    Attributes:
        shape: the input's shape.
        unit_dims: how many leading dimensions index the mask's draws: all of them for
            element-wise dropout, (N, C) for batched feature dropout, (C,) for unbatched.
        note: how torch takes the shape, when that is worth saying ("unbatched", "legacy 3-D").
    """

    shape: tuple[int, ...]
    unit_dims: int
    note: str = ""

    def label(self) -> str:
        return f"{self.shape} {self.note}".strip()

    def units(self) -> int:
        """Mask draws per call."""
        return math.prod(self.shape[: self.unit_dims])


@dataclass(frozen=True)
class Op:
    """A dropout function or module, named as in torch (``dropout``, ``Dropout``)."""

    name: str
    module: bool
    alpha: bool
    cases: tuple[Case, ...]

    @property
    def label(self) -> str:
        return f"nn.{self.name}" if self.module else f"F.{self.name}"

    def make(self, torch: Torch, p: float) -> tuple[DropoutFn, DropoutFn]:
        """The torch call and the flashdrop call of this op with dropout probability ``p``."""
        if self.module:
            theirs, ours = getattr(torch.nn, self.name)(p), getattr(fnn, self.name)(p)
            theirs.train()
            ours.train()
            return theirs, ours
        torch_fn, our_fn = getattr(torch.nn.functional, self.name), getattr(F, self.name)
        return (lambda x: torch_fn(x, p, True)), (lambda x: our_fn(x, p, True))


# Shapes of 16384 elements with at least 2048 draws per call, so that few calls give many draws.
_ELEMENTWISE = (Case((16, 32, 32), 3), Case((64, 256), 2), Case((16384,), 1))
_FEATURE_CASES = {
    "dropout1d": (Case((64, 64, 4), 2), Case((2048, 8), 1, "unbatched")),
    "dropout2d": (Case((32, 64, 2, 4), 2), Case((32, 64, 8), 2, "legacy 3-D")),
    "dropout3d": (Case((16, 128, 2, 2, 2), 2), Case((2048, 2, 2, 2), 1, "unbatched")),
    "feature_alpha_dropout": (Case((32, 64, 2, 4), 2), Case((128, 128), 2)),
}
_FUNCTIONS = (
    "dropout",
    "alpha_dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
)


def _module_name(function: str) -> str:
    """The module of a function: dropout1d -> Dropout1d, alpha_dropout -> AlphaDropout."""
    return "".join(part.capitalize() for part in function.split("_"))


def _ops() -> tuple[Op, ...]:
    """The six functions, then the six modules, each with the shapes it accepts."""
    functions = [
        Op(
            name,
            module=False,
            alpha="alpha" in name,
            cases=_FEATURE_CASES.get(name, _ELEMENTWISE),
        )
        for name in _FUNCTIONS
    ]
    modules = [
        Op(_module_name(f.name), module=True, alpha=f.alpha, cases=f.cases) for f in functions
    ]
    return (*functions, *modules)


OPS = _ops()
MODES = ("torch", "mlx")


@dataclass(frozen=True)
class Grid:
    """What the report runs.

    Attributes:
        dtypes: torch dtype names.
        ps: dropout probabilities.
        all_cases: every shape of each op; otherwise its first (batched) shape only.
        draws: mlx-mode rows with 0 < p < 1 draw at least this many mask values per side.
        calls: consecutive calls per torch-mode row, and the fewest calls of any row (timing).
        plot_calls: calls per side behind each histogram of ``--plot``.
    """

    dtypes: tuple[str, ...]
    ps: tuple[float, ...]
    all_cases: bool
    draws: int
    calls: int
    plot_calls: int

    def rows(self) -> list[tuple[Op, Case, str, float, str]]:
        return [
            (op, case, dtype, p, mode)
            for op in OPS
            for case in (op.cases if self.all_cases else op.cases[:1])
            for dtype in self.dtypes
            for p in self.ps
            for mode in MODES
        ]


FULL = Grid(
    dtypes=("float32", "float16", "bfloat16", "float64"),
    ps=(0.0, 0.1, 0.5, 0.9, 1.0),
    all_cases=True,
    draws=1_000_000,
    calls=5,
    plot_calls=1000,
)
QUICK = Grid(
    dtypes=("float32", "bfloat16"),
    ps=(0.0, 0.5, 0.9, 1.0),
    all_cases=False,
    draws=20_000,
    calls=3,
    plot_calls=200,
)


# ---------------------------------------------------------------------------------------------
# Statistics


def two_proportion_p_value(kept1: int, n1: int, kept2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test that ``kept1/n1 == kept2/n2``.

    Normal approximation: ``z = (f1 - f2) / sqrt(f (1 - f) (1/n1 + 1/n2))`` with ``f`` the pooled
    fraction, p-value ``erfc(|z| / sqrt 2)``. When every draw went the same way on both sides
    (``f`` is 0 or 1, as at p = 0 and p = 1) the proportions are equal and the p-value is 1.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("two_proportion_p_value: both samples need at least one draw")
    pooled = (kept1 + kept2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:
        return 1.0
    z = (kept1 / n1 - kept2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


# ---------------------------------------------------------------------------------------------
# Reading outputs


def _bits(t: Tensor) -> Tensor:
    """The raw bits of a float tensor, as an integer tensor of the same width."""
    return t.view(getattr(compat.import_torch(), _INT_OF_WIDTH[t.element_size()]))


def _same(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise: the same bits, or both NaN."""
    return (_bits(a) == _bits(b)) | (a.isnan() & b.isnan())


def same_bits(ours: Tensor, theirs: Tensor) -> bool:
    """Same dtype, shape and bits (NaN compared as NaN)."""
    return (
        ours.dtype == theirs.dtype
        and ours.shape == theirs.shape
        and bool(_same(ours, theirs).all())
    )


@dataclass
class Tally:
    """What a run of calls kept, counted in mask draws (elements, or channels)."""

    kept: int = 0
    draws: int = 0
    stray: int = 0  # elements equal to neither torch's kept nor its dropped value
    split: int = 0  # draws (channels) partly kept, partly dropped

    @property
    def rate(self) -> float:
        return self.kept / self.draws if self.draws else math.nan

    @property
    def clean(self) -> bool:
        return self.stray == 0 and self.split == 0


def _aten_formula(torch: Torch, x: Tensor, noise: Tensor, p: float, alpha: bool) -> Tensor:
    """ATen's ``_dropout_impl`` for 0 < p < 1 with a given noise (1 kept, 0 dropped).

    Torch's own arithmetic, op for op, in the input's dtype::

        alpha:  a = 1/sqrt((A*A*p + 1)(1 - p)); b = (noise - 1)(A*a) + A*a*p
                output = input * (noise * a) + b
        plain:  output = input * (noise / (1 - p))
    """
    if alpha:
        a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
        b = noise.add(-1).mul_(_ALPHA * a).add_(_ALPHA * a * p)
        noise.mul_(a)
        return torch.mul(x, noise).add_(b)
    noise.div_(1 - p)
    return torch.mul(x, noise)


class Reference:
    """The value torch gives each element of an input when its draw is kept, and when dropped.

    Computed with torch's own ops: for 0 < p < 1, ATen's formula with an all-ones and an
    all-zeros noise; for p = 0 torch returns the input (nothing is dropped); for p = 1 it
    multiplies by zero (nothing is kept). Elements whose two values are the same (NaN or -0.0
    inputs) say nothing about the mask and are left out of the counts.
    """

    def __init__(self, torch: Torch, x: Tensor, p: float, alpha: bool, case: Case) -> None:
        self.case = case
        self.kept: Tensor | None = None
        self.dropped: Tensor | None = None
        if p < 1:
            noise = torch.ones_like(x)
            self.kept = x.clone() if p == 0 else _aten_formula(torch, x, noise, p, alpha)
        if p > 0:
            zero = torch.zeros((), dtype=x.dtype)
            noise = torch.zeros_like(x)
            self.dropped = x * zero if p == 1 else _aten_formula(torch, x, noise, p, alpha)
        if self.kept is None or self.dropped is None:
            self.telling = torch.ones_like(x, dtype=torch.bool)
        else:
            self.telling = ~_same(self.kept, self.dropped)
        self._draws_told = self._per_draw(self.telling).any(1)

    def _per_draw(self, t: Tensor) -> Tensor:
        return t.reshape(self.case.units(), -1)

    def _matches(self, out: Tensor, value: Tensor | None) -> Tensor:
        return out.new_zeros(out.shape, dtype=bool) if value is None else _same(out, value)

    def tally(self, out: Tensor, into: Tally) -> None:
        """Add one output's kept draws, draws, stray elements and split draws to ``into``."""
        kept, dropped = self._matches(out, self.kept), self._matches(out, self.dropped)
        into.stray += int((~(kept | dropped)).sum())
        told, silent = self._draws_told, self._per_draw(~self.telling)
        kept_draws = self._per_draw(kept).logical_or(silent).all(1) & told
        dropped_draws = self._per_draw(dropped).logical_or(silent).all(1) & told
        n_kept, n_dropped, n_told = (int(t.sum()) for t in (kept_draws, dropped_draws, told))
        into.kept += n_kept
        into.draws += n_told
        into.split += n_told - n_kept - n_dropped


# ---------------------------------------------------------------------------------------------
# Running one row


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
    p_value: float | None = None  # mlx mode only
    time_theirs: float = math.nan  # median seconds per call
    time_ours: float = math.nan
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def sample_input(torch: Torch, shape: tuple[int, ...], dtype: str, seed: int) -> Tensor:
    """Values of magnitude 0.5 to 1.5 and either sign, with NaN, inf, -inf and -0.0 up front.

    Magnitudes stay away from 0 and from alpha dropout's fixed point -A, so that an element's
    kept and dropped values differ and the output tells which it was.
    """
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    sign = torch.randint(0, 2, shape, generator=g, dtype=torch.float64) * 2 - 1
    x = (magnitude * sign).to(getattr(torch, dtype))
    specials = torch.tensor([math.nan, math.inf, -math.inf, -0.0], dtype=x.dtype)
    count = min(4, x.numel())
    x.view(-1)[:count] = specials[:count]
    return x


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
        for _ in range(_calls(grid, case, p, mode)):
            out_theirs = _timed(lambda: theirs_fn(x), times_theirs)
            out_ours = compat.to_torch(_timed(ours, times_ours))
            _check_like(out_ours, out_theirs)
            reference.tally(out_theirs, row.theirs)
            reference.tally(out_ours, row.ours)
            if mode == "torch" and not same_bits(out_ours, out_theirs):
                row.bit_exact = False
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
            row.problems.append("not bit-exact")
        return
    row.p_value = two_proportion_p_value(
        row.theirs.kept, row.theirs.draws, row.ours.kept, row.ours.draws
    )
    if row.p_value < P_VALUE_THRESHOLD:
        row.problems.append(f"keep rates differ (p-value < {P_VALUE_THRESHOLD:g})")


# ---------------------------------------------------------------------------------------------
# Progress and the table


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
        f"{row.time_theirs * 1e3:.3f}",
        f"{row.time_ours * 1e3:.3f}",
        "FAIL" if row.failed else "ok",
    ]


def format_table(rows: Sequence[Row]) -> list[str]:
    """The rows as aligned text lines: a header, a rule, one line per row."""
    body = [_cells(row) for row in rows]
    titles = [title for title, _ in _COLUMNS]
    widths = [max(len(cells[i]) for cells in [titles, *body]) for i in range(len(titles))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, right) in zip(cells, widths, _COLUMNS, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(titles), line(["-" * w for w in widths]), *(line(cells) for cells in body)]


def header(torch: Torch) -> str:
    return (
        f"flashdrop {flashdrop.__version__} parity report: torch {torch.__version__} vs "
        f"flashdrop on mlx {mx.__version__} ({mx.default_device().type.name} backend); "
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs"
    )


def footer(grid: Grid, rows: Sequence[Row]) -> list[str]:
    """What the columns mean, the failures in full, and the summary line (last)."""
    statistical = sum(row.mode == "mlx" for row in rows)
    statistical_bound = statistical * P_VALUE_THRESHOLD
    lines = [
        "",
        f"torch rows: rng_mode('torch'), both sides seeded alike; {grid.calls} consecutive calls"
        " compared bit for bit,",
        "  NaN compared as NaN.",
        "mlx rows:   MLX's generator; keep = fraction of kept elements (channels, for feature",
        f"  dropout), over >= {grid.draws} draws per side when 0 < p < 1. A row FAILS when the",
        f"  two-proportion z-test's p-value < {P_VALUE_THRESHOLD:g}; that threshold is the"
        " false-failure rate",
        f"  per row (normal approximation): over these {statistical} rows, at most about"
        f" {statistical_bound:.1g} in all.",
        "values:     every output element is torch's kept value (x * (1/(1-p)); alpha ops:"
        " x*a + b) or",
        "  its dropped value, rounded as torch rounds them; whole channels agree in feature"
        " dropout.",
        "ms:         median milliseconds per call; flashdrop's output evaluated (mx.eval) inside"
        " the timing;",
        "  in torch mode flashdrop draws its masks on the host (numpy's mt19937), as torch does.",
    ]
    failures = [row for row in rows if row.failed]
    if failures:
        lines += ["", "Failures:"]
        lines += [
            f"  {row.op} {row.dtype} {row.shape} p={row.p:g} {row.mode}: {'; '.join(row.problems)}"
            for row in failures
        ]
    return lines


def summary(rows: Sequence[Row]) -> str:
    exact = sum(row.mode == "torch" and not row.failed for row in rows)
    equivalent = sum(row.mode == "mlx" and not row.failed for row in rows)
    failed = sum(row.failed for row in rows)
    return (
        f"{len(rows)} rows: {exact} bit-exact, {equivalent} statistically equivalent, "
        f"{failed} failed"
    )


# ---------------------------------------------------------------------------------------------
# The plot


PLOT_HINT = (
    "--plot needs matplotlib, an optional extra of flashdrop: pip install 'flashdrop[plot]'"
    " (or pip install matplotlib)"
)


def import_pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend; ImportError when not installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Per plot row: label, torch op, flashdrop op, input shape, leading dims of one draw.
_PLOT_OPS = (
    ("F.dropout", "dropout", (64, 64), 2),
    ("F.dropout2d", "dropout2d", (16, 64, 2, 2), 2),
)
_PLOT_PS = (0.1, 0.5, 0.9)


def _per_call_keep_rates(
    torch: Torch, name: str, shape: tuple[int, ...], unit_dims: int, p: float, calls: int
) -> tuple[list[float], list[float]]:
    """Keep rate of each of ``calls`` calls on an all-ones input: torch's, then flashdrop's."""
    x = torch.ones(shape)
    xm = mx.ones(shape)
    draw_index = (slice(None),) * unit_dims + (0,) * (len(shape) - unit_dims)
    torch_fn, our_fn = getattr(torch.nn.functional, name), getattr(F, name)
    theirs = [float((torch_fn(x, p, True)[draw_index] != 0).double().mean()) for _ in range(calls)]
    with flashdrop.rng_mode("mlx"):
        ours = [(our_fn(xm, p, True)[draw_index] != 0).mean().item() for _ in range(calls)]
    return theirs, ours


def _count_bins(mean: float, sd: float, draws: int, count: int = 30) -> list[float]:
    """About ``count`` histogram bins over mean +- 4.5 sd of a keep rate of ``draws`` draws.

    A keep rate is a multiple of ``1/draws``: each bin holds the same number of those values
    (its edges fall half-way between them), so that no bin looks taller for holding more.
    """
    step = max(1, round(9 * sd * draws / count))  # kept draws per bin
    first = math.floor((mean - 4.5 * sd) * draws)
    return [(first + step * i - 0.5) / draws for i in range(count + 1)]


def draw_plot(plt: Any, torch: Torch, path: str, calls: int, seed: int) -> None:
    """Histograms of per-call keep rates, torch and flashdrop (mlx mode) side by side.

    One panel per op and p, with the binomial distribution's normal density for reference.
    """
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    fig, axes = plt.subplots(
        len(_PLOT_OPS),
        len(_PLOT_PS),
        figsize=(5 * len(_PLOT_PS), 4 * len(_PLOT_OPS)),
        squeeze=False,
    )
    for (label, name, shape, unit_dims), panel_row in zip(_PLOT_OPS, axes, strict=True):
        draws = math.prod(shape[:unit_dims])
        for p, ax in zip(_PLOT_PS, panel_row, strict=True):
            theirs, ours = _per_call_keep_rates(torch, name, shape, unit_dims, p, calls)
            sd = math.sqrt(p * (1 - p) / draws)
            bins = _count_bins(1 - p, sd, draws)
            low, high = bins[0], bins[-1]
            ax.hist(
                [theirs, ours],
                bins=bins,
                label=["torch", "flashdrop (mlx mode)"],
                color=["tab:orange", "tab:blue"],
            )
            grid_x = [low + (high - low) * i / 200 for i in range(201)]
            scale = calls * (bins[1] - bins[0]) / (sd * math.sqrt(2 * math.pi))
            ax.plot(
                grid_x,
                [scale * math.exp(-(((v - (1 - p)) / sd) ** 2) / 2) for v in grid_x],
                color="black",
                linewidth=1,
                label="binomial (normal approx.)",
            )
            ax.axvline(1 - p, color="gray", linestyle=":")
            unit = "channels" if unit_dims < len(shape) else "elements"
            ax.set_title(f"{label}, p={p:g}: {draws} {unit} per call", fontsize=10)
            ax.set_xlabel("keep rate of one call")
            ax.set_ylabel(f"calls (of {calls})")
            ax.legend(fontsize=8)
    fig.suptitle(
        f"Per-call keep rates: torch {torch.__version__} vs flashdrop {flashdrop.__version__}"
        f" (mlx mode), {calls} calls each"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flashdrop.parity",
        description="Run every torch dropout function and module next to its flashdrop twin "
        "and report bit-exactness (torch mode) and statistical equivalence (mlx mode).",
    )
    parser.add_argument("--quick", action="store_true", help="a small grid, in seconds")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the keep-rate distributions (needs matplotlib)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; return 0 when every row passes, 1 when any fails, 2 when a needed
    package (torch, or matplotlib for ``--plot``) is missing."""
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

    rows = _run_grid(torch, grid, args.seed)
    lines = [header(torch), "", *format_table(rows), *footer(grid, rows)]
    if plt is not None:
        print(f"drawing keep-rate histograms to {args.plot} ...", file=sys.stderr)
        draw_plot(plt, torch, args.plot, grid.plot_calls, args.seed)
        lines.append(f"keep-rate plot: {args.plot}")
    lines.append(summary(rows))
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
