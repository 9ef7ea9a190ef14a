"""Record what a real torch release draws, as goldens that flashdrop's torch mode must reproduce.

Runs with nothing but torch and numpy (not flashdrop), so that any release can be installed in a
throwaway venv and recorded there::

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.6.0 numpy
    /tmp/tv/bin/python scripts/record_torch_goldens.py tests/goldens/

writes ``tests/goldens/torch-2.6.0-x86_64-amd.json.gz`` (release, machine, CPU vendor). On a fixed
grid (:func:`grid`: the dropout family on several shapes, p and dtypes, SDPA's dropout, ``rand``,
``randn``, ``normal``, ``randint``, ``randperm``, ``bernoulli``, and a mixed sequence), each case
seeds torch, makes its calls, and records after every call a digest of the result's bytes, its
number of nonzero elements and a digest of ``torch.get_rng_state()`` (or the exception raised,
and the state). Inputs come from numpy, so
the replay (tests/parity/test_torch_goldens.py) makes the same ones without torch. Digests:
blake2b-128 of the bytes, float16/bfloat16 widened to float32 first.

Outputs never depend on this CPU's floating point: the dropout family multiplies and adds
elementwise (IEEE-exact), and SDPA is given zero queries and keys (uniform weights 1/S, exact) and
an identity as values, so its output is its dropped weights, exactly.
"""

import argparse
import gzip
import hashlib
import json
import math
import pathlib
import platform
import warnings

import numpy as np
import torch
import torch.nn.functional as F

SEEDS = (0, 2**40 + 7)
MCG31_MODULUS = 2**31 - 1
MCG31_MULTIPLIER = 1132489760


def grid() -> list[dict]:
    """The cases: each a dict of JSON values that the replay reads back as they are."""
    cases = []
    dropout_shapes = {
        "dropout": [(3, 1000), (2, 3, 4, 5), (7,)],
        "alpha_dropout": [(3, 1000), (2, 3, 4, 5)],
        "feature_alpha_dropout": [(4, 900, 2), (2, 3, 4, 5)],
        "dropout1d": [(4, 900, 2), (6, 5)],
        "dropout2d": [(4, 900, 2, 2), (3, 4, 5)],
        "dropout3d": [(2, 6, 5, 3, 2), (6, 5, 3, 2)],
    }
    for fn, shapes in dropout_shapes.items():
        for shape in shapes:
            for p in (0.1, 0.5, 0.9):
                cases.append({"op": fn, "shape": shape, "p": p, "dtype": "float32"})
    for dtype in ("float64", "bfloat16", "float16"):
        cases.append({"op": "dropout", "shape": (3, 1000), "p": 0.3, "dtype": dtype})
        cases.append({"op": "alpha_dropout", "shape": (3, 1000), "p": 0.3, "dtype": dtype})
    for p in (0.2, 0.5):
        cases.append({"op": "sdpa", "shape": (2, 3, 40, 16), "p": p})
    for dtype in ("float32", "float64", "float16", "bfloat16"):
        for size in (7, 1000):
            cases.append({"op": "rand", "size": size, "dtype": dtype})
    for size in (5, 16, 17, 1000):
        cases.append({"op": "randn", "size": size, "dtype": "float32"})
    for size, dtype in ((5, "float64"), (100, "float64"), (40, "bfloat16"), (40, "float16")):
        cases.append({"op": "randn", "size": size, "dtype": dtype})
    for size in (3, 100):
        cases.append({"op": "normal", "mean": 2.0, "std": 3.0, "size": size})
        cases.append({"op": "normal_tensor", "size": size})
    for low, high, size in ((0, 10, 1000), (-3, 2**30, 100), (0, 2**40, 100)):
        cases.append({"op": "randint", "low": low, "high": high, "size": size})
    for n in (1, 2, 10, 1000, 20000):
        cases.append({"op": "randperm", "n": n})
    for dtype in ("float32", "float64"):
        cases.append({"op": "bernoulli", "size": 1000, "dtype": dtype})
    for p in (0.3, 0.999):
        cases.append({"op": "bernoulli_p", "size": 3000, "p": p, "dtype": "float32"})
    cases.append({"op": "sequence"})
    return [dict(case, shape=list(case["shape"])) if "shape" in case else case for case in cases]


def edge_cases(seed: int) -> list[dict]:
    """``bernoulli(x, p)`` with p on the float32 boundaries of the MKL stream's first uniforms.

    MKL compares ``float32(u) < float32(p)``; these p (a uniform itself, the float32 values and
    midpoints next to it, one double either side) tell that from a comparison in double. The
    stream is the one torch 2.1-2.6 would seed from the first mt19937 word after ``seed``
    (computed here only to place the p; what torch draws with them is the golden).
    """
    bits = np.random.MT19937()
    bits._legacy_seeding(seed % 2**32)
    x = int(bits.random_raw(1)[0]) % MCG31_MODULUS or 1
    cases = []
    for _ in range(3):
        u = x / MCG31_MODULUS
        single = np.float32(u)
        above = np.nextafter(single, np.float32(2))
        for point in (u, float(single), float(above), (float(single) + float(above)) / 2):
            for p in (point, math.nextafter(point, 0), math.nextafter(point, 1)):
                cases.append({"op": "bernoulli_p", "size": 3, "p": p, "dtype": "float32"})
        x = x * MCG31_MULTIPLIER % MCG31_MODULUS
    return cases


def sample(shape: list[int], dtype: str) -> torch.Tensor:
    """The case's input: normal values from numpy, seeded by the shape."""
    values = np.random.default_rng([*shape, 7]).standard_normal(shape, dtype=np.float64)
    return torch.from_numpy(values.astype(np.float32)).to(getattr(torch, dtype))


def probabilities(size: int, dtype: str) -> torch.Tensor:
    """bernoulli's probabilities, from numpy."""
    values = np.random.default_rng([size, 11]).random(size)
    return torch.from_numpy(values).to(getattr(torch, dtype))


def calls(case: dict) -> list:
    """The case's calls, each a function of nothing returning a tensor."""
    op = case["op"]
    dtype = getattr(torch, case.get("dtype", "float32"))
    if op == "sdpa":
        n, h, length, source = case["shape"]
        q, k = torch.zeros(n, h, length, source), torch.zeros(n, h, source, source)
        v = torch.eye(source).expand(n, h, source, source)
        return [lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=case["p"])] * 2
    if op in ("dropout", "alpha_dropout", "feature_alpha_dropout") or op.startswith("dropout"):
        x = sample(case["shape"], case["dtype"])
        return [lambda: getattr(F, op)(x, case["p"], True)] * 2
    if op == "rand":
        return [lambda: torch.rand(case["size"], dtype=dtype)] * 2
    if op == "randn":
        return [lambda: torch.randn(case["size"], dtype=dtype)] * 2
    if op == "normal":
        return [lambda: torch.normal(case["mean"], case["std"], size=(case["size"],))] * 2
    if op == "normal_tensor":
        mean, std = probabilities(case["size"], "float32"), probabilities(case["size"], "float32")
        return [lambda: torch.normal(mean, std + 0.5)] * 2
    if op == "randint":
        return [lambda: torch.randint(case["low"], case["high"], (case["size"],))] * 2
    if op == "randperm":
        return [lambda: torch.randperm(case["n"])] * 2
    if op == "bernoulli":
        probs = probabilities(case["size"], case["dtype"])
        return [lambda: torch.bernoulli(probs)] * 2
    if op == "bernoulli_p":
        x = torch.zeros(case["size"], dtype=dtype)
        return [lambda: torch.bernoulli(x, case["p"])] * 2
    if op == "sequence":
        x = sample([4, 300], "float32")
        return [
            lambda: F.dropout(x, 0.5, True),
            lambda: torch.randn(3),  # caches Box-Muller's second value in the state
            lambda: F.dropout2d(x.reshape(4, 3, 10, 10), 0.25, True),
            lambda: torch.rand(5),
            lambda: torch.randn(20),
            lambda: torch.bernoulli(x.sigmoid()),
            lambda: F.alpha_dropout(x, 0.2, True),
        ]
    raise ValueError(f"unknown op {op!r}")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def result_digest(out: torch.Tensor) -> str:
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    return digest(out.contiguous().numpy().tobytes())


def state_digest() -> str:
    return digest(torch.get_rng_state().numpy().tobytes())


def cpu_vendor() -> str:
    """``"intel"``, ``"amd"`` or ``"arm"``: what the CPU says (CPUID, through /proc/cpuinfo)."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm"
    text = pathlib.Path("/proc/cpuinfo").read_text()
    return "intel" if "GenuineIntel" in text else "amd" if "AuthenticAMD" in text else "unknown"


def record() -> dict:
    warnings.simplefilter("ignore")  # legacy dropout shapes warn
    rows = []
    for seed in SEEDS:
        for case in grid() + edge_cases(seed):
            torch.manual_seed(seed)
            results = []
            for call in calls(case):
                try:
                    out = call()
                except Exception as error:  # what this release raises, flashdrop must raise
                    results.append([f"{type(error).__name__}: {error}", None, state_digest()])
                    continue
                results.append([result_digest(out), int(out.count_nonzero()), state_digest()])
            rows.append({"seed": seed, **case, "results": results})
    return {
        "torch": torch.__version__.split("+")[0],
        "build": torch.__version__,
        "machine": platform.machine(),
        "cpu": cpu_vendor(),
        "mkl": torch.backends.mkl.is_available(),
        "threads": torch.get_num_threads(),
        "results": "per call: [blake2b-128 of the result, nonzero count, blake2b-128 of the"
        " state], or [the exception's type and message, None, blake2b-128 of the state]",
        "cases": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--cpu", help="the vendor to name the file for (default: this CPU's)")
    args = parser.parse_args()
    golden = record()
    if args.cpu:
        golden["cpu"] = args.cpu
    name = f"torch-{golden['torch']}-{golden['machine']}-{golden['cpu']}.json.gz"
    text = json.dumps(golden, separators=(",", ":")).encode()
    with gzip.GzipFile(args.folder / name, "wb", mtime=0) as file:  # the same bytes each time
        file.write(text)
    print(f"{len(golden['cases'])} cases from torch {golden['build']} -> {args.folder / name}")


if __name__ == "__main__":
    main()
