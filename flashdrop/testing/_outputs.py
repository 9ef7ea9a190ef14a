"""Inputs and outputs of the helpers' calls: fresh copies for each call, outputs paired by
position, a differing element written out, and the AssertionError the helpers raise."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import mlx.core as mx

from flashdrop import compat

__all__ = [
    "SHOWN",
    "Inputs",
    "Tensor",
    "as_tensors",
    "call_args",
    "end_with",
    "failure",
    "paired",
    "positions",
    "value_text",
]

Tensor = Any  # a torch.Tensor; torch is imported only when a helper runs

# How many differing positions a failure message lists.
SHOWN = 5


Inputs = tuple[list[Any], dict[str, Any]]  # positional and keyword arguments


def as_tensors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Inputs:
    """The inputs with every ``mx.array`` converted to a torch tensor (the originals)."""

    def tensor(value: Any) -> Any:
        return compat.to_torch(value) if isinstance(value, mx.array) else value

    return [tensor(v) for v in args], {k: tensor(v) for k, v in kwargs.items()}


def call_args(originals: Inputs) -> tuple[Inputs, Inputs]:
    """Fresh arguments for one call: (torch's, the port's), tensors copied for each call."""
    torch = compat.import_torch()

    def fresh(value: Any) -> tuple[Any, Any]:
        if isinstance(value, torch.Tensor):
            return value.detach().clone(), compat.to_mlx(value)
        return value, value

    args, kwargs = originals
    positional = [fresh(v) for v in args]
    keywords = {k: fresh(v) for k, v in kwargs.items()}
    return (
        ([t for t, _ in positional], {k: t for k, (t, _) in keywords.items()}),
        ([o for _, o in positional], {k: o for k, (_, o) in keywords.items()}),
    )


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def paired(
    theirs: Any, ours: Any, header: str, where: str = "output", table: str = ""
) -> list[tuple]:
    """``(where, torch's tensor, the port's as a tensor)`` for each output, matched by position.

    Outputs may be tensors (arrays for the port), tuples and lists of them (matched by
    position), or mappings and dataclasses of them (a Hugging Face ``ModelOutput``, a dict, a
    dataclass: matched by field name; a field holding ``None`` counts as absent); anything else
    must be equal.

    Raises an AssertionError, prefixed with ``header``, when the two outputs do not have the same
    structure, or a pair differs in dtype or shape.
    """
    __tracebackhide__ = True
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
    fields = _fields(theirs)
    if fields is not None:
        named = not isinstance(theirs, (tuple, list))
        if named:
            return _paired_fields(fields, _fields(ours), theirs, ours, header, where, table)
        if not isinstance(ours, (tuple, list)) or len(ours) != len(theirs):
            raise failure(
                f"{header}: {where} is a {_kind(theirs)} of {len(theirs)} from torch, but "
                f"{_count(ours)} from the port",
                [],
                table,
            )
        return [
            pair
            for k, (t, o) in enumerate(zip(theirs, ours, strict=True))
            for pair in paired(t, o, header, f"{where}[{k}]", table)
        ]
    if theirs != ours:
        raise failure(
            f"{header}: {where} is {theirs!r} from torch, {ours!r} from the port", [], table
        )
    return []


def _paired_fields(
    theirs: dict[str, Any],
    ours: dict[str, Any] | None,
    torch_value: Any,
    port_value: Any,
    header: str,
    where: str,
    table: str,
) -> list[tuple]:
    """:func:`paired` for named fields: a mapping's (a Hugging Face ``ModelOutput``) or a
    dataclass's, matched by name against the port's mapping or dataclass."""
    __tracebackhide__ = True
    if ours is None or set(ours) != set(theirs):
        found = "" if ours is None else f" with the fields {sorted(ours)}"
        raise failure(
            f"{header}: {where} is a {_kind(torch_value)} with the fields {sorted(theirs)} from "
            f"torch, but {_count(port_value)}{found} from the port",
            [],
            table,
        )
    item = "[{!r}]" if isinstance(torch_value, Mapping) else ".{}"
    return [
        pair
        for name, value in theirs.items()
        for pair in paired(value, ours[name], header, where + item.format(name), table)
    ]


def _count(value: Any) -> str:
    """``a builtins.list of 2`` (with its length if it has one)."""
    size = f" of {len(value)}" if isinstance(value, (tuple, list)) else ""
    return f"a {_kind(value)}{size}"


def _fields(value: Any) -> Any:
    """The parts of a structured output, compared one by one: a tuple or list itself; a
    mapping's or a dataclass's fields as a dict, those holding ``None`` left out (a Hugging Face
    ``ModelOutput`` leaves them out of its keys); ``None`` for anything else."""
    if isinstance(value, (tuple, list)):
        return value
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if v is not None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {k: v for k, v in items if v is not None}
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


def end_with(error: AssertionError, line: str) -> None:
    """Add ``line`` to the end of the message of ``error``, a helper's (its table kept)."""
    error.args = (f"{error}\n{line}", *error.args[1:])
