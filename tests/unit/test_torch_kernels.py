"""The exact arithmetic under flashdrop's torch-mode draws: fused multiply-adds and randperm.

(The draws themselves are compared with torch in tests/parity/test_draws_parity.py.)
"""

from fractions import Fraction

import numpy as np
import pytest

from flashdrop._random.torch_cpu import avx2, fma, kernels


def nearest_float32(value: Fraction) -> np.float32:
    """``value`` rounded once to float32, to nearest, ties to even (exactly, via Fractions)."""
    low = np.float32(float(value))  # within one float32 step of the answer
    candidates = {
        low,
        np.nextafter(low, np.float32(np.inf)),
        np.nextafter(low, np.float32(-np.inf)),
    }
    best = min(
        candidates, key=lambda c: (abs(Fraction(float(c)) - value), int(c.view(np.int32)) & 1)
    )
    return best


def test_fma32_rounds_once():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(4000).astype(np.float32) for _ in range(3))
    # Hard cases: c cancelling most of a * b, and sums on float32 midpoints.
    c[:1000] = -(a[:1000].astype(np.float64) * b[:1000]).astype(np.float32)
    a[1000:1500], b[1000:1500] = np.float32(1 + 2**-12), np.float32(1 + 2**-12)
    c[1000:1500] = np.float32(2**-24) * rng.integers(-8, 8, 500).astype(np.float32)
    got = fma.fma32(a, b, c)
    for x, y, z, r in zip(a, b, c, got, strict=True):
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        assert r == nearest_float32(exact)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e5])
def test_fma64_rounds_once(scale):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3000) * scale, rng.standard_normal(3000)
    c = rng.standard_normal(3000) * scale
    c[:1000] = -a[:1000] * b[:1000]  # heavy cancellation
    got = fma.fma64(a, b, c)
    for x, y, z, r in zip(a, b, c, got, strict=True):
        assert r == float(Fraction(x) * Fraction(y) + Fraction(z))  # float(): correctly rounded


class Words:
    """A stand-in stream: given words, in order."""

    def __init__(self, words: np.ndarray) -> None:
        self._words = words

    def words(self, count: int) -> np.ndarray:
        taken, self._words = self._words[:count], self._words[count:]
        return taken


def fisher_yates(n: int, words: np.ndarray) -> list[int]:
    perm = list(range(n))
    for i in range(n - 1):
        j = i + int(words[i]) % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def adversarial_words(rng: np.random.Generator, n: int, trial: int) -> np.ndarray:
    """Words for randperm(n): random, or (by ``trial % 3``) mostly short swaps, many of a
    position with itself, or always the last position or itself: long chains."""
    words = rng.integers(0, 2**32, n, dtype=np.uint32)
    if trial % 3 == 0:
        words %= np.uint32(3)
    elif trial % 3 == 1:
        words = (np.arange(n, 0, -1) - 1).astype(np.uint32) * (words & np.uint32(1))
    return words


def test_randperm_resolves_fisher_yates_exactly():
    """The array-operation randperm is the sequential swap loop, self-swaps and chains included."""
    rng = np.random.default_rng(2)
    for n in [*range(2, 40), 100, 1000, 4321]:
        for trial in range(12 if n < 100 else 3):
            words = adversarial_words(rng, n, trial)
            assert kernels.randperm(Words(words), n).tolist() == fisher_yates(n, words)


@pytest.mark.parametrize("blocks, extra", [(1, -1), (1, 0), (1, 1), (1, 2), (2, 1), (3, 7)])
def test_randperm_resolves_fisher_yates_across_blocks(blocks, extra):
    """Sizes around whole blocks of steps: chains of swaps that cross from one block into the
    next, and a last block of one step or none."""
    n = blocks * kernels._STEPS + extra
    rng = np.random.default_rng(n)
    for trial in range(3):
        words = adversarial_words(rng, n, trial)
        assert kernels.randperm(Words(words), n).tolist() == fisher_yates(n, words)


def _every_uniform_float(chunk: int = 1 << 21):
    """All 2**24 values of torch's uniform float, ``k * 2**-24``, in pieces."""
    for start in range(0, 1 << 24, chunk):
        yield np.arange(start, start + chunk, dtype=np.float32) * np.float32(2.0**-24)


def test_log_and_sincos_need_no_double_rounding_check():
    """randn's float32 path computes avx_mathfun's log of ``1 - u`` and sincos of ``2 pi u``
    with fused multiply-adds that skip fma32's test for a double rounding; ``u`` takes 2**24
    values, and for every one of them the results are fma32's: a proof by exhaustion."""
    unchecked = fma.fma32_unchecked
    for u in _every_uniform_float():
        v = np.float32(1) - u
        fast = avx2._log_ps(v, unchecked)
        exact = avx2._log_ps(v, fma.fma32)
        assert np.array_equal(fast.view(np.uint32), exact.view(np.uint32))
        theta = avx2._TWO_PI * u
        for fast, exact in zip(
            avx2._sincos_ps(theta, unchecked),
            avx2._sincos_ps(theta, fma.fma32),
            strict=True,
        ):
            assert np.array_equal(fast.view(np.uint32), exact.view(np.uint32))


def test_the_unchecked_fma_can_differ_elsewhere():
    """The exhaustive check above can fail: off that domain skipping the test gives a wrong
    result (a sum that double-rounds through float64)."""
    # a * b = 1 + 2**-11 + 2**-24, halfway between two float32; c tips it up, but not in float64.
    a = b = np.array([1 + 2.0**-12], np.float32)
    c = np.array([2.0**-80], np.float32)
    assert fma.fma32(a, b, c)[0] == np.float32(1 + 2.0**-11 + 2.0**-23)
    assert fma.fma32_unchecked(a, b, c)[0] == np.float32(1 + 2.0**-11)


def test_randn_of_a_zero_uniform_is_plus_zero():
    """``u1 == 0`` gives a radius of -0.0 (``sqrt(-2 * log(1))``); torch's final
    ``fma(x, std=1, mean=0)`` makes the normals +0.0, as the shortcut for std 1, mean 0 must."""
    u = np.full((1, 16), 0.25, np.float32)
    u[0, 0], u[0, 8] = 0, 0.1  # lane 0: radius -0.0, theta 0.2 pi (cos, sin > 0)
    for out in (
        avx2.fill16_avx2(u, np.float32(0), np.float32(1)),
        kernels._fill16_libm(u.astype(np.float64), 0.0, 1.0),
    ):
        assert out[0, 0] == 0 and not np.signbit(out[0, 0])
        assert out[0, 8] == 0 and not np.signbit(out[0, 8])
    minus_zero = np.array([-0.0], np.float32)
    assert not np.signbit(fma.fma32(minus_zero, np.float32(1), np.float32(0))[0])
