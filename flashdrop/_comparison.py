"""What "the same as torch" means for an output: the same bits (NaN equals NaN), or within
tolerances. flashdrop.testing and the parity report compare with these, and so do the tests.

torch does not define which NaN ``nan * 0`` gives, so any two NaNs are the same; every other
value must have the very bits. Works on torch tensors; torch comes from :mod:`flashdrop.compat`.
"""

from __future__ import annotations

from typing import Any

from flashdrop import compat

__all__ = ["differing", "same", "same_bits"]

Tensor = Any  # a torch.Tensor; torch is imported only when a comparison runs

_INT_OF_WIDTH = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}  # torch dtype names, by bytes


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
