"""The one place a dropout mask is drawn: :func:`bernoulli`, from the current mode's stream."""

import math
from collections.abc import Sequence

import mlx.core as mx

from flashdrop import _checks
from flashdrop._random.hook import recorders, report_draw
from flashdrop._random.streams import get_rng_mode, next_mlx_key, torch_stream
from flashdrop._random.target import get_torch_target
from flashdrop._random.torch_cpu import kernels, mkl
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
        # torch 2.1-2.6's x86-64 builds draw from MKL, every other build from mt19937.
        target = get_torch_target()
        kernel = mkl if target.mkl_bernoulli else kernels
        with torch_stream() as stream:
            keep = kernel.bernoulli_scalar(stream, math.prod(shape), q)
        half = kernel is mkl and like is not None and like.dtype == mx.float16
        if half and target.before("half_bernoulli"):  # torch 2.1 fails after taking its word
            _checks.raise_no_half_bernoulli()
        # Reshaped by MLX: numpy stops at 64 dimensions, torch and MLX do not.
        mask = mx.array(keep).reshape(shape)
    if recorders:
        report_draw(shape, q, mask)
    return mask
