"""Recording torch's draws: every draw of torch's default CPU generator, in order, as
:func:`flashdrop.testing.record_draws` records flashdrop's."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flashdrop import _recording
from flashdrop.compat.lazy_torch import import_torch

if TYPE_CHECKING:
    import torch

__all__ = ["record_torch_draws", "transposing_draws"]


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
    from an explicit ``generator=`` are not recorded. Each record names the outermost torch
    function being run (``"dropout"``, ``"scaled_dot_product_attention"``, ``"lstm"``, ...),
    the innermost ``torch.nn.Module`` being run (its qualified name in the outermost one) and
    the call site (the first frame outside torch).

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

    The shape of :func:`_memory_order`'s tensor, the view's shape when it differs, and the mask
    (True where nonzero) only when ``masked``.
    """
    torch = import_torch()
    if not isinstance(out, torch.Tensor):
        return (), None, None
    drawn, view = _memory_order(out.detach())
    mask = drawn.ne(0).cpu().numpy() if masked else None
    return tuple(drawn.shape), view, mask


def _memory_order(out: Any) -> tuple[Any, tuple[int, ...] | None]:
    """A drawn tensor as torch drew it, in its memory order, and the view's shape (or ``None``).

    torch's CPU generator fills a tensor in memory order, and dropout draws its noise with its
    input's strides (``empty_like``): a transposed view's noise is drawn in the layout under
    the view. Such a tensor (dense, not row-major) is returned permuted into memory order (a
    view of the same memory), with its own shape as the second value; any other as it is, with
    ``None``.
    """
    if not out.is_contiguous():
        # The dimensions of size 2 or more by decreasing stride; those of size 1 stay.
        big = [d for d in range(out.dim()) if out.size(d) > 1]
        by_stride = iter(sorted(big, key=out.stride, reverse=True))
        order = [next(by_stride) if out.size(d) > 1 else d for d in range(out.dim())]
        permuted = out.permute(order)
        if permuted.is_contiguous():
            return permuted, tuple(out.shape)
    return out, None


@contextmanager
def transposing_draws(indices: Collection[int], axes: tuple[int, int]) -> Iterator[None]:
    """Context manager: torch's draws numbered ``indices`` in the block (0-based, counted as
    :func:`record_torch_draws` counts them) are made with two axes of their masks swapped.

    ``axes`` index each draw's shape as it draws (:meth:`Draw.drawn`: the sizes other than 1, in
    memory order) and must have the same size. Each draw takes the random numbers it would
    take, and leaves the generator where it would: only the positions of its mask change. This
    is how :mod:`flashdrop.testing` checks that a port applies torch's mask in another order of
    its axes (its output is torch's with the mask so transposed) before it says so.
    """
    torch = import_torch()
    _, dispatch_mode = _torch_modes()
    count = 0

    def draw(aten_op: Any, out: Any, q: float | None) -> None:
        nonlocal count
        if count in indices and q is not None and isinstance(out, torch.Tensor):
            drawn, _ = _memory_order(out)
            mask = drawn.view([size for size in drawn.shape if size != 1])
            mask.copy_(mask.transpose(*axes).clone())
        count += 1

    with dispatch_mode(draw):
        yield


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
