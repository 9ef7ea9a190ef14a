"""The statistics of :func:`~flashdrop.testing.assert_statistically_equivalent`: per call, of each
output and of each draw's mask; their means, standard errors and the z-test between two sides."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flashdrop import compat
from flashdrop._family import named
from flashdrop.testing._outputs import Tensor

__all__ = [
    "is_alpha",
    "mask_statistics",
    "mean_and_error",
    "output_statistics",
    "z_test_p_value",
]


def is_alpha(torch_obj: Any) -> bool:
    """Whether ``torch_obj`` is one of torch's alpha dropout functions or modules (which drop to
    alpha dropout's value rather than to 0)."""
    target = getattr(torch_obj, "func", torch_obj)  # functools.partial
    name = getattr(target, "__name__", None) or type(target).__name__
    member = named(name)
    return member is not None and member.alpha


def _dropped(t: Tensor, alpha: bool) -> Tensor:
    """Where an output shows a dropped element: exact zeros, or alpha dropout's dropped value
    (the most common value, if it occurs twice or more)."""
    if not alpha or t.numel() == 0 or t.is_complex():
        return t == 0
    values, counts = t.double().flatten().unique(return_counts=True)
    if counts.max() < 2:
        return t.new_zeros(t.shape, dtype=bool)
    return t.double() == values[counts.argmax()]


def output_statistics(t: Tensor, alpha: bool) -> dict[str, float]:
    """One call's statistics of one output (the same keys for equal shapes)."""
    torch = compat.import_torch()
    dropped = _dropped(t, alpha)
    stats = {"drop rate": float(dropped.double().mean()) if t.numel() else 0.0}
    for dim, size in enumerate(t.shape):
        if size > 1:
            alike = dropped.narrow(dim, 0, size - 1) == dropped.narrow(dim, 1, size - 1)
            stats[f"neighbours along dim {dim} dropped alike"] = float(alike.double().mean())
    x = torch.view_as_real(t) if t.is_complex() else t.double()
    finite = x[x.isfinite()].double()
    stats["mean"] = float(finite.mean()) if finite.numel() else 0.0
    stats["variance"] = float(finite.var(unbiased=False)) if finite.numel() else 0.0
    return stats


def mask_statistics(keep: np.ndarray, drawn: tuple[int, ...]) -> dict[str, float]:
    """One call's statistics of one draw's mask, laid out as ``drawn`` (the same keys for
    equal shapes)."""
    keep = keep.reshape(drawn)
    stats = {"keep rate": float(keep.mean()) if keep.size else 0.0}
    for dim, size in enumerate(drawn):
        if size > 1:
            alike = np.take(keep, range(size - 1), dim) == np.take(keep, range(1, size), dim)
            stats[f"neighbours along drawn dim {dim} kept alike"] = float(alike.mean())
    return stats


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The sample mean and its estimated standard error."""
    n = len(values)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def z_test_p_value(m1: float, se1: float, m2: float, se2: float) -> float:
    """Two-sided p-value that two independent means are equal (normal approximation)."""
    error = math.hypot(se1, se2)
    if error == 0:
        return 1.0 if m1 == m2 else 0.0
    return math.erfc(abs(m1 - m2) / error / math.sqrt(2))
