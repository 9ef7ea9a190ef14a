"""Intel MKL's Bernoulli draw, as torch 2.1-2.6's x86-64 builds make ``bernoulli_(p)`` with it.

Those builds seed an MKL ``VSL_BRNG_MCG31`` stream with one 32-bit word of the CPU generator and
fill the mask with ``viRngBernoulli(VSL_RNG_METHOD_BERNOULLI_ICDF, ..., p)``, each
``parallel_for`` chunk of 800 elements skipping ahead to its start (so the thread count does not
change the mask). MCG31m1 is the multiplicative congruential generator

    x[0] = seed mod m (1 where that is 0),    x[i + 1] = a * x[i] mod m,
    m = 2**31 - 1,    a = 1132489760,

whose outputs are ``u[i] = x[i] / m`` (the first one is ``x[0]`` itself). Element ``i`` is 1
where ``float32(u[i]) < float32(p)``: MKL compares in single precision (``x / m`` divided in
double, then rounded to float32, is MKL's own ``vsRngUniform``), so a ``p`` one double ulp above
``u[i]`` can still give 0, and ``p = 1`` gives 0 where ``u[i]`` rounds to 1. As ``float32(x / m)``
never decreases with ``x``, that is ``x[i] < t`` for one integer ``t``, found once per call.

Skipping ahead is multiplying by a power of ``a``, so the whole stream is
``x[i] = x[0] * a**i mod m``: the powers ``a**i mod m`` are built once by doubling (the first half
times ``a**half``) and kept, and each draw is one multiplication, one remainder and one integer
comparison per element. Products of two residues stay below ``2**62``: exact in uint64.

Checked against MKL itself (``scripts/record_mkl_goldens.py``, replayed by
``tests/unit/test_mkl_bernoulli.py``) and against torch 2.1-2.6
(``tests/parity/test_torch_goldens.py``).
"""

import threading

import numpy as np

from flashdrop._random.torch_cpu.generator import TorchStream

MODULUS = 2**31 - 1
MULTIPLIER = 1132489760

_lock = threading.Lock()
_powers = np.ones(1, dtype=np.uint64)  # a**i mod m for i < len(_powers), grown on demand


def _powers_below(count: int) -> np.ndarray:
    """``a**i mod m`` for ``i`` in ``[0, count)`` (a read-only view of the shared table)."""
    global _powers
    with _lock:
        table = _powers
        while len(table) < count:
            step = pow(MULTIPLIER, len(table), MODULUS)  # a**len: the next half's first power
            table = np.concatenate([table, table * np.uint64(step) % np.uint64(MODULUS)])
            table.flags.writeable = False
        _powers = table
    return table[:count]


def stream(seed: int, count: int, start: int = 0) -> np.ndarray:
    """The MCG31m1 states ``x[start], ..., x[start + count - 1]`` of the stream seeded with ``seed``
    (an unsigned 32-bit integer), as uint64."""
    first = seed % MODULUS or 1
    first = first * pow(MULTIPLIER, start, MODULUS) % MODULUS  # vslSkipAheadStream(start)
    return _powers_below(count) * np.uint64(first) % np.uint64(MODULUS)


def bernoulli_scalar(stream: TorchStream, count: int, q: float) -> np.ndarray:
    """torch 2.1-2.6's x86-64 ``bernoulli_(q)`` with a scalar probability (dropout's draw):
    ``count`` bools, True where kept, from an MKL stream seeded with one word of ``stream``
    (the one word these builds take from the CPU generator per call)."""
    return bernoulli(int(stream.words(1)[0]), count, q)


def bernoulli(seed: int, count: int, p: float, start: int = 0) -> np.ndarray:
    """``viRngBernoulli(VSL_RNG_METHOD_BERNOULLI_ICDF)`` of ``count`` elements with probability
    ``p`` of a 1, from an MCG31 stream seeded with ``seed`` and skipped ahead by ``start``: a bool
    array, True for 1."""
    return stream(seed, count, start) < np.uint64(_threshold(p))


def _threshold(p: float) -> int:
    """The least ``x`` in ``[0, m]`` with ``float32(x / m) >= float32(p)``, for ``0 <= p <= 1``."""
    target = np.float32(p)
    low, high = 0, MODULUS  # float32(m / m) = 1 >= target
    while low < high:
        middle = (low + high) // 2
        if np.float32(middle / MODULUS) >= target:
            high = middle
        else:
            low = middle + 1
    return low
