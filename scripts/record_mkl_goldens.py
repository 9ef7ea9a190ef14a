"""Record what Intel MKL's own ``viRngBernoulli`` draws, as goldens for flashdrop's emulation.

torch 2.1-2.6's x86-64 builds draw ``bernoulli_(p)`` with MKL (see
flashdrop/_random/torch_cpu/mkl.py).
This script calls MKL itself through ctypes, on random (seed, count, skip, p) cases and on cases
made to sit on the edges (seeds 0, m and 2**32 - 1; p exactly one of the stream's uniforms and the
doubles either side of it), and writes each case's mask as a digest: replayed in CI by
tests/unit/test_mkl_bernoulli.py without MKL.

Run it where MKL is installed (not a dependency of flashdrop, nor of its tests)::

    python3 -m venv /tmp/mkl && /tmp/mkl/bin/pip install mkl numpy
    /tmp/mkl/bin/python scripts/record_mkl_goldens.py tests/goldens/mkl-bernoulli.json.gz
"""

import argparse
import ctypes
import gzip
import hashlib
import json
import math
import pathlib
import sys

import numpy as np

VSL_BRNG_MCG31 = 1 << 20
VSL_RNG_METHOD_BERNOULLI_ICDF = 0
VSL_RNG_METHOD_UNIFORM_STD = 0
MODULUS = 2**31 - 1


def load_mkl() -> ctypes.CDLL:
    lib = pathlib.Path(sys.prefix) / "lib" / "libmkl_rt.so.3"
    mkl = ctypes.CDLL(str(lib))
    mkl.vslNewStream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_uint]
    mkl.vslSkipAheadStream.argtypes = [ctypes.c_void_p, ctypes.c_longlong]
    mkl.vslDeleteStream.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    mkl.viRngBernoulli.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_double,
    ]
    mkl.vdRngUniform.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_double),
        ctypes.c_double,
        ctypes.c_double,
    ]
    return mkl


def draw(mkl: ctypes.CDLL, seed: int, count: int, skip: int, p: float | None) -> np.ndarray:
    """MKL's Bernoulli mask (int32), or its uniforms (float64) when ``p`` is None."""
    stream = ctypes.c_void_p()
    assert mkl.vslNewStream(ctypes.byref(stream), VSL_BRNG_MCG31, seed) == 0
    try:
        assert mkl.vslSkipAheadStream(stream, skip) == 0
        if p is None:
            out = np.empty(count, dtype=np.float64)
            ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
            assert mkl.vdRngUniform(VSL_RNG_METHOD_UNIFORM_STD, stream, count, ptr, 0.0, 1.0) == 0
        else:
            out = np.empty(count, dtype=np.int32)
            ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
            assert mkl.viRngBernoulli(VSL_RNG_METHOD_BERNOULLI_ICDF, stream, count, ptr, p) == 0
    finally:
        mkl.vslDeleteStream(ctypes.byref(stream))
    return out


def digest(mask: np.ndarray) -> str:
    """The case's mask as 16 hex bytes (of its bits packed, 1 = kept)."""
    return hashlib.blake2b(np.packbits(mask.astype(bool)).tobytes(), digest_size=16).hexdigest()


def cases(rng: np.random.Generator, mkl: ctypes.CDLL, random_cases: int):
    """(seed, count, skip, p): the random cases, then the edges."""
    for _ in range(random_cases):
        seed = int(rng.integers(2**32))
        count = int(rng.choice([1, 7, 799, 800, 801, 1600, 4097, int(rng.integers(1, 300_000))]))
        skip = int(rng.choice([0, 0, 800 * int(rng.integers(1, 2000)), int(rng.integers(2**40))]))
        p = float(rng.choice([0.5, 0.9, 0.1, rng.random(), 1 / 3, 2 / 3, 0.999]))
        yield seed, count, skip, p
    for seed in (0, 1, MODULUS - 1, MODULUS, MODULUS + 1, 2 * MODULUS, 2**32 - 1):
        yield seed, 1000, 0, 0.5
    for p in (0.0, 5e-324, 1e-300, 1 - 2**-53, 1.0):
        yield 12345, 1000, 0, p
    for seed in (MODULUS - 1, MODULUS - 40):  # u rounds to 1 in float32: 0 even for p = 1
        yield seed, 1, 0, 1.0
    # p on a uniform of the stream, on the float32 values either side of it and on the midpoints
    # between them (float32 ties), each with the doubles either side: decides < against <= and
    # the precision MKL compares in (float32).
    for seed in (7, 2024, 4_000_000_000):
        u = draw(mkl, seed, 64, 0, None)
        for value in u[:8]:
            single = np.float32(value)
            above = np.nextafter(single, np.float32(2))
            below = np.nextafter(single, np.float32(-1))
            for point in (value, single, above, below, (single + above) / 2, (single + below) / 2):
                point = float(point)
                for p in (point, math.nextafter(point, 0), math.nextafter(point, 1)):
                    yield seed, 64, 0, p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--cases", type=int, default=400)
    args = parser.parse_args()
    mkl = load_mkl()
    version = ctypes.create_string_buffer(256)
    mkl.mkl_get_version_string(version, 256)
    rows = []
    for seed, count, skip, p in cases(np.random.default_rng(20), mkl, args.cases):
        mask = draw(mkl, seed, count, skip, p)
        rows.append([seed, count, skip, p.hex(), int(mask.sum()), digest(mask)])
    golden = {
        "source": version.value.decode().strip(),
        "recipe": "viRngBernoulli(VSL_RNG_METHOD_BERNOULLI_ICDF) on vslNewStream(VSL_BRNG_MCG31)"
        " after vslSkipAheadStream(skip)",
        "columns": ["seed", "count", "skip", "p (float.hex)", "ones", "blake2b-128 of packbits"],
        "cases": rows,
    }
    with gzip.open(args.out, "wt") as file:
        json.dump(golden, file, separators=(",", ":"))
    print(f"{len(rows)} cases from {golden['source']} -> {args.out}")


if __name__ == "__main__":
    main()
