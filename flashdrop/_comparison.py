"""What "the same as torch" means for an output: the same bits (NaN equals NaN), or within
tolerances (by default ``torch.testing.assert_close``'s for the dtype). flashdrop.testing and the
parity report compare with these, and so do the tests.

torch does not define which NaN ``nan * 0`` gives, so any two NaNs are the same; every other
value must have the very bits. Works on torch tensors; torch comes from :mod:`flashdrop.compat`.
"""

from __future__ import annotations

from typing import Any

from flashdrop import compat

__all__ = ["default_tolerances", "differing", "same", "same_bits", "tolerances"]

Tensor = Any  # a torch.Tensor; torch is imported only when a comparison runs

_INT_OF_WIDTH = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}  # torch dtype names, by bytes

# torch.testing.assert_close's default (rtol, atol) by dtype name; (0, 0) for the others.
_DEFAULT_TOLERANCES = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex32": (1e-3, 1e-5),
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}


def default_tolerances(dtype: Any) -> tuple[float, float]:
    """``(rtol, atol)`` of ``torch.testing.assert_close`` for a torch dtype: ``(1.3e-6, 1e-5)``
    for float32, ``(1e-7, 1e-7)`` for float64, ``(1e-3, 1e-5)`` for float16, ``(1.6e-2, 1e-5)``
    for bfloat16; ``(0, 0)`` for integers and bool, which must be equal."""
    return _DEFAULT_TOLERANCES.get(str(dtype).removeprefix("torch."), (0.0, 0.0))


def tolerances(rtol: float | None, atol: float | None, caller: str) -> tuple[float, float] | None:
    """The tolerances a helper was given, checked: ``None`` for the defaults of each output's
    dtype (neither given), else ``(rtol, atol)``, one not given being 0.

    Raises:
        ValueError: a tolerance is negative.
    """
    if rtol is None and atol is None:
        return None
    rtol, atol = rtol or 0.0, atol or 0.0
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"{caller}: rtol and atol must be >= 0, but got rtol={rtol}, atol={atol}")
    return rtol, atol


def _bits(t: Tensor) -> Tensor:
    """The raw bits of a tensor, as an integer tensor of the same width."""
    return t.view(getattr(compat.import_torch(), _INT_OF_WIDTH[t.element_size()]))


def same(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise: the same bits, or both NaN."""
    return (_bits(a) == _bits(b)) | (a.isnan() & b.isnan())


def same_bits(ours: Tensor, theirs: Tensor) -> bool:
    """Same dtype, shape and bits (NaN compared as NaN)."""
    return (
        ours.dtype == theirs.dtype and ours.shape == theirs.shape and bool(same(ours, theirs).all())
    )


def differing(theirs: Tensor, ours: Tensor, rtol: float, atol: float) -> Tensor:
    """Where ``ours`` differs from torch's ``theirs``: in its bits (NaN equals NaN) when both
    tolerances are 0, else by more than ``atol + rtol * |theirs|`` (NaN equals NaN)."""
    if rtol == atol == 0:
        return ~same(ours, theirs)
    torch = compat.import_torch()
    wide = torch.complex128 if theirs.is_complex() else torch.float64
    return ~torch.isclose(ours.to(wide), theirs.to(wide), rtol, atol, equal_nan=True)
