"""Module porting: the flashdrop twin of a torch dropout module, and a model's dropout layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mlx.nn

from flashdrop import _checks
from flashdrop import nn as fnn
from flashdrop._family import MEMBERS, Member
from flashdrop.compat import porting_layers
from flashdrop.compat.lazy_torch import import_torch

if TYPE_CHECKING:
    import torch

__all__ = ["dropout_layers", "port_dropout"]


def _matches(member: Member, cls: type) -> bool:
    """Whether ``cls`` is ``member``'s original or its flashdrop twin (not a subclass of either).

    The original is recognised by its name and the package it is defined in, so that
    torchvision and timm need not be installed (nor imported) to be recognised.
    """
    package = member.package or member.original.rpartition(".")[0]
    module = cls.__module__
    in_package = module == package or module.startswith(package + ".")
    return (cls.__name__ == member.module and in_package) or cls is _twin_class(member)


def _twin_class(member: Member) -> type:
    """The flashdrop class of ``member``, built from the original's ``settings``."""
    return getattr(fnn, member.module)


# Every dropout module port_dropout accepts: the family's members that have an original.
_PORTABLE = tuple(m for m in MEMBERS if m.original is not None)


def _portable_member(cls: type) -> Member | None:
    """The member of the dropout family that ``cls`` (a torch, torchvision or timm dropout
    class, or a flashdrop twin), or the nearest of its base classes, is; ``None`` if none is."""
    for klass in cls.__mro__:
        for member in _PORTABLE:
            if _matches(member, klass):
                return member
    return None


def port_dropout(module: Any, *, channel_dim: int = 1) -> mlx.nn.Module:
    """The flashdrop twin of a torch dropout module, with the same settings and training flag.

    torch's six dropout modules, ``torchvision.ops.StochasticDepth``, ``DropBlock2d`` and
    ``DropBlock3d``, and timm's ``DropPath`` are accepted, and torch's layers that drop inside
    themselves: ``MultiheadAttention``, ``RNN``, ``LSTM``, ``GRU`` and the Transformer family
    (``TransformerEncoderLayer`` ... ``Transformer``), whose twins get the module's settings and
    its weights (its ``state_dict()``, loaded with no renaming); torchvision and timm classes are
    recognised by name and package, so neither needs to be installed here. The twin gets the
    module's ``p`` (``drop_prob``), ``inplace``, ``mode``, ``block_size``, ``eps`` and
    ``scale_by_keep``, whichever it has, and its ``training`` flag; in torch random mode it then
    draws the very mask the module draws after the same seed.

    Args:
        module: an instance of one of the classes above (not of a subclass: its ``forward``
            may do anything).
        channel_dim: where the port finds channels: ``1`` (torch's channels-first layout, the
            default) or ``-1`` (channels last, as MLX's convolutions give). Passed to the
            channel layers (``Dropout1d/2d/3d``, ``FeatureAlphaDropout``); the element- and
            sample-wise layers do not depend on the layout; ``DropBlock2d/3d`` are channels-first
            only. Keyword only.

    Returns:
        A new ``flashdrop.nn`` module of the class with the same name.

    Raises:
        TypeError: ``module`` is of any other class; the message lists those accepted.
        ValueError: ``channel_dim`` is neither 1 nor -1, or is -1 for ``DropBlock2d/3d``.

    Example::

        >>> twin = compat.port_dropout(torch.nn.Dropout2d(0.2).eval(), channel_dim=-1)
        >>> twin, twin.training
        (Dropout2d(p=0.2, inplace=False, channel_dim=-1), False)
    """
    _checks.check_channel_dim("port_dropout", channel_dim)
    cls = type(module)
    if porting_layers.torch_layer_name(cls) is not None:  # attention, transformers, RNNs
        return porting_layers.port_layer(module)
    twin = next((m for m in _PORTABLE if _matches(m, cls)), None)
    if twin is None or cls is _twin_class(twin):
        got = f"{cls.__module__}.{cls.__qualname__}"
        base = _portable_member(cls)
        if base is not None and cls is _twin_class(base):
            got += ", which is a flashdrop module already"
        elif base is not None:
            got += f", a subclass of {base.original} whose forward may differ from it"
        layers = (f"torch.nn.{name}" for name in porting_layers.LAYERS)
        accepted = ", ".join([*(m.original for m in _PORTABLE), *layers])
        raise TypeError(f"port_dropout accepts {accepted} modules, but got {got}")
    if twin.layout == "first" and channel_dim != 1:
        raise ValueError(
            f"port_dropout: {twin.module} drops blocks of channels-first inputs only, so "
            f"channel_dim must be 1, but got {channel_dim!r}"
        )
    args = [getattr(module, name) for name in twin.settings]
    kwargs = {"channel_dim": channel_dim} if twin.channel else {}
    ported = _twin_class(twin)(*args, **kwargs)
    ported.training = module.training
    return ported


def dropout_layers(torch_model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The dropout modules of a torch model, with their qualified names, in registration order.

    The order is ``torch_model.named_modules()``'s: the order in which the modules were
    assigned in ``__init__``, which is often not the order they are called in
    (``TransformerEncoderLayer`` registers ``dropout``, ``dropout1``, ``dropout2`` and calls
    ``dropout1`` first). A module registered under two names is listed once. Every dropout
    module :func:`port_dropout` accepts is listed, and so are instances of their subclasses;
    so are ``MultiheadAttention``, ``RNN``, ``LSTM`` and ``GRU``, which drop inside themselves
    (not the Transformer layers: they drop through these). Dropout that is no module
    (``scaled_dot_product_attention``, ``F.dropout`` calls) is not: for the draws in call
    order, with those, use :func:`flashdrop.testing.dropout_sites`.

    Args:
        torch_model: a ``torch.nn.Module``; if it is a dropout module itself, it is listed with
            the name ``""``.

    Returns:
        A list of ``(qualified_name, module)``, e.g. ``[("encoder.0.dropout", Dropout(...))]``.

    Raises:
        TypeError: ``torch_model`` is not a ``torch.nn.Module``.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
        >>> compat.dropout_layers(model)
        [('1', Dropout(p=0.1, inplace=False))]
        >>> port_layers = [compat.port_dropout(m) for _, m in compat.dropout_layers(model)]
    """
    torch = import_torch()
    if not isinstance(torch_model, torch.nn.Module):
        raise TypeError(
            f"dropout_layers expects a torch.nn.Module, but got {type(torch_model).__name__}"
        )
    return [
        (name, module)
        for name, module in torch_model.named_modules()
        if _portable_member(type(module)) is not None
        or porting_layers.torch_layer_name(type(module)) in porting_layers.DROPPING_INSIDE
    ]
