"""flashdrop's MKL MCG31 Bernoulli kernel against Intel MKL's own draws.

tests/goldens/mkl-bernoulli.json.gz was recorded from MKL's ``viRngBernoulli`` through ctypes
(scripts/record_mkl_goldens.py): random (seed, count, skip, p) cases, edge seeds, and p placed
exactly on the stream's uniforms and the doubles either side of them. MKL is not needed here.
"""

import gzip
import hashlib
import json
import pathlib

import numpy as np
import pytest

from flashdrop._random.torch_cpu import mkl as _mkl_bernoulli

GOLDEN = pathlib.Path(__file__).parents[1] / "goldens" / "mkl-bernoulli.json.gz"
CASES = json.loads(gzip.decompress(GOLDEN.read_bytes()))["cases"]


def digest(mask: np.ndarray) -> str:
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()


@pytest.mark.parametrize(("seed", "count", "skip", "p", "ones", "expected"), CASES)
def test_same_mask_as_mkl(seed, count, skip, p, ones, expected):
    mask = _mkl_bernoulli.bernoulli(seed, count, float.fromhex(p), start=skip)
    assert (int(mask.sum()), digest(mask)) == (ones, expected)


def test_the_golden_covers_the_edges():
    """The cases that decide the recipe's details are in the golden."""
    seeds = {case[0] for case in CASES}
    assert {0, _mkl_bernoulli.MODULUS, 2**32 - 1} <= seeds  # x0 = 1 where seed mod m is 0
    assert any(case[2] >= 2**32 for case in CASES)  # skips past 32 bits
    assert len(CASES) >= 400


def test_stream_is_the_recurrence():
    """x[i + 1] = a * x[i] mod m, from x[0] = seed mod m, whatever the table's growth."""
    x = _mkl_bernoulli.stream(2**32 - 1, 3000)
    assert x[0] == (2**32 - 1) % _mkl_bernoulli.MODULUS
    assert np.array_equal(x[1:], x[:-1] * _mkl_bernoulli.MULTIPLIER % _mkl_bernoulli.MODULUS)
    assert np.array_equal(_mkl_bernoulli.stream(2**32 - 1, 5, start=2000), x[2000:2005])
