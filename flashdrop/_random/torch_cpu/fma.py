"""Fused multiply-adds (one rounding), which numpy lacks: float32's (``_mm256_fmadd_ps``) and
float64's (C's ``fma``), exact for the values torch's kernels give them."""

import numpy as np

_F32 = np.float32


def _round_to_odd_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` in float64 rounded to odd: the exact sum, or if inexact its neighbour with an
    odd last bit. Rounding that once more to a format at least 2 bits narrower is correct."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # exact: a + b == s + err (TwoSum)
    bits = s.view(np.int64)
    fix = (err != 0) & ((bits & 1) == 0)
    if np.any(fix):
        away = (err > 0) == (s > 0)
        bits = np.where(fix, np.where(away, bits + 1, bits - 1), bits)
    return bits.view(np.float64)


_HALF_32 = np.int64(1 << 28)  # float64's bits below float32's last, at a float32 midpoint
_BELOW_32 = np.int64((1 << 29) - 1)


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``a * b + c`` with one rounding (``_mm256_fmadd_ps``), into ``out`` if given.

    The product is exact in float64 and the sum rounded once to float64; rounding that to
    float32 is correct unless it landed exactly on a float32 midpoint (a double rounding): only
    those elements are redone, rounding the sum to odd.
    """
    total = np.multiply(a, b, dtype=np.float64)  # exact: 48 bits
    np.add(total, c, out=total)
    midpoint = np.bitwise_and(total.view(np.int64), _BELOW_32)
    midpoint = midpoint == _HALF_32
    if midpoint.any():
        product, addend = np.broadcast_arrays(
            np.multiply(a, b, dtype=np.float64), np.asarray(c, np.float64)
        )
        total[midpoint] = _round_to_odd_sum(product[midpoint], addend[midpoint])
    if out is None:
        return total.astype(_F32)
    out[...] = total
    return out


def fma32_unchecked(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """:func:`fma32` without its test for a double rounding: exact where the sum of the exact
    product and ``c`` is exact in float64 or lands on no float32 midpoint, as checked
    exhaustively where it is used. Written into ``out`` (float32, which may be ``a``, ``b`` or
    ``c``) if given."""
    total = np.multiply(a, b, dtype=np.float64)
    if out is None:
        out = np.empty(total.shape, _F32)
    return np.add(total, c, out=out)  # the sum in float64, rounded once to float32


_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter for float64


_LARGE = 2.0**995  # above this, Veltkamp's split (a product by 2**27 + 1) may overflow
_SCALE = 600  # such a factor is scaled by 2**-600 (exactly), the result by 2**600


def fma64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float64 ``a * b + c`` with one rounding (C's ``fma``).

    With an infinite or NaN operand, IEEE's ``a * b + c`` (the same as ``fma``'s). With a factor
    above 2**995, each such factor is scaled by 2**-600, ``c`` by as much as the product, and the
    result back (exact, but for a ``c`` the scaling flushes below 2**-422, which cannot change a
    result of that size except in a rounding tie). Otherwise :func:`_fma64_finite`.
    """
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
        large = finite & ((np.abs(a) > _LARGE) | (np.abs(b) > _LARGE))
        if finite.all() and not large.any():
            return _fma64_finite(a, b, c)
        a, b, c, finite, large = np.broadcast_arrays(a, b, c, finite, large)
        out = np.atleast_1d(a * b + c)
        small = (finite & ~large).reshape(out.shape)
        large = large.reshape(out.shape)
        a, b, c = (v.reshape(out.shape) for v in (a, b, c))
        out[small] = _fma64_finite(a[small], b[small], c[small])
        a, b, c = a[large], b[large], c[large]
        scale_a, scale_b = (np.where(np.abs(v) > _LARGE, _SCALE, 0) for v in (a, b))
        scale = scale_a + scale_b
        scaled = _fma64_finite(np.ldexp(a, -scale_a), np.ldexp(b, -scale_b), np.ldexp(c, -scale))
        out[large] = np.ldexp(scaled, scale)
    return out.reshape(finite.shape)


def _fma64_finite(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`fma64` for finite values with factors at most 2**995.

    The product is split exactly into ``p + e`` (Dekker's TwoProduct); the sum of three is rounded
    once with Boldo and Melquiond's round-to-odd algorithm.
    """
    p = a * b
    t = _SPLIT * a
    a_hi = t - (t - a)
    a_lo = a - a_hi
    t = _SPLIT * b
    b_hi = t - (t - b)
    b_lo = b - b_hi
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    # (uh, ul) = TwoSum(e, c); (th, tl) = TwoSum(p, uh); result = RN(th + RO(tl + ul)).
    uh = e + c
    bb = uh - e
    ul = (e - (uh - bb)) + (c - bb)
    th = p + uh
    bb = th - p
    tl = (p - (th - bb)) + (uh - bb)
    return th + _round_to_odd_sum(tl, ul)
