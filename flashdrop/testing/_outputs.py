"""Inputs and outputs of the helpers' calls: fresh copies for each call, outputs paired by
position, a differing element written out, and the AssertionError the helpers raise."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from flashdrop import compat

__all__ = [
    "SHOWN",
    "Tensor",
    "as_tensors",
    "call_args",
    "failure",
    "paired",
    "positions",
    "value_text",
]

Tensor = Any  # a torch.Tensor; torch is imported only when a helper runs

# How many differing positions a failure message lists.
SHOWN = 5


def as_tensors(inputs: tuple[Any, ...]) -> list[Any]:
    """The inputs with every ``mx.array`` converted to a torch tensor (the originals)."""
    return [compat.to_torch(v) if isinstance(v, mx.array) else v for v in inputs]


def call_args(originals: list[Any]) -> tuple[list[Any], list[Any]]:
    """Fresh arguments for one call: (torch's, the port's), tensors copied for each call."""
    torch = compat.import_torch()
    theirs, ours = [], []
    for value in originals:
        if isinstance(value, torch.Tensor):
            theirs.append(value.detach().clone())
            ours.append(compat.to_mlx(value))
        else:
            theirs.append(value)
            ours.append(value)
    return theirs, ours


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def paired(
    theirs: Any, ours: Any, header: str, where: str = "output", table: str = ""
) -> list[tuple]:
    """``(where, torch's tensor, the port's as a tensor)`` for each output, matched by position.

    Raises an AssertionError, prefixed with ``header``, when the two outputs do not have the same
    structure, or a pair differs in dtype or shape.
    """
    torch = compat.import_torch()
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, mx.array):
            raise failure(
                f"{header}: {where} is a torch.Tensor from torch, but a {_kind(ours)} from the "
                "port, where an mlx.core.array was expected",
                [],
                table,
            )
        t, o = theirs.detach().cpu(), compat.to_torch(ours)
        if t.dtype != o.dtype or t.shape != o.shape:
            raise failure(
                f"{header}: {where} is {str(t.dtype)[6:]} of shape {tuple(t.shape)} from torch, "
                f"but {str(o.dtype)[6:]} of shape {tuple(o.shape)} from the port",
                [],
                table,
            )
        return [(where, t, o)]
    keys = _keys(theirs)
    if keys is not None:
        if _keys(ours) != keys or isinstance(ours, dict) != isinstance(theirs, dict):
            raise failure(
                f"{header}: {where} is a {_kind(theirs)} of {len(theirs)} from torch, but "
                f"a {_kind(ours)} from the port",
                [],
                table,
            )
        pairs = []
        for key in keys:
            pairs += paired(theirs[key], ours[key], header, f"{where}[{key!r}]", table)
        return pairs
    if theirs != ours:
        raise failure(
            f"{header}: {where} is {theirs!r} from torch, {ours!r} from the port", [], table
        )
    return []


def _keys(value: Any) -> list[Any] | None:
    """The keys of a dict, the indices of a tuple or list; None for anything else."""
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, (tuple, list)):
        return list(range(len(value)))
    return None


def positions(mask: Tensor) -> list[tuple[int, ...]]:
    """The first positions (row-major) where ``mask`` is True."""
    return [tuple(index) for index in mask.nonzero()[:SHOWN].tolist()]


def value_text(t: Tensor, position: tuple[int, ...]) -> str:
    """One element, written so that two different values of its dtype read differently."""
    value = t[position].item()
    if t.is_floating_point():
        return repr(value) if t.element_size() == 8 else str(float(f"{value:.9g}"))
    return repr(value)


def failure(first: str, lines: list[str], table: str) -> AssertionError:
    """The AssertionError of a helper: its message, and the draw table the plugin shows."""
    error = AssertionError("\n".join([first, *lines]))
    error.flashdrop_draws = table  # type: ignore[attr-defined]
    return error
