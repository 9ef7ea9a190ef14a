"""compat: the bridge between torch and flashdrop, tensors and random state.

This is the only place in the project that imports torch, and it does so lazily, inside the
functions: ``import compat`` works without torch installed, and torch is loaded on the first call.

- :func:`to_mlx` and :func:`to_torch` convert tensors and arrays, bit for bit.
- :func:`copy_rng_from_torch` and :func:`copy_rng_to_torch` hand torch's CPU generator state to
  flashdrop's ``"torch"`` random mode and back, so the two can draw from one stream in turn.
- :func:`port_dropout` turns a torch dropout module into its flashdrop twin, and
  :func:`dropout_layers` lists the dropout modules of a torch model, so a port can be built and
  checked layer by layer.
- :func:`record_torch_draws` records every draw of torch's CPU generator, as
  :func:`flashdrop.testing.record_draws` records flashdrop's.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn
import numpy as np

from flashdrop import _checks, _recording
from flashdrop import nn as fnn
from flashdrop._random import torch_generator

if TYPE_CHECKING:
    import torch

__all__ = [
    "copy_rng_from_torch",
    "copy_rng_to_torch",
    "dropout_layers",
    "import_torch",
    "port_dropout",
    "record_torch_draws",
    "to_mlx",
    "to_torch",
]

# The one table of dtype correspondences: torch's name for the dtype, MLX's dtype, and, where
# the dtype cannot cross numpy as itself, the integer dtype of the same width whose bits carry it
# (reinterpreted, never converted, so every bit survives: NaN payloads, -0.0, subnormals).
# bfloat16: numpy has none. uint64: MLX hands numpy an `unsigned long long` array, which
# torch.from_numpy refuses; int64 crosses fine.
_DTYPE_TABLE: tuple[tuple[str, mx.Dtype, str | None], ...] = (
    ("bool", mx.bool_, None),
    ("uint8", mx.uint8, None),
    ("uint16", mx.uint16, None),
    ("uint32", mx.uint32, None),
    ("uint64", mx.uint64, "int64"),
    ("int8", mx.int8, None),
    ("int16", mx.int16, None),
    ("int32", mx.int32, None),
    ("int64", mx.int64, None),
    ("float16", mx.float16, None),
    ("bfloat16", mx.bfloat16, "int16"),
    ("float32", mx.float32, None),
    ("float64", mx.float64, None),
    ("complex64", mx.complex64, None),
)


@dataclass(frozen=True)
class _DtypePair:
    """One row of the table, resolved to torch's dtype objects."""

    torch_dtype: torch.dtype
    mlx_dtype: mx.Dtype
    # What crosses numpy: the dtypes themselves, or the same-width integer carrier of the table.
    torch_carrier: torch.dtype
    mlx_carrier: mx.Dtype


def import_torch() -> ModuleType:
    """Import and return torch, with an install hint when it is missing.

    Every function here calls this first, so ``import compat`` itself never loads torch.

    Raises:
        ImportError: torch is not installed; the message says how to install it.
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "compat needs torch; install it with `pip install 'flashdrop[torch]'`"
        ) from error
    return torch


@functools.cache
def _dtype_pairs() -> tuple[dict[torch.dtype, _DtypePair], dict[mx.Dtype, _DtypePair]]:
    """The table keyed both ways: by torch dtype and by MLX dtype (built once torch is loaded)."""
    torch = import_torch()
    mlx_by_name = {name: mlx_dtype for name, mlx_dtype, _ in _DTYPE_TABLE}
    pairs = [
        _DtypePair(
            torch_dtype=getattr(torch, name),
            mlx_dtype=mlx_dtype,
            torch_carrier=getattr(torch, carrier or name),
            mlx_carrier=mlx_by_name[carrier or name],
        )
        for name, mlx_dtype, carrier in _DTYPE_TABLE
    ]
    by_torch = {pair.torch_dtype: pair for pair in pairs}
    return by_torch, {pair.mlx_dtype: pair for pair in pairs}


def _accepted(side: str) -> str:
    names = ", ".join(name for name, _, _ in _DTYPE_TABLE)
    return f"the {side} dtypes accepted are {names}"


def to_mlx(tensor: torch.Tensor) -> mx.array:
    """Convert a torch tensor to an MLX array with the same dtype, shape and bits.

    The tensor's data is read as is: a tensor that requires grad is detached (its autograd graph
    is left alone), a tensor on another device is brought to the CPU, and a non-contiguous one
    (transposed, sliced, channels_last) gives the array of its logical, row-major layout. A CPU
    tensor is read in place through numpy; the array gets its own copy of the data, so changing
    the tensor later leaves the array unchanged.

    Args:
        tensor: a dense (``torch.strided``) tensor of dtype bool, int8/16/32/64,
            uint8/16/32/64, float16, bfloat16, float32, float64 or complex64. bfloat16 crosses as
            its raw bits, never through a float32 copy.

    Returns:
        An ``mx.array`` of the matching MLX dtype and the same shape, bit for bit equal to the
        tensor (NaN payloads, -0.0, infinities and subnormals included).

    Raises:
        TypeError: ``tensor`` is not a ``torch.Tensor``, is sparse, nested or quantized, or has a
            dtype MLX lacks (complex128, complex32, the float8 types, ...).
        ValueError: ``tensor`` is on the ``meta`` device, so it has no data.

    Example::

        >>> x = torch.randn(2, 3, dtype=torch.bfloat16)
        >>> a = compat.to_mlx(x)
        >>> a.dtype, a.shape
        (mlx.core.bfloat16, (2, 3))
    """
    torch = import_torch()
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"to_mlx expects a torch.Tensor, but got {type(tensor).__name__}")
    if tensor.is_nested or tensor.layout != torch.strided:
        kind = "a nested tensor" if tensor.is_nested else f"a tensor of layout {tensor.layout}"
        raise TypeError(
            f"to_mlx expects a dense tensor (layout torch.strided), but got {kind}; "
            "convert it with .to_dense() (or .unbind() for a nested tensor) first"
        )
    if tensor.is_quantized:
        raise TypeError(
            f"to_mlx cannot convert a quantized tensor (dtype {tensor.dtype}); "
            "call .dequantize() first"
        )
    if tensor.is_meta:
        raise ValueError("to_mlx cannot convert a tensor on the meta device: it has no data")
    pair = _dtype_pairs()[0].get(tensor.dtype)
    if pair is None:
        raise TypeError(f"to_mlx: MLX has no dtype for {tensor.dtype}; {_accepted('torch')}")

    data = tensor.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    # Lazy conjugate and negative views carry a flag numpy cannot see: materialise them.
    data = data.resolve_conj().resolve_neg()
    if pair.torch_carrier != pair.torch_dtype:
        data = data.view(pair.torch_carrier)  # the same bits, in the carrier dtype
    # .numpy() shares the tensor's memory; mx.array copies it, honouring strides. The dtype is
    # given explicitly because mx.array would otherwise turn float64 into float32.
    array = mx.array(data.numpy(), dtype=pair.mlx_carrier)
    return array if pair.mlx_carrier == pair.mlx_dtype else array.view(pair.mlx_dtype)


def to_torch(array: mx.array) -> torch.Tensor:
    """Convert an MLX array to a CPU torch tensor with the same dtype, shape and bits.

    The data is copied once, out of MLX's buffer into memory the tensor owns: the tensor is
    writable, and writing to it never changes the array. The array is evaluated if it is lazy.

    Args:
        array: an ``mx.array`` of any MLX dtype (bool, int8/16/32/64, uint8/16/32/64, float16,
            bfloat16, float32, float64, complex64). bfloat16 crosses as its raw bits.

    Returns:
        A contiguous CPU ``torch.Tensor`` of the matching torch dtype and the same shape, bit for
        bit equal to the array, with ``requires_grad=False``.

    Raises:
        TypeError: ``array`` is not an ``mx.array``, or has a dtype torch lacks.

    Example::

        >>> t = compat.to_torch(mx.arange(6, dtype=mx.float16).reshape(2, 3))
        >>> t.dtype, t.shape
        (torch.float16, torch.Size([2, 3]))
    """
    if not isinstance(array, mx.array):
        raise TypeError(f"to_torch expects an mlx.core.array, but got {type(array).__name__}")
    torch = import_torch()
    pair = _dtype_pairs()[1].get(array.dtype)
    if pair is None:
        raise TypeError(f"to_torch: torch has no dtype for {array.dtype}; {_accepted('MLX')}")
    if pair.mlx_carrier != pair.mlx_dtype:
        array = array.view(pair.mlx_carrier)  # the same bits, in the carrier dtype
    # np.array copies (np.asarray would alias MLX's buffer, which MLX may reuse or donate);
    # torch.from_numpy then takes that copy over without another one.
    tensor = torch.from_numpy(np.array(array))
    return tensor if pair.torch_carrier == pair.torch_dtype else tensor.view(pair.torch_dtype)


def copy_rng_from_torch() -> None:
    """Continue flashdrop's ``"torch"`` random mode from torch's CPU generator, as it is now.

    Afterwards, a torch-mode flashdrop call draws exactly the mask torch's own next call would
    draw. Only the torch-mode stream is set; MLX's key (``"mlx"`` mode) is left alone, and torch's
    generator is not advanced.

    Returns:
        None.

    Example::

        >>> torch.manual_seed(0); _ = torch.rand(7)
        >>> compat.copy_rng_from_torch()
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(compat.to_mlx(x), 0.5)  # the bits of torch's F.dropout(x, 0.5) now
    """
    torch = import_torch()
    torch_generator.set_state(torch.get_rng_state().numpy().tobytes())


def copy_rng_to_torch() -> None:
    """Set torch's CPU generator to where flashdrop's ``"torch"`` random mode has got to.

    Afterwards, torch's next draw continues the stream flashdrop's torch-mode calls drew from, as
    if torch had made those calls itself. flashdrop's own state is not changed.

    Returns:
        None.

    Example::

        >>> compat.copy_rng_from_torch()
        >>> with flashdrop.rng_mode("torch"):
        ...     y = F.dropout(compat.to_mlx(x), 0.5)
        >>> compat.copy_rng_to_torch()  # torch carries on after flashdrop's draw
    """
    torch = import_torch()
    # bytearray: torch.frombuffer warns on a read-only buffer such as bytes.
    state = torch.frombuffer(bytearray(torch_generator.get_state()), dtype=torch.uint8)
    torch.set_rng_state(state)


@dataclass(frozen=True)
class _Twin:
    """A dropout module class of torch (or torchvision, timm) and its flashdrop twin.

    The class is recognised by its name and the package it is defined in, so that torchvision
    and timm need not be installed (nor imported) to be recognised. The twin is the flashdrop
    class of the same name, built from the original's attributes ``settings``, which are also
    the twin's first constructor arguments, in order.
    """

    path: str  # where users import the original from
    settings: tuple[str, ...]
    layout: str  # "any": drops elements or samples; "channel": has channel_dim; "first": NC...
    package: str = ""  # the original is defined in this package or below; default: path's

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def flashdrop_class(self) -> type:
        return getattr(fnn, self.name)

    def matches(self, cls: type) -> bool:
        """Whether ``cls`` is this original or its flashdrop twin (not a subclass of either)."""
        package = self.package or self.path.rpartition(".")[0]
        module = cls.__module__
        in_package = module == package or module.startswith(package + ".")
        return (cls.__name__ == self.name and in_package) or cls is self.flashdrop_class


# Every dropout module port_dropout accepts. LockedDropout has no canonical torch class (AWD-LSTM,
# PyTorch-NLP and flair each define their own), so it is not mapped.
_TWINS = (
    _Twin("torch.nn.Dropout", ("p", "inplace"), "any"),
    _Twin("torch.nn.Dropout1d", ("p", "inplace"), "channel"),
    _Twin("torch.nn.Dropout2d", ("p", "inplace"), "channel"),
    _Twin("torch.nn.Dropout3d", ("p", "inplace"), "channel"),
    _Twin("torch.nn.AlphaDropout", ("p", "inplace"), "any"),
    _Twin("torch.nn.FeatureAlphaDropout", ("p", "inplace"), "channel"),
    _Twin("torchvision.ops.StochasticDepth", ("p", "mode"), "any"),
    _Twin("torchvision.ops.DropBlock2d", ("p", "block_size", "inplace", "eps"), "first"),
    _Twin("torchvision.ops.DropBlock3d", ("p", "block_size", "inplace", "eps"), "first"),
    # timm.layers.DropPath, defined in timm.layers.drop (timm.models.layers.drop before 0.9).
    _Twin("timm.layers.DropPath", ("drop_prob", "scale_by_keep"), "any", package="timm"),
)


def _twin_for(cls: type) -> _Twin | None:
    """The twin of ``cls`` or of the nearest of its base classes that has one."""
    for klass in cls.__mro__:
        for twin in _TWINS:
            if twin.matches(klass):
                return twin
    return None


def port_dropout(module: Any, *, channel_dim: int = 1) -> mlx.nn.Module:
    """The flashdrop twin of a torch dropout module, with the same settings and training flag.

    torch's six dropout modules, ``torchvision.ops.StochasticDepth``, ``DropBlock2d`` and
    ``DropBlock3d``, and timm's ``DropPath`` are accepted; torchvision and timm classes are
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
    twin = next((t for t in _TWINS if t.matches(cls)), None)
    if twin is None or cls is twin.flashdrop_class:
        got = f"{cls.__module__}.{cls.__qualname__}"
        base = _twin_for(cls)
        if base is not None and cls is base.flashdrop_class:
            got += ", which is a flashdrop module already"
        elif base is not None:
            got += f", a subclass of {base.path} whose forward may differ from it"
        accepted = ", ".join(t.path for t in _TWINS)
        raise TypeError(f"port_dropout accepts {accepted} modules, but got {got}")
    if twin.layout == "first" and channel_dim != 1:
        raise ValueError(
            f"port_dropout: {twin.name} drops blocks of channels-first inputs only, so "
            f"channel_dim must be 1, but got {channel_dim!r}"
        )
    args = [getattr(module, name) for name in twin.settings]
    kwargs = {"channel_dim": channel_dim} if twin.layout == "channel" else {}
    ported = twin.flashdrop_class(*args, **kwargs)
    ported.training = module.training
    return ported


def dropout_layers(torch_model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The dropout modules of a torch model, with their qualified names, in registration order.

    The order is ``torch_model.named_modules()``'s: the order in which the modules were
    assigned in ``__init__``, which is often not the order they are called in
    (``TransformerEncoderLayer`` registers ``dropout``, ``dropout1``, ``dropout2`` and calls
    ``dropout1`` first). A module registered under two names is listed once. Every module
    :func:`port_dropout` accepts is listed, and so are instances of their subclasses. Dropout
    that is no module (inside ``scaled_dot_product_attention``, ``MultiheadAttention``, the RNNs,
    ``F.dropout`` calls) is not: for the draws in call order, with those, use
    :func:`flashdrop.testing.dropout_sites`.

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
        if _twin_for(type(module)) is not None
    ]


@contextmanager
def record_torch_draws() -> Iterator[list[_recording.Draw]]:
    """Context manager: record every draw torch's CPU generator makes inside the block, in order.

    Yields a list that fills with one :class:`flashdrop.testing.Draw` per draw: dropout's
    ``bernoulli_`` (what ``F.dropout``, the feature and alpha variants, the math kernel of
    ``scaled_dot_product_attention``, ``MultiheadAttention`` and the RNNs' dropout between layers
    draw on the CPU), with its shape and mask in the order drawn (torch's memory order: a
    transposed view's draw gets its shape permuted so, and the view's shape as ``view``) and
    ``p`` (``1 - q`` of ``bernoulli_(q)``); any other draw of the default generator
    (``randint``, ``randn``, ``normal_``, ...) with its shape, ``p=None`` and no mask. Draws
    from an explicit ``generator=`` are not recorded. Each record
    names the outermost torch function being run (``"dropout"``,
    ``"scaled_dot_product_attention"``, ``"lstm"``, ...), the innermost ``torch.nn.Module``
    being run (its qualified name in the outermost one) and the call site (the first frame
    outside torch).

    Recording draws nothing and leaves torch's generator as it would be. It watches this
    thread, through a ``TorchFunctionMode``, a ``TorchDispatchMode`` and module forward hooks;
    ``MultiheadAttention`` and the Transformer layers skip their fused inference paths under a
    torch function mode (in training they never take them).

    Example::

        >>> with compat.record_torch_draws() as draws:
        ...     torch.nn.functional.dropout(torch.ones(2, 3), 0.2)
        >>> draws[0].op, draws[0].shape, round(draws[0].p, 6)
        ('dropout', (2, 3), 0.2)
    """
    torch = import_torch()
    function_mode, dispatch_mode = _torch_modes()
    draws: list[_recording.Draw] = []
    functions: list[str] = []  # the torch functions being run, outermost first
    modules: list[torch.nn.Module] = []  # the modules being run, outermost first
    names: dict[int, dict[int, str]] = {}
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep

    def draw(aten_op: Any, out: Any, q: float | None) -> None:
        name = module_type = None
        if modules:
            name = _recording.names_in(modules[0], names).get(id(modules[-1]), "?")
            module_type = type(modules[-1]).__name__
        op = functions[0] if functions else aten_op.overloadpacket.__name__
        p = None if q is None else 1 - q
        site = _recording.call_site(torch_dir)
        shape, view, mask = _in_memory_order(out, q is not None)
        draws.append(_recording.Draw(op, shape, p, "torch", mask, site, name, module_type, view))

    thread = threading.get_ident()  # the hooks are global: modules run by other threads pass

    def enter(module: torch.nn.Module, *_: Any) -> None:
        if threading.get_ident() == thread:
            modules.append(module)

    def leave(module: torch.nn.Module, *_: Any) -> None:
        if modules and modules[-1] is module and threading.get_ident() == thread:
            modules.pop()

    hooks = torch.nn.modules.module
    entering = hooks.register_module_forward_pre_hook(enter)
    leaving = hooks.register_module_forward_hook(leave, always_call=True)
    try:
        with function_mode(functions), dispatch_mode(draw):
            yield draws
    finally:
        entering.remove()
        leaving.remove()


def _in_memory_order(out: Any, masked: bool) -> tuple[tuple[int, ...], Any, Any]:
    """A drawn tensor's (shape, view, mask) in the order torch drew it: its memory order.

    torch's CPU generator fills a tensor in memory order, and dropout draws its noise with its
    input's strides (``empty_like``): a transposed view's noise is drawn in the layout under
    the view. For such a tensor (dense, not row-major) the shape and the mask are permuted into
    memory order, and ``view`` is its shape; else ``view`` is ``None``. The mask (True where
    nonzero) only when ``masked``.
    """
    torch = import_torch()
    if not isinstance(out, torch.Tensor):
        return (), None, None
    out = out.detach()
    view = None
    if not out.is_contiguous():
        # The dimensions of size 2 or more by decreasing stride; those of size 1 stay.
        big = [d for d in range(out.dim()) if out.size(d) > 1]
        by_stride = iter(sorted(big, key=out.stride, reverse=True))
        order = [next(by_stride) if out.size(d) > 1 else d for d in range(out.dim())]
        permuted = out.permute(order)
        if permuted.is_contiguous():
            out, view = permuted, tuple(out.shape)
    mask = out.ne(0).cpu().numpy() if masked else None
    return tuple(out.shape), view, mask


@functools.cache
def _torch_modes() -> tuple[type, type]:
    """The torch function and dispatch mode classes of :func:`record_torch_draws`."""
    torch = import_torch()
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    @functools.cache
    def is_random(packet: Any) -> bool:
        """Whether an op draws from a generator: one of its overloads takes one."""
        return any(
            argument.name == "generator"
            for overload in packet.overloads()
            for argument in getattr(packet, overload)._schema.arguments
        )

    class Functions(TorchFunctionMode):
        """Keeps the names of the torch functions being run (inner ones run without it)."""

        def __init__(self, functions: list[str]) -> None:
            super().__init__()
            self.functions = functions

        def __torch_function__(
            self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
        ) -> Any:
            self.functions.append(getattr(func, "__name__", str(func)))
            try:
                return func(*args, **(kwargs or {}))
            finally:
                self.functions.pop()

    class Draws(TorchDispatchMode):
        """Reports each draw of the default CPU generator to ``draw``."""

        def __init__(self, draw: Any) -> None:
            super().__init__()
            self.draw = draw

        def __torch_dispatch__(
            self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            result = func(*args, **kwargs)
            generator = kwargs.get("generator")
            if not is_random(func.overloadpacket) or generator not in (
                None,
                torch.default_generator,
            ):
                return result
            out = result[0] if isinstance(result, (tuple, list)) else result
            name = func.overloadpacket.__name__
            if name in ("bernoulli", "bernoulli_") and func._overloadname in ("float", "p"):
                # bernoulli_(q): q is omitted from the arguments when it is the default, 0.5.
                q = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
                self.draw(func, out, float(q))
            else:
                self.draw(func, out, None)
            return result

    return Functions, Draws
