"""``flashdrop.checkpoint``: ``mx.checkpoint`` recomputing with the forward's masks, as
``torch.utils.checkpoint`` does with ``preserve_rng_state=True``."""

import functools
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn

from flashdrop._random.streams import KeyStream, get_rng_mode, local, local_value, mlx_key
from flashdrop._random.torch_cpu.generator import TorchCPUGenerator, torch_generator


def checkpoint(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``mx.checkpoint`` that recomputes with the forward's random masks.

    Like ``torch.utils.checkpoint(fn, ..., preserve_rng_state=True)``: the backward pass
    recomputes ``fn`` drawing exactly the masks the forward drew, in both random modes, so the
    gradients are those of the uncheckpointed function, bit for bit. The random streams advance
    once, by the forward's draws: in torch mode exactly as torch's generator does with
    ``torch.utils.checkpoint``. A plain ``mx.checkpoint`` or ``mlx.nn.utils.checkpoint``
    draws new masks when it recomputes in mlx mode (its gradients are not the forward's), and
    raises ``RuntimeError`` there in torch mode.

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
        mode = get_rng_mode()
        key = mlx_key()
        # Both streams are saved: fn may switch modes inside.
        torch_state = (local.torch_replay or torch_generator).get_state()
        calls = 0

        def recomputable(params: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if module is not None:
                module.update(params)
            if calls == 1:  # the forward: draws as usual, advancing the streams
                return fn(*args, **kwargs)
            replay = TorchCPUGenerator(0)
            replay.set_state(torch_state)
            with (
                local_value("mode", mode),
                local_value("override", KeyStream(key)),
                local_value("torch_replay", replay),
            ):
                return fn(*args, **kwargs)

        params = module.trainable_parameters() if module is not None else {}
        return mx.checkpoint(recomputable)(params, *args, **kwargs)

    return checkpointed
