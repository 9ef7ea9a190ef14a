"""The grid: which ops, shapes, dtypes, p and random modes the report runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import flashdrop.nn.functional as F
from flashdrop import nn as fnn
from flashdrop._family import MEMBERS
from flashdrop.parity._types import DropoutFn, Torch

__all__ = ["FULL", "MODES", "OPS", "QUICK", "Case", "Grid", "Op"]


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


def _ops() -> tuple[Op, ...]:
    """torch.nn's six functions, then its six modules, each with the shapes it accepts: the
    element-wise ops first, then the channel ops, each in the family's order."""
    members = sorted((m for m in MEMBERS if m.in_torch_nn), key=lambda m: m.channel)
    functions = [
        Op(
            m.function,
            module=False,
            alpha=m.alpha,
            cases=_FEATURE_CASES.get(m.function, _ELEMENTWISE),
        )
        for m in members
    ]
    modules = [
        Op(m.module, module=True, alpha=m.alpha, cases=f.cases)
        for m, f in zip(members, functions, strict=True)
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
