"""``flashdrop.checkpoint``: ``mx.checkpoint`` recomputing from the forward's random state, as
``torch.utils.checkpoint`` does with ``preserve_rng_state=True``."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn

from flashdrop import _checks
from flashdrop._random.state import snapshot
from flashdrop._random.streams import (
    KeyStream,
    get_rng_mode,
    in_main_stream,
    local_value,
    mlx_key,
    put_mlx_key,
)
from flashdrop._random.torch_cpu.generator import TorchCPUGenerator
from flashdrop._random.tracing import is_traced


def checkpoint(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``mx.checkpoint`` that recomputes with the forward's random draws.

    Like ``torch.utils.checkpoint(fn, ..., preserve_rng_state=True)``: the backward pass
    recomputes ``fn`` from the random state the forward started from, in the forward's random
    mode, so that every draw inside (masks, ``flashdrop.rand``/``randn``/... and, in the main
    thread, MLX's own ``mx.random`` draws and ``mlx.nn.Dropout``) and every
    ``get_rng_state``/``set_rng_state``/``fork_rng``/``manual_seed`` sees what it saw in the
    forward; then the state is put back. The gradients are those of the uncheckpointed
    function, bit for bit, and the random streams advance once, by the forward's draws: in
    torch mode exactly as torch's generator does with ``torch.utils.checkpoint``. A plain
    ``mx.checkpoint`` or ``mlx.nn.utils.checkpoint`` draws anew when it recomputes in mlx mode
    (its gradients are not the forward's), and raises ``RuntimeError`` there in torch mode.

    Args:
        fn: a function of arrays (trees of arrays, as for ``mx.checkpoint``), or an
            ``mlx.nn.Module``: then gradients flow to its trainable parameters too, as with
            ``mlx.nn.utils.checkpoint(module)``.

    Returns:
        A function with ``fn``'s signature.

    Example::

        >>> block = flashdrop.checkpoint(transformer_block)   # an mlx.nn.Module
        >>> loss, grads = nn.value_and_grad(model, loss_fn)(model, x)
    """
    module = fn if isinstance(fn, mlx.nn.Module) else None

    @functools.wraps(fn)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        mode, forward = get_rng_mode(), snapshot()  # both streams: fn may switch modes inside
        calls = 0

        def recomputable(params: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if module is not None:
                module.update(params)
            if calls == 1:  # the forward: draws as usual, advancing the streams
                return fn(*args, **kwargs)
            # A recomputation: from the forward's state, in the forward's mode, with a torch
            # stream of this thread's own (other threads draw on from the shared one).
            replay = TorchCPUGenerator(0)
            replay.set_state(forward.torch)
            with (
                local_value("mode", mode),
                local_value("torch_replay", replay),
                _forward_mlx_key(forward.mlx_key),
            ):
                return fn(*args, **kwargs)

        params = module.trainable_parameters() if module is not None else {}
        return mx.checkpoint(recomputable)(params, *args, **kwargs)

    return checkpointed


@contextmanager
def _forward_mlx_key(key: mx.array) -> Iterator[None]:
    """Inside the block the calling thread's mlx-mode key is ``key`` (the forward's); after it,
    the key it was before.

    In the main thread that key is MLX's own ``mx.random.state``, read by MLX's draws
    (``mlx.nn.Dropout``, ``mx.random.normal``) as well as flashdrop's. Inside a compiled
    function's trace it cannot be set: flashdrop's draws then take the forward's keys from a
    stream of their own, and a draw of MLX's own, which would draw anew, is refused.
    """
    now = mlx_key()
    if in_main_stream() and is_traced(now):
        with local_value("override", KeyStream(key)):
            yield
        if mx.random.state[0] is not now:
            _checks.raise_mlx_draw_not_replayed()
        return
    put_mlx_key(key)
    try:
        yield
    finally:
        put_mlx_key(now)
