"""Tensor conversion between torch and MLX, bit for bit, in both directions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlx.core as mx
import numpy as np

from flashdrop.compat.lazy_torch import import_torch

if TYPE_CHECKING:
    import torch

__all__ = ["to_mlx", "to_torch"]

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
