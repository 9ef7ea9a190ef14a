"""avx_mathfun.h's ``log256_ps`` and ``sincos256_ps`` (Cephes polynomials), lane by lane in
float32, with the multiply-adds torch's x86-64 build fuses (GCC's ``-ffp-contract=fast``), and
torch's ``normal_fill_16_AVX2`` made of them: the float32 normal kernel of torch 2.13 on x86-64."""

import math
from collections.abc import Callable

import numpy as np

from flashdrop._random.torch_cpu.fma import fma32, fma32_unchecked

_F32 = np.float32

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
_MIN_NORM_POS = np.array(0x00800000, np.uint32).view(_F32)
_TWO_PI = _F32(2.0 * math.pi)


def _log_ps(x: np.ndarray, fma: Callable[..., np.ndarray]) -> np.ndarray:
    x = np.maximum(x, _MIN_NORM_POS)
    bits = x.view(np.uint32)
    exponent = (bits >> np.uint32(23)).astype(np.int32) - 0x7F
    x = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(_F32)  # mantissa in [0.5, 1)
    e = exponent.astype(_F32) + _F32(1)
    small = x < _F32(0.707106781186547524)
    kept = np.where(small, x, _F32(0))
    x = x - _F32(1)
    e = e - small.astype(_F32)
    x = x + kept
    z = x * x
    y = np.full_like(x, _F32(_LOG_P[0]))
    for coefficient in _LOG_P[1:]:
        y = fma(y, x, _F32(coefficient))
    y = y * x
    y = fma(y, z, e * _F32(-2.12194440e-4))
    y = fma(z, _F32(-0.5), y)
    x = x + y
    return fma(e, _F32(0.693359375), x)


def _sincos_ps(theta: np.ndarray, fma: Callable[..., np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    bits = theta.view(np.uint32)
    sign_sin = bits & np.uint32(0x80000000)
    x = (bits & np.uint32(0x7FFFFFFF)).view(_F32)
    j = (x * _F32(1.27323954473516)).astype(np.int32)  # cvttps: truncation
    j = (j + 1) & ~np.int32(1)
    y = j.astype(_F32)
    sign_sin = sign_sin ^ ((j & 4).astype(np.uint32) << np.uint32(29))
    sign_cos = ((~(j - 2)) & 4).astype(np.uint32) << np.uint32(29)
    use_sin_poly = (j & 2) == 0
    x = fma(y, _F32(-0.78515625), x)
    x = fma(y, _F32(-2.4187564849853515625e-4), x)
    x = fma(y, _F32(-3.77489497744594108e-8), x)
    z = x * x
    yc = fma(_F32(2.443315711809948e-5), z, _F32(-1.388731625493765e-3))
    yc = fma(yc, z, _F32(4.166664568298827e-2))
    yc = yc * z
    yc = fma(yc, z, -(z * _F32(0.5)))
    yc = yc + _F32(1)
    ys = fma(_F32(-1.9515295891e-4), z, _F32(8.3321608736e-3))
    ys = fma(ys, z, _F32(-1.6666654611e-1))
    ys = ys * z
    ys = fma(ys, x, x)
    sin = np.where(use_sin_poly, ys, yc).view(np.uint32) ^ sign_sin
    cos = np.where(use_sin_poly, yc, ys).view(np.uint32) ^ sign_cos
    return sin.view(_F32), cos.view(_F32)


def fill16_avx2(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """``normal_fill_16_AVX2`` on rows of 16 uniform floats."""
    # Their inputs take 2**24 values each (u is a multiple of 2**-24): over all of them
    # the unchecked fused multiply-adds equal fma32's (tests/unit/test_torch_kernels.py).
    radius = np.sqrt(_F32(-2) * _log_ps(_F32(1) - u[:, :8], fma32_unchecked))
    sin, cos = _sincos_ps(_TWO_PI * u[:, 8:], fma32_unchecked)
    out = np.empty_like(u)
    if mean == 0 and std == 1:  # fma(x, 1, 0) is x + 0: x, except that -0 becomes +0
        np.multiply(radius, cos, out=out[:, :8])
        np.multiply(radius, sin, out=out[:, 8:])
        out += _F32(0)
        return out
    out[:, :8] = fma32(radius * cos, std, mean)
    out[:, 8:] = fma32(radius * sin, std, mean)
    return out
