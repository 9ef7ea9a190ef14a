"""The torch reference: the values torch gives each element, kept and dropped, and the input.

An output is read against it: which draws were kept, which dropped, and whether any element is
a value torch could not have produced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flashdrop._comparison import same, same_bits
from flashdrop.parity._types import Tensor, Torch
from flashdrop.parity.grid import Case

__all__ = ["Reference", "Tally", "same_bits", "sample_input"]

# SELU's scale * alpha, as ATen's alpha dropout writes it.
_ALPHA = 1.7580993408473766


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
            self.telling = ~same(self.kept, self.dropped)
        self._draws_told = self._per_draw(self.telling).any(1)

    def _per_draw(self, t: Tensor) -> Tensor:
        return t.reshape(self.case.units(), -1)

    def _matches(self, out: Tensor, value: Tensor | None) -> Tensor:
        return out.new_zeros(out.shape, dtype=bool) if value is None else same(out, value)

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
