"""The dropout family's checks and messages: torch.nn's, torchvision's and timm's texts."""

import warnings
from typing import Any

import mlx.core as mx

from flashdrop import _dtypes
from flashdrop._checks.arguments import check_array, check_not_traced, truth, vf_args

_P_RANGE = "dropout probability has to be between 0 and 1, but got {p}"


def check_p(fn: str, p: Any, low: float = 0.0, high: float = 1.0) -> None:
    """torch's Python-level check: ``ValueError`` for p outside [0, 1].

    NaN passes (every comparison with NaN is false), as in torch: it is caught later by
    :func:`check_p_is_probability`. torch's modules compare with the ints ``0`` and ``1``, its
    functions with ``0.0`` and ``1.0``; the caller passes the bounds so that even the
    ``TypeError`` for a non-number p reads as torch's.
    """
    check_not_traced(fn, "p", p)
    if truth(p < low) or truth(p > high):
        raise ValueError(_P_RANGE.format(p=p))


def check_p_is_probability(p: float) -> None:
    """torch's ATen-level check, which also rejects NaN: ``RuntimeError``."""
    if not 0 <= p <= 1:
        raise RuntimeError(_P_RANGE.format(p=p))


def check_args(fn: str, input: Any, p: Any) -> None:
    """The checks every public dropout function starts with."""
    check_array(input, fn)
    check_p(fn, p)


def element_dropout_args(
    fn: str, input: Any, p: Any, training: Any, inplace: Any
) -> tuple[float, bool, bool]:
    """:func:`check_args` then :func:`vf_args` for ``fn`` (``dropout``, ``alpha_dropout``):
    ``(p, training, inplace)`` as torch makes them, or its error.

    The common call (an ``mx.array``, a Python float p in [0, 1], a bool ``training``,
    ``inplace=False``) passes every check unchanged: it is answered at once, without the
    conversions (a dropout layer is called once per step and per sequence length; see
    scripts/bench.py's "many shapes")."""
    if (
        type(p) is float
        and type(training) is bool
        and inplace is False
        and type(input) is mx.array
        and 0.0 <= p <= 1.0
    ):
        return p, training, False
    check_args(fn, input, p)
    return vf_args(fn, p, training, inplace)


def check_train_mode(mode: Any) -> None:
    """``Module.train(mode)``'s ``ValueError`` for a ``mode`` that is not a bool."""
    if not isinstance(mode, bool):
        raise ValueError("training mode is expected to be boolean")


def raise_layer_item(layer: str, key: str) -> None:
    """The ``TypeError`` for ``layer[key] = value`` on a layer that holds no MLX parameters."""
    raise TypeError(
        f"{layer} holds no MLX parameters: layer[{key!r}] = ... would make "
        f"one; set an attribute instead (layer.{key} = ...), which stays a plain attribute"
    )


def check_can_draw(dtype: mx.Dtype) -> None:
    """torch's ``NotImplementedError`` for dtypes its CPU ``bernoulli_`` cannot fill."""
    if dtype in _dtypes.NO_BERNOULLI_KERNEL:
        raise NotImplementedError(
            f"\"bernoulli_scalar_cpu_\" not implemented for '{_dtypes.TORCH_NAMES[dtype]}'"
            f"; dropout in training needs a floating-point input, got {dtype}"
        )


def raise_cannot_scale(dtype: mx.Dtype, alpha: bool) -> None:
    """torch's ``RuntimeError`` for integer and bool inputs, raised after the mask was drawn.

    torch's alpha variants add -1 to the noise first, which turns a bool noise tensor into a
    Long one: their message names ``Long`` for bool inputs, and so does ours.
    """
    name = "Long" if alpha and dtype == mx.bool_ else _dtypes.TORCH_NAMES[dtype]
    raise RuntimeError(
        f"result type Float can't be cast to the desired output type {name}"
        f"; dropout in training needs a floating-point input, got {dtype}"
    )


def check_feature_dims(ndim: int) -> None:
    if ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")


def check_dropout1d_dims(ndim: int) -> None:
    if ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )


_DEPRECATED_DIMS = (
    "{fn}: Received a {ndim}-D input to {fn}, which is deprecated "
    "and will result in an error in a future release. To retain the behavior "
    "and silence this warning, please use dropout instead. Note that {fn} "
    "exists to provide channel-wise dropout on inputs with {spatial} spatial dimensions, "
    "a channel dimension, and an optional batch dimension (i.e. {lo}D or {hi}D inputs)."
)

_DROPOUT2D_AS_1D = (
    "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
    "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
    "is the channel dim. This behavior will change in a future release to interpret the "
    "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
    "channel-wise dropout behavior, please switch to using dropout1d instead."
)


# Both warnings point at the caller of the public function: the public function is one frame
# up from here, its caller two.


def warn_unexpected_dims(fn: str, ndim: int, spatial: int) -> None:
    """``dropout2d``'s and ``dropout3d``'s ``UserWarning`` for inputs of a deprecated rank."""
    lo, hi = spatial + 1, spatial + 2
    if ndim not in (lo, hi):
        message = _DEPRECATED_DIMS.format(fn=fn, ndim=ndim, spatial=spatial, lo=lo, hi=hi)
        warnings.warn(message, UserWarning, stacklevel=3)


def warn_dropout2d_as_1d() -> None:
    """``dropout2d``'s ``UserWarning`` that a 3-D input is taken as (N, C, L), not (C, H, W)."""
    warnings.warn(_DROPOUT2D_AS_1D, UserWarning, stacklevel=3)


def check_channel_dim(fn: str, channel_dim: int) -> None:
    """``ValueError`` unless ``channel_dim`` is 1 (channels first) or -1 (channels last)."""
    if isinstance(channel_dim, bool) or channel_dim not in (1, -1):
        raise ValueError(
            f"{fn}: channel_dim must be 1 (channels first, torch's (N, C, *) layout) or -1 "
            f"(channels last, the (N, *, C) layout of MLX's convolutions), but got {channel_dim!r}"
        )


# torchvision.ops' texts (its drop_block functions end theirs with a period); flashdrop's own
# functions beyond torch.nn (drop_path, locked_dropout) use the same wording.
_DROP_P_RANGE = "drop probability has to be between 0 and 1, but got {p}"


def check_drop_probability(fn: str, arg: str, p: Any, end: str = "") -> None:
    """torchvision's ``ValueError`` for p outside [0, 1]; NaN is rejected here too (torchvision
    lets it through to a ``bernoulli_`` error)."""
    check_not_traced(fn, arg, p)
    if truth(p < 0.0) or truth(p > 1.0) or truth(p != p):  # torchvision's test, then NaN
        raise ValueError(_DROP_P_RANGE.format(p=p) + end)


def check_stochastic_depth_mode(mode: str) -> None:
    if mode not in ["batch", "row"]:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")


def check_has_batch(fn: str, ndim: int) -> None:
    """A mask per sample needs a batch axis; torchvision and timm fail with an IndexError."""
    if ndim == 0:
        raise ValueError(f"{fn}: drops whole samples of an (N, *) input, but got a 0-D input")


def check_drop_block_dims(fn: str, ndim: int, expected: int) -> None:
    if ndim != expected:
        raise ValueError(
            f"input should be {expected} dimensional. Got {ndim} dimensions."
            f"; {fn} takes (N, C, {'D, ' if expected == 5 else ''}H, W)"
        )


def check_block_size(fn: str, block_size: int) -> None:
    """torchvision's ``ValueError`` for an even block size (after clamping to the input's size:
    blocks are centred on a pixel), then ours for a block size that is not an int (torchvision:
    a ``TypeError`` from ``torch.empty``) or is below 1."""
    if block_size % 2 == 0:
        raise ValueError(
            f"block size should be odd. Got {block_size} which is even."
            "; block_size is clamped to the smallest spatial size first, which must then be odd"
        )
    if not isinstance(block_size, int):
        raise TypeError(f"{fn}: block_size must be an int, but got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"{fn}: block_size must be a positive odd integer, but got {block_size}")


def check_max_pool(centres: mx.array, block_size: int, dtype: mx.Dtype) -> None:
    """torchvision's DropBlock max-pools the ``centres`` it drew (taken here, so that the check
    cannot come before the draw): torch's ``TypeError`` for a bool block size (its kernel size),
    then its ``NotImplementedError`` for a bool input (of ``dtype``)."""
    op = f"max_pool{centres.ndim - 2}d"
    if isinstance(block_size, bool):
        raise TypeError(
            f"{op}(): argument 'kernel_size' (position 2) must be tuple of ints, but found "
            "element of type bool at pos 0"
        )
    if dtype == mx.bool_:
        raise NotImplementedError(f"\"{op}\" not implemented for 'Bool'")


def check_locked_dropout_dims(ndim: int) -> None:
    if ndim not in (2, 3):
        raise ValueError(
            f"locked_dropout: Expected 2D (unbatched) or 3D (batched) input, but received a "
            f"{ndim}D input; it takes (L, N, H), (N, L, H) with batch_first=True, or (L, H), "
            "as torch.nn.RNN does"
        )
