"""torch's CPU random kernels where older releases compute them differently from torch 2.13.

Found by replaying goldens recorded from each release (scripts/record_torch_goldens.py); which
release computes which way is :class:`flashdrop._torch_target.TorchTarget`'s to say. Each
function takes a :class:`flashdrop._random.TorchStream` (the generator's lock held), as the
kernels of :mod:`flashdrop._torch_kernels` do.

- uniform of float16 / bfloat16: ``uniform_real_distribution<scalar_t>`` masks the word to the
  dtype's significand digits, ``(w & (2**d - 1)) * 2**-d`` with ``d`` 11 (float16) or 8
  (bfloat16), exact in the dtype; torch 2.13 takes 24 bits and rounds them.
- integers: ``w % range + low`` with one word while ``range < 2**32`` (torch 2.13: ``2**28``),
  one ``random64()`` from there on.
"""

import functools

import numpy as np

from flashdrop import _torch_kernels as kernels
from flashdrop._random import TorchStream

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


def randint(stream: TorchStream, count: int, low: int, high: int) -> tuple[np.ndarray, int]:
    """``random_from_to`` on ``[low, high)`` as :func:`flashdrop._torch_kernels.randint` returns
    it, with one word per draw while the span is below ``2**32``."""
    span = high - low
    if span < ONE_WORD_SPAN:
        return stream.words(count) % np.uint32(span), low
    return kernels.randint(stream, count, low, high)
