"""torch's CPU random kernels where older releases compute them differently from torch 2.13.

Found by replaying goldens recorded from each release (scripts/record_torch_goldens.py); which
release computes which way is :class:`flashdrop._random.target.TorchTarget`'s to say. Each
function takes a :class:`~.generator.TorchStream` (the generator's lock held), as the kernels
of :mod:`.kernels` do.

- uniform of float16 / bfloat16: ``uniform_real_distribution<scalar_t>`` masks the word to the
  dtype's significand digits, ``(w & (2**d - 1)) * 2**-d`` with ``d`` 11 (float16) or 8
  (bfloat16), exact in the dtype; torch 2.13 takes 24 bits and rounds them.
- integers: ``w % range + low`` with one word while ``range < 2**32`` (torch 2.13: ``2**28``),
  one ``random64()`` from there on.
- normal of float16 / bfloat16, 16 elements or more, before torch 2.12: ``normal_fill<scalar_t>``
  in the dtype itself (torch 2.13: float32's vectorised path). Uniforms of the dtype (above) for
  every element, then over each block of 16 the scalar Box-Muller ``normal_fill_16<scalar_t>``,
  every operation rounded to the dtype, as c10's ``Half``/``BFloat16`` operators and their
  ``std::`` math overloads return the dtype: ``u1 = 1 - u[j]``, ``radius = sqrt(-2 * log(u1))``,
  ``theta = 2 pi u2`` (computed in double, rounded through float), ``radius * cos(theta) * std +
  mean`` (and ``sin`` for ``j + 8``); when the size is not a multiple of 16, 16 fresh uniforms for
  the last 16 outputs. The functions are the C library's float ones (logf, sqrtf, cosf, sinf),
  computed here in double and rounded to float32 first: the same values wherever those are
  correctly rounded.
- the same normals in torch 2.12: that scalar Box-Muller in float32 (the C library's functions,
  not float32's vectorised polynomials), on float32 uniforms for the whole blocks only (as torch
  2.13 draws them), rounded to the dtype once at the end.
"""

import functools
import math
from collections.abc import Callable

import numpy as np

from flashdrop._random.torch_cpu import kernels
from flashdrop._random.torch_cpu.generator import TorchStream

# The significand digits of the half dtypes, std::numeric_limits<T>::digits.
HALF_DIGITS = {"float16": 11, "bfloat16": 8}
ONE_WORD_SPAN = 1 << 32


def uniform_half(stream: TorchStream, count: int, dtype: str) -> np.ndarray:
    """``uniform_real_distribution<Half or BFloat16>(0, 1)``: ``count`` float32 values, each
    exactly representable in ``dtype`` (``"float16"`` or ``"bfloat16"``), in [0, 1)."""
    digits = HALF_DIGITS[dtype]
    out = stream.words(count, np.float32, functools.partial(_low_bits, np.uint32(2**digits - 1)))
    out *= np.float32(2.0**-digits)  # exact: fewer than 24 bits
    return out


def _low_bits(mask: np.uint32, words: np.ndarray) -> np.ndarray:
    words &= mask
    return words


def normal_fill(stream: TorchStream, count: int, dtype: str, mean: float, std: float) -> np.ndarray:
    """``normal_fill<Half or BFloat16>`` of ``count >= 16`` elements (torch 2.1-2.11): float32
    values, each exactly representable in ``dtype`` (``"float16"`` or ``"bfloat16"``)."""
    uniform = functools.partial(uniform_half, dtype=dtype)
    return _filled(stream, uniform(stream, count), uniform, dtype, mean, std)


def normal_fill_float(stream: TorchStream, count: int, mean: float, std: float) -> np.ndarray:
    """torch 2.12's float16/bfloat16 normal of ``count >= 16`` elements, before its rounding to
    the dtype: float32 values from the scalar Box-Muller in float32."""
    whole = count - count % 16
    data = np.zeros(count, np.float32)
    data[:whole] = kernels.uniform_float(stream, whole)
    return _filled(stream, data, kernels.uniform_float, "float32", mean, std)


def _filled(
    stream: TorchStream,
    data: np.ndarray,
    uniform: Callable[[TorchStream, int], np.ndarray],
    dtype: str,
    mean: float,
    std: float,
) -> np.ndarray:
    """``data``'s uniforms Box-Muller'ed in ``dtype`` block by block, the last 16 outputs from 16
    fresh ``uniform`` draws when the size is not a multiple of 16."""
    count = data.size
    mean_d, std_d = (_rounded(np.array([value], np.float32), dtype) for value in (mean, std))
    whole = count - count % 16
    data[:whole] = _fill16(data[:whole].reshape(-1, 16), dtype, mean_d, std_d).reshape(-1)
    if whole != count:  # the last 16 again, from fresh uniforms
        tail = uniform(stream, 16).reshape(1, 16)
        data[count - 16 :] = _fill16(tail, dtype, mean_d, std_d).reshape(-1)
    return data


def _fill16(u: np.ndarray, dtype: str, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``normal_fill_16<scalar_t>`` on rows of 16 uniforms, every step rounded to ``dtype``
    (``"float16"``, ``"bfloat16"`` or ``"float32"``)."""

    def r(values: np.ndarray) -> np.ndarray:
        return _rounded(np.asarray(values, dtype=np.float32), dtype)

    def libm(function: np.ufunc, values: np.ndarray) -> np.ndarray:  # float -> float, rounded
        return r(function(values.astype(np.float64)).astype(np.float32))

    u1 = r(1 - u[:, :8])
    radius = libm(np.sqrt, r(-2 * libm(np.log, u1)))
    theta = r((2.0 * math.pi * u[:, 8:].astype(np.float64)).astype(np.float32))
    first = r(r(r(radius * libm(np.cos, theta)) * std) + mean)
    second = r(r(r(radius * libm(np.sin, theta)) * std) + mean)
    return np.concatenate([first, second], axis=1)


def _rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values rounded to the nearest ``dtype`` value (ties to even), as float32."""
    if dtype == "float32":
        return values
    if dtype == "float16":
        return values.astype(np.float16).astype(np.float32)
    bits = values.view(np.uint32).astype(np.uint64)
    bits += 0x7FFF + ((bits >> 16) & 1)
    return (bits & 0xFFFF0000).astype(np.uint32).view(np.float32)


def randint(stream: TorchStream, count: int, low: int, high: int) -> tuple[np.ndarray, int]:
    """``random_from_to`` on ``[low, high)`` as :func:`.kernels.randint` returns
    it, with one word per draw while the span is below ``2**32``."""
    span = high - low
    if span < ONE_WORD_SPAN:
        return stream.words(count) % np.uint32(span), low
    return kernels.randint(stream, count, low, high)
