"""The one place a dropout mask is drawn: :func:`bernoulli`, from the current mode's stream."""

import math
from collections.abc import Sequence

import mlx.core as mx

from flashdrop._random.hook import recorders, report_draw
from flashdrop._random.streams import get_rng_mode, next_mlx_key, torch_stream
from flashdrop._random.torch_cpu import kernels
from flashdrop._random.tracing import check_not_tracing


def bernoulli(shape: Sequence[int], q: float | mx.array, like: mx.array | None = None) -> mx.array:
    """A bool mask of ``shape``, True with probability ``q``, from the current mode's stream.

    ``like``: the array the mask is for; a torch-mode draw checks it is not being traced by
    ``mx.compile`` or ``mx.vmap``.
    """
    if get_rng_mode() == "mlx":
        key = next_mlx_key()
        # Without the keyword when there is no key: nanobind's keywords cost ~4 us a call.
        mask = mx.random.bernoulli(q, shape) if key is None else mx.random.bernoulli(q, shape, key)
    else:
        check_not_tracing("dropout", like)
        with torch_stream() as stream:
            keep = kernels.bernoulli_scalar(stream, math.prod(shape), q)
        # Reshaped by MLX: numpy stops at 64 dimensions, torch and MLX do not.
        mask = mx.array(keep).reshape(shape)
    if recorders:
        report_draw(shape, q, mask)
    return mask
