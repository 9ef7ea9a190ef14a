"""Whether a transformation (``mx.compile``, ``mx.vmap``, ``mx.grad``, a checkpoint's
recomputation) holds an array, and the refusal of torch-mode draws it would freeze, share or
redraw."""

import mlx.core as mx

from flashdrop import _checks
from flashdrop._random.streams import local


def check_not_tracing(what: str = "dropout", like: mx.array | None = None) -> None:
    """Refuse a torch-mode draw that a transformation would freeze, share or redraw: inside a
    :func:`compile` trace, or, when ``like`` (the array the draw is for) is given, inside any
    ``mx.compile`` or ``mx.vmap`` trace, or in a backward pass's recomputation (a plain
    ``mx.checkpoint``'s, ``mlx.nn.utils.checkpoint``'s) other than :func:`checkpoint`'s
    replay."""
    if local.tracing:
        _checks.raise_torch_mode_compiled(what)
    if like is None or _evaluable(like):  # eager: nothing more to ask
        return
    if _refused_by_eval(like):  # is_traced(like), its _evaluable(like) already asked
        _checks.raise_torch_mode_compiled(what)
    if local.torch_replay is None and _in_backward():
        _checks.raise_torch_mode_recomputed(what)


def _evaluable(array: mx.array) -> bool:
    """Whether no transformation holds ``array``: it is then scheduled for evaluation
    (``mx.async_eval``: the host goes on, and nothing is evaluated twice)."""
    try:
        mx.async_eval(array)
        return True
    except ValueError:
        return False


def _in_backward() -> bool:
    """Whether MLX is running a custom vjp, as ``mx.checkpoint`` does to recompute its
    function in the backward pass: there MLX keeps the graph of every array made, and
    ``mx.async_eval`` refuses even a new one (MLX's ``RetainGraph``). Asked only where a
    transformation holds the draw's array: the probe is evaluated."""
    return not _evaluable(mx.zeros((1,)) + 1)


def is_traced(array: mx.array) -> bool:
    """Whether ``array`` is being traced by ``mx.compile`` or ``mx.vmap``.

    Outside any transformation ``array`` is scheduled for evaluation (:func:`_evaluable`).
    ``async_eval`` refuses every transformation, ``mx.grad`` included; there, ``mx.eval``
    tells them apart: it refuses the arrays of ``mx.compile`` and ``mx.vmap`` traces and
    evaluates those of ``mx.grad``.
    """
    return not _evaluable(array) and _refused_by_eval(array)


def _refused_by_eval(array: mx.array) -> bool:
    """For an array a transformation holds (not :func:`_evaluable`): whether ``mx.eval``
    refuses it, as it does in ``mx.compile`` and ``mx.vmap`` traces (not in ``mx.grad``)."""
    try:
        mx.eval(array)
    except ValueError as error:
        if "during function transformations" in str(error):
            return True
        raise
    return False
