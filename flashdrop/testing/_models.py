"""The model behind what a helper was given: a module, or a callable around one.

Hugging Face models and models taking keyword arguments are often checked through a lambda
(``lambda x: model(x, use_cache=False)``), a ``functools.partial`` or a bound method
(``model.generate_logits``). The helpers read the model's training flags and dropout layers for
their hints, so they look through these wrappers to the module inside.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import mlx.nn
from mlx.utils import tree_flatten

from flashdrop import compat
from flashdrop import nn as fnn
from flashdrop._family import MEMBERS

__all__ = ["Models", "flashdrop_layers", "is_mlx_dropout", "module_in"]

# How many wrappers deep the search goes (a lambda calling a helper calling the model: 2).
_DEPTH = 3
# Libraries' functions are no wrappers of a user's model: their globals are not searched.
_LIBRARIES = ("torch", "mlx", "flashdrop", "numpy")


def module_in(obj: Any, kind: type) -> Any | None:
    """The first instance of ``kind`` (``torch.nn.Module``, ``mlx.nn.Module``) that ``obj`` is
    or calls: ``obj`` itself; a bound method's ``self``; a ``functools.partial``'s function,
    then its arguments; a Python function's (a lambda's) closure, then the globals its code
    names; each looked through in turn, up to three wrappers deep. ``None`` if there is none."""
    seen: set[int] = set()

    def find(value: Any, depth: int) -> Any | None:
        if isinstance(value, kind):
            return value
        if depth == _DEPTH or id(value) in seen:
            return None
        seen.add(id(value))
        for inner in _wrapped(value):
            found = find(inner, depth + 1)
            if found is not None:
                return found
        return None

    return find(obj, 0)


def _wrapped(value: Any) -> list[Any]:
    """What a wrapper calls, in the order :func:`module_in` looks: empty for anything else."""
    if isinstance(value, functools.partial):
        return [value.func, *value.args, *value.keywords.values()]
    if inspect.ismethod(value):
        return [value.__self__]
    if inspect.isfunction(value) and (value.__module__ or "").split(".")[0] not in _LIBRARIES:
        closure = []
        for cell in value.__closure__ or ():
            try:
                closure.append(cell.cell_contents)
            except ValueError:  # a cell not yet filled
                continue
        names = value.__code__.co_names
        return closure + [value.__globals__[name] for name in names if name in value.__globals__]
    return []


@dataclass
class Models:
    """The two models a helper compares, found through their wrappers (:func:`module_in`), and
    their modules by path (a draw's ``module``): where hints read training flags and layers."""

    torch: Any  # a torch.nn.Module, or None (a function)
    port: mlx.nn.Module | None
    _paths: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, torch_obj: Any, port_obj: Any) -> Models:
        torch = compat.import_torch()
        return cls(module_in(torch_obj, torch.nn.Module), module_in(port_obj, mlx.nn.Module))

    def torch_module(self, path: str | None) -> Any | None:
        """torch's module at ``path`` (``""``: the model itself); ``None`` if it has none."""
        return self._at(self.torch, path)

    def port_module(self, path: str | None) -> mlx.nn.Module | None:
        """The port's module at ``path``; ``None`` if it has none."""
        return self._at(self.port, path)

    def torch_layers(self) -> list[tuple[str, Any]]:
        """torch's dropout modules, with their paths (:func:`compat.dropout_layers`)."""
        return [] if self.torch is None else compat.dropout_layers(self.torch)

    def port_layers(self) -> list[tuple[str, mlx.nn.Module]]:
        """The port's dropout modules, with their paths (:func:`flashdrop_layers`)."""
        return [] if self.port is None else flashdrop_layers(self.port)

    def _at(self, model: Any, path: str | None) -> Any | None:
        if model is None or path is None:
            return None
        paths = self._paths.get(id(model))
        if paths is None:
            paths = self._paths[id(model)] = dict(model.named_modules())
        return paths.get(path)


def _is_module(value: Any) -> bool:
    return isinstance(value, mlx.nn.Module)


def flashdrop_layers(model: mlx.nn.Module) -> list[tuple[str, mlx.nn.Module]]:
    """The dropout-like modules of an MLX model, in registration order, with their names: MLX's,
    and flashdrop's twins of the originals compat.port_dropout ports (and their subclasses)."""
    twins = tuple(getattr(fnn, m.module) for m in MEMBERS if m.original is not None)
    found = []

    def visit(name: str, module: mlx.nn.Module) -> None:
        if isinstance(module, twins) or is_mlx_dropout(module):
            found.append((name, module))
        for child_name, child in tree_flatten(module.children(), is_leaf=_is_module):
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return found


def is_mlx_dropout(module: Any) -> bool:
    """MLX's own dropout layers, which draw from MLX's stream even in flashdrop's torch mode."""
    cls = type(module)
    return cls.__module__.startswith("mlx.nn") and cls.__name__.startswith("Dropout")
