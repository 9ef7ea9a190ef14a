"""Records of random draws, flashdrop's and torch's: what :mod:`flashdrop.testing` compares.

A :class:`Draw` is one draw of a mask, or of other random numbers (``rand``, ``randint``, ...):
which op drew it, the shape drawn, ``p``, the mask, the torch or MLX module being run and the
call site. :func:`record_draws` records flashdrop's, through the one hook
:func:`flashdrop._random._record` (called by :func:`flashdrop._random.bernoulli` and by the
draws of :mod:`flashdrop._draws`); torch's are recorded by
``flashdrop.compat.record_torch_draws``, which builds the same records. Nothing here imports
torch.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import mlx.core as mx
import mlx.nn
import numpy as np

import flashdrop
from flashdrop import _random

_FLASHDROP_DIR = os.path.dirname(os.path.abspath(flashdrop.__file__)) + os.sep
_MLX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(mlx.nn.__file__))) + os.sep
_TESTING = os.path.join(_FLASHDROP_DIR, "testing") + os.sep  # flashdrop.testing's package
_FUNCTIONAL = os.path.join(_FLASHDROP_DIR, "nn", "functional.py")
_RANDOM = os.path.join(_FLASHDROP_DIR, "_random.py")


@dataclass(frozen=True)
class CallSite:
    """Where a draw was made from: the first frame outside flashdrop (and torch, for torch's)."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line} in {self.function}"


@dataclass(frozen=True, eq=False)
class Draw:
    """One random draw, as :func:`record_draws` and :func:`record_torch_draws` record it.

    Attributes:
        op: the public function that drew: flashdrop's (``"dropout"``, ``"dropout2d"``,
            ``"scaled_dot_product_attention"``, ``"drop_path"``, ...), or on torch's side the
            outermost torch function being run (``"dropout"``, ``"scaled_dot_product_attention"``,
            ``"multi_head_attention_forward"``, ``"lstm"``, ``"bernoulli_"``, ``"randint"``, ...).
        shape: the shape of the noise drawn, in the order drawn: ``(N, C, 1, 1)`` for torch's
            ``Dropout2d``, the weights' ``(N, H, L, S)`` for attention. torch fills a tensor in
            memory order: for a transposed or permuted one (``F.dropout`` of a transposed view
            draws its noise with the view's strides), ``shape`` is its shape in memory order,
            and ``view`` its shape.
        p: ``1 - q`` for a draw that is True with probability ``q``: the probability of dropping,
            for dropout. ``None`` for draws that are not ``bernoulli`` (``randint``, ...).
        mode: the stream drawn from: ``"torch"`` (torch's generator, or flashdrop's torch mode)
            or ``"mlx"``.
        mask: the draw, True where kept, of ``shape``: an ``mx.array`` on flashdrop's side, a
            numpy array on torch's (``np.asarray`` gives numpy for both); ``None`` when
            ``p`` is.
        site: the call site, the first frame outside flashdrop and MLX (and torch, for
            torch's draws); ``None`` when the helpers of :mod:`flashdrop.testing` called the
            dropout layer or function themselves.
        module: the qualified name of the innermost module being run, in the outermost one being
            run (``""`` for that one itself); ``None`` outside any module.
        module_type: that module's class name.
        view: torch's side: the shape of the tensor drawn when its memory order is not its
            row-major order (then ``shape`` is that shape permuted into memory order); ``None``
            otherwise.
    """

    op: str
    shape: tuple[int, ...]
    p: float | None
    mode: str
    mask: Any = field(repr=False)
    site: CallSite | None = None
    module: str | None = None
    module_type: str | None = None
    view: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        p = "None" if self.p is None else f"{self.p:.6g}"
        view = "" if self.view is None else f", view={self.view}"
        return (
            f"Draw(op={self.op!r}, shape={self.shape}{view}, p={p}, mode={self.mode!r}, "
            f"module={self.where()}, site={self.site})"
        )

    def where(self) -> str:
        """The module, as ``'name' (Class)``, or ``(Class)`` for the outermost; ``-`` outside
        any module."""
        if self.module is None:
            return "-"
        return f"{self.module!r} ({self.module_type})" if self.module else f"({self.module_type})"

    def describe(self) -> str:
        """One line: op, shape, p, module and call site."""
        p = "" if self.p is None else f", p={self.p:.6g}"
        module = "" if self.module is None else f", in {self.where()}"
        site = f", at {self.site}" if self.site else ", called by the helper"
        return f"{self.op}, shape {self.shape}{self.of_view()}{p}{module}{site}"

    def of_view(self) -> str:
        """`` (memory order of a (N, L, E) view)`` for a draw in another order than its
        tensor's shape; ``""`` otherwise."""
        return "" if self.view is None else f" (memory order of a {self.view} view)"

    def drawn(self) -> tuple[int, ...]:
        """The shape as what it draws: the sizes other than 1, in order.

        Draws come in row-major order of the shape, so a channels-last ``(N, 1, 1, C)`` and a
        channels-first ``(N, C, 1, 1)`` draw the same numbers.
        """
        return tuple(size for size in self.shape if size != 1)

    def keep(self) -> np.ndarray | None:
        """The mask as a flat numpy bool array, in the order drawn; ``None`` without a mask."""
        return None if self.mask is None else np.asarray(self.mask).reshape(-1)


def call_site(*skip: str) -> CallSite | None:
    """The first frame, from the caller outwards, outside flashdrop, compat, MLX and ``skip``
    (directories); ``None`` when it is flashdrop.testing's, which called the op itself."""
    frame: FrameType | None = sys._getframe(1)
    dirs = (_FLASHDROP_DIR, _MLX_DIR, *skip)  # flashdrop.compat lies inside flashdrop
    while frame is not None:
        file = os.path.abspath(frame.f_code.co_filename)
        if file.startswith(_TESTING):
            return None
        if not file.startswith(dirs):
            return CallSite(file, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def names_in(root: Any, modules: dict[int, dict[int, str]]) -> dict[int, str]:
    """``{id(module): qualified name}`` for ``root`` (an MLX or torch module), cached in
    ``modules`` by the root's id."""
    names = modules.get(id(root))
    if names is None:
        names = modules[id(root)] = {id(m): name for name, m in root.named_modules()}
    return names


class _Recorder:
    """Turns the hook's ``(shape, q, mode, mask)`` into :class:`Draw` records in ``draws``."""

    def __init__(self, draws: list[Draw]) -> None:
        self.draws = draws
        self._names: dict[int, dict[int, str]] = {}

    def __call__(self, shape: tuple[int, ...], q: Any, mode: str, mask: mx.array | None) -> None:
        # The op: the outermost public function of flashdrop.nn.functional on the stack; else
        # the innermost public function of flashdrop's that called the draw (_dropout's, ...);
        # else _random's that drew it.
        functional = caller = drawer = None
        modules: list[mlx.nn.Module] = []  # innermost first
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            code, file = frame.f_code, frame.f_code.co_filename
            method = code.co_varnames[:1] == ("self",)
            if not method and not code.co_name.startswith("_"):
                if file == _FUNCTIONAL:
                    functional = code.co_name
                elif file == _RANDOM:
                    drawer = drawer or code.co_name
                elif file.startswith(_FLASHDROP_DIR) and not file.startswith(_TESTING):
                    caller = caller or code.co_name
            if method:
                module = frame.f_locals.get("self")
                if isinstance(module, mlx.nn.Module) and all(m is not module for m in modules):
                    modules.append(module)
            frame = frame.f_back
        op = functional or caller or drawer or "draw"
        try:
            p = 1 - float(q)
        except (TypeError, ValueError, RuntimeError):  # q traced by a transformation
            p = None
        name = module_type = None
        if modules:
            name = names_in(modules[-1], self._names).get(id(modules[0]), "?")
            module_type = type(modules[0]).__name__
        self.draws.append(Draw(op, shape, p, mode, mask, call_site(), name, module_type))


@contextmanager
def record_draws() -> Iterator[list[Draw]]:
    """Context manager: record every draw flashdrop makes inside the block, in order: masks,
    and the draws of ``rand``, ``randn``, ``randint``, ... (``p=None``, no mask).

    Yields a list that fills with one :class:`Draw` per draw this thread makes, in either
    random mode; draws of other threads are not recorded (as
    :func:`compat.record_torch_draws` records only its thread's). Recording draws nothing
    itself and leaves every random stream as it would be; while it records,
    :func:`flashdrop.compile` runs this thread's mlx-mode functions uncompiled (the same masks,
    outputs and state), so that every draw is seen. A function compiled with ``mx.compile``
    itself draws only while it is traced: its draws are recorded then (with a traced mask),
    not on later calls; use :func:`flashdrop.compile`. The module of a draw is the innermost
    ``mlx.nn.Module`` whose method is on the stack, named in the outermost one.

    Example::

        >>> with flashdrop.testing.record_draws() as draws:
        ...     y = flashdrop.nn.Dropout2d(0.2)(mx.ones((2, 3, 4, 4)))
        >>> draws[0].op, draws[0].shape
        ('dropout2d', (2, 3, 1, 1))
    """
    draws: list[Draw] = []
    recorder = _Recorder(draws)
    entry = (threading.get_ident(), recorder)
    _random._recorders.append(entry)
    try:
        yield draws
    finally:
        _random._recorders.remove(entry)
