"""avx_mathfun.h's ``log256_ps`` and ``sincos256_ps`` (Cephes polynomials), lane by lane in
float32, with the multiply-adds torch's x86-64 build fuses (GCC's ``-ffp-contract=fast``), and
torch's ``normal_fill_16_AVX2`` made of them: the float32 normal kernel of torch 2.13 on x86-64.

Each step is one numpy operation over all the lanes of a piece of the output (:data:`ROWS`),
mostly in place, and lane choices are bitwise selects (``np.where`` on a random mask costs more
than a fused multiply-add). The inputs are those of the normal kernel, ``1 - u`` for the log and
``2 pi u`` for sincos with ``u`` a uniform float in [0, 1): the steps of avx_mathfun that do
nothing there (the log's clamp to the smallest normal float, sincos's handling of a sign bit)
are left out.
"""

import math
from collections.abc import Callable

import numpy as np

from flashdrop._random.torch_cpu.fma import fma32, fma32_unchecked

_F32 = np.float32
_U32 = np.uint32

# The normal kernel transforms this many blocks of 16 at a time: its temporaries (float32 arrays
# of 8 lanes a row, float64 ones inside the multiply-adds) stay in the CPU's caches, and each
# numpy call has enough lanes to amortise its own cost (CPU time over 1M floats, measured: 30 ms
# at 8192 rows, 35 ms at 2048, 44 ms at 1024).
ROWS = 8192

_LOG_P = [
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
]
_TWO_PI = _F32(2.0 * math.pi)
_SQRT_HALF_BITS = np.array(_F32(0.707106781186547524)).view(np.int32)


def _log_ps(x: np.ndarray, fma: Callable[..., np.ndarray]) -> np.ndarray:
    """``log256_ps`` of float32 ``x`` in [2**-24, 1] (the clamp to the smallest normal float
    does nothing there; the sign bit is 0)."""
    bits = x.view(np.int32)
    m = bits & np.int32(0x007FFFFF)
    m |= np.int32(0x3F000000)  # the mantissa as a float in [0.5, 1)
    # -1 (all bits set) where m < sqrt(1/2), else 0: positive floats compare as their bits.
    small = m - _SQRT_HALF_BITS
    small >>= np.int32(31)
    exponent = bits >> np.int32(23)  # the biased exponent, at least 103 here
    exponent += small
    e = exponent.astype(_F32)
    e -= _F32(126)  # exact: the unbiased exponent plus 1, less 1 where small
    x = m.view(_F32) - _F32(1)  # exact (Sterbenz), never 0: m < 1
    small &= m  # m where small, +0 elsewhere
    x += small.view(_F32)
    del m, small, exponent
    z = x * x
    y = fma(_F32(_LOG_P[0]), x, _F32(_LOG_P[1]))
    for coefficient in _LOG_P[2:]:
        fma(y, x, _F32(coefficient), out=y)
    y *= x
    fma(y, z, e * _F32(-2.12194440e-4), out=y)
    fma(z, _F32(-0.5), y, out=y)
    x += y
    return fma(e, _F32(0.693359375), x, out=x)


def _sincos_ps(theta: np.ndarray, fma: Callable[..., np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``sincos256_ps`` of float32 ``theta`` in [0, 2 pi] (sign bit 0): ``(sin, cos)``."""
    j = (theta * _F32(1.27323954473516)).astype(np.int32)  # cvttps: truncation
    j += 1
    j &= ~np.int32(1)
    y = j.astype(_F32)
    octant = j.view(_U32)
    sign_sin = octant & _U32(4)
    sign_sin <<= _U32(29)
    sign_cos = octant - _U32(2)
    np.invert(sign_cos, out=sign_cos)
    sign_cos &= _U32(4)
    sign_cos <<= _U32(29)
    swap = octant & _U32(2)  # 2 where sin takes the cosine polynomial, and cos the sine's
    swap >>= _U32(1)
    np.negative(swap, out=swap)  # all bits set there, else 0
    del j, octant
    x = fma(y, _F32(-0.78515625), theta)
    fma(y, _F32(-2.4187564849853515625e-4), x, out=x)
    fma(y, _F32(-3.77489497744594108e-8), x, out=x)
    z = np.multiply(x, x, out=y)
    yc = fma(_F32(2.443315711809948e-5), z, _F32(-1.388731625493765e-3))
    fma(yc, z, _F32(4.166664568298827e-2), out=yc)
    yc *= z
    fma(yc, z, z * _F32(-0.5), out=yc)  # -(z * 0.5): rounding is symmetric
    yc += _F32(1)
    ys = fma(_F32(-1.9515295891e-4), z, _F32(8.3321608736e-3))
    fma(ys, z, _F32(-1.6666654611e-1), out=ys)
    ys *= z
    fma(ys, x, x, out=ys)
    sin, cos = ys.view(_U32), yc.view(_U32)
    swap &= sin ^ cos  # exchanged by a bitwise select: faster than np.where
    sin ^= swap
    sin ^= sign_sin
    cos ^= swap
    cos ^= sign_cos
    return sin.view(_F32), cos.view(_F32)


def fill16_avx2(
    u: np.ndarray, mean: np.float32, std: np.float32, out: np.ndarray | None = None
) -> np.ndarray:
    """``normal_fill_16_AVX2`` on rows of 16 uniform floats, into ``out`` (which may be ``u``)
    if given."""
    # Their inputs take 2**24 values each (u is a multiple of 2**-24): over all of them
    # the unchecked fused multiply-adds equal fma32's (tests/unit/test_torch_kernels.py).
    radius = _log_ps(_F32(1) - u[:, :8], fma32_unchecked)
    radius *= _F32(-2)
    np.sqrt(radius, out=radius)
    sin, cos = _sincos_ps(_TWO_PI * u[:, 8:], fma32_unchecked)
    if out is None:
        out = np.empty_like(u)
    np.multiply(radius, cos, out=out[:, :8])
    np.multiply(radius, sin, out=out[:, 8:])
    if mean != 0:
        return fma32(out, std, mean, out=out)
    # fma(x, std, +-0) rounds the exact product once, as a float32 product does, then adds the
    # signed zero (a -0 product plus +0 is +0).
    if std != 1:
        out *= std
    out += mean
    return out
