"""Torch mode against recorded goldens of every verified torch release, without that torch.

Each tests/goldens/torch-<release>-<machine>-<cpu>.json.gz was written by
scripts/record_torch_goldens.py inside a venv holding that real torch release: per case (a
dropout function, SDPA's dropout, rand/randn/normal/randint/randperm/bernoulli, a mixed
sequence), per call, digests of the result and of ``torch.get_rng_state()``. Here flashdrop, with
the golden's release and CPU as its torch target, makes the same calls on the same inputs
(numpy's, as in the script) and must give the same digests: bit for bit, generator included.
"""

import gzip
import hashlib
import json
import pathlib
import warnings

import mlx.core as mx
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop._random import target as _torch_target

GOLDENS = sorted((pathlib.Path(__file__).parents[1] / "goldens").glob("torch-*.json.gz"))


def load(path: pathlib.Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def sample(shape: list[int], dtype: str) -> mx.array:
    """The script's ``sample``: normal values from numpy, seeded by the shape."""
    values = np.random.default_rng([*shape, 7]).standard_normal(shape, dtype=np.float64)
    return mx.array(values.astype(np.float32)).astype(getattr(mx, dtype))


def probabilities(size: int, dtype: str) -> mx.array:
    """The script's ``probabilities``."""
    values = np.random.default_rng([size, 11]).random(size)
    return mx.array(values.astype(np.float32) if dtype == "float32" else values, getattr(mx, dtype))


def calls(case: dict) -> list:
    """The script's ``calls``, on flashdrop."""
    op = case["op"]
    dtype = getattr(mx, case.get("dtype", "float32"))
    if op == "sdpa":
        n, h, length, source = case["shape"]
        q, k = mx.zeros((n, h, length, source)), mx.zeros((n, h, source, source))
        v = mx.broadcast_to(mx.eye(source), (n, h, source, source))
        return [lambda: F.scaled_dot_product_attention(q, k, v, dropout_p=case["p"])] * 2
    if op in ("alpha_dropout", "feature_alpha_dropout") or op.startswith("dropout"):
        x = sample(case["shape"], case["dtype"])
        return [lambda: getattr(F, op)(x, case["p"], True)] * 2
    if op == "rand":
        return [lambda: flashdrop.rand(case["size"], dtype=dtype)] * 2
    if op == "randn":
        return [lambda: flashdrop.randn(case["size"], dtype=dtype)] * 2
    if op == "normal":
        return [lambda: flashdrop.normal(case["mean"], case["std"], size=(case["size"],))] * 2
    if op == "normal_tensor":
        mean, std = probabilities(case["size"], "float32"), probabilities(case["size"], "float32")
        return [lambda: flashdrop.normal(mean, std + 0.5)] * 2
    if op == "randint":
        return [lambda: flashdrop.randint(case["low"], case["high"], (case["size"],))] * 2
    if op == "randperm":
        return [lambda: flashdrop.randperm(case["n"])] * 2
    if op == "bernoulli":
        probs = probabilities(case["size"], case["dtype"])
        return [lambda: flashdrop.bernoulli(probs)] * 2
    if op == "bernoulli_p":
        x = mx.zeros(case["size"], dtype=dtype)
        return [lambda: flashdrop.bernoulli(x, case["p"])] * 2
    if op == "sequence":
        x = sample([4, 300], "float32")
        return [
            lambda: F.dropout(x, 0.5, True),
            lambda: flashdrop.randn(3),
            lambda: F.dropout2d(x.reshape(4, 3, 10, 10), 0.25, True),
            lambda: flashdrop.rand(5),
            lambda: flashdrop.randn(20),
            lambda: flashdrop.bernoulli(mx.sigmoid(x)),
            lambda: F.alpha_dropout(x, 0.2, True),
        ]
    raise ValueError(f"unknown op {op!r}")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def result(out: mx.array) -> list:
    """[digest, nonzero count] as the script records them (half floats widened to float32)."""
    if out.dtype in (mx.float16, mx.bfloat16):
        out = out.astype(mx.float32)
    values = np.array(out)
    return [digest(values.tobytes()), int(np.count_nonzero(values))]


def state_digest() -> str:
    return digest(bytes(np.array(flashdrop.get_rng_state())[:5056]))


def replay(golden: dict, case: dict) -> list:
    with (
        flashdrop.torch_target(golden["torch"], cpu=golden["cpu"]),
        flashdrop.rng_mode("torch"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # legacy dropout shapes warn
        flashdrop.manual_seed(case["seed"])
        results = []
        for call in calls(case):
            try:
                results.append([*result(call()), state_digest()])
            except Exception as error:  # the golden holds what torch raised
                results.append([f"{type(error).__name__}: {error}", None, state_digest()])
        return results


# flashdrop's refusal of the draws it cannot reproduce for arm64 targets (float32 normals of 16
# or more elements, computed with the C library's logf, cosf, sinf, which are not correctly
# rounded: replayed with correctly rounded ones, the arm64 goldens' digests differ).
REFUSAL = "NotImplementedError: torch mode does not reproduce"


def compared(golden: dict, got: list) -> list:
    """``got`` up to its first refused call: a call flashdrop refuses on an arm64 target ends the
    comparison of its case (the golden's later calls follow a draw flashdrop did not make)."""
    for call, (first, *_) in enumerate(got):
        if golden["cpu"] == "arm" and first.startswith(REFUSAL):
            return got[:call]
    return got


@pytest.fixture(scope="module", params=GOLDENS, ids=lambda path: path.name.split(".json")[0])
def golden(request):
    return load(request.param)


def test_every_case_of_the_golden(golden):
    """All of a release's cases, each call's result and generator state; the first few that
    differ are named."""
    wrong = []
    refused = 0
    for case in golden["cases"]:
        got = compared(golden, replay(golden, case))
        refused += len(got) < len(case["results"])
        if got != case["results"][: len(got)]:
            call = next(
                i for i, (a, b) in enumerate(zip(got, case["results"], strict=True)) if a != b
            )
            what = "state" if got[call][:2] == case["results"][call][:2] else "result"
            args = {k: v for k, v in case.items() if k != "results"}
            wrong.append(f"{args}: call {call}'s {what} differs")
    # arm64: randn of 16, 17, 1000 floats, normal of 100 (two forms), the sequence; two seeds
    assert refused == (12 if golden["cpu"] == "arm" else 0)
    assert not wrong, f"{len(wrong)} of {len(golden['cases'])} cases differ:\n" + "\n".join(
        wrong[:15]
    )


def test_every_verified_release_has_an_x86_64_golden():
    """Each release torch mode accepts as a target, 2.1 to 2.15, was recorded from real torch on
    x86-64, so that no target's draws rest on reasoning alone."""
    recorded = {
        tuple(map(int, golden["torch"].split(".")[:2]))
        for golden in map(load, GOLDENS)
        if golden["machine"] == "x86_64"
    }
    assert recorded == set(_torch_target.VERIFIED)


def test_adjacent_releases_differ_exactly_where_a_change_lies():
    """Two adjacent releases' x86-64 goldens differ exactly where a change of CHANGES (or the end
    of MKL's bernoulli_) has its first new release: the changes are all there, each in its place."""
    results = {
        tuple(map(int, golden["torch"].split(".")[:2])): [
            case["results"] for case in golden["cases"]
        ]
        for golden in map(load, GOLDENS)
        if golden["machine"] == "x86_64" and golden["cpu"] == "amd"
    }
    (major, last_mkl) = _torch_target.MKL_BERNOULLI[1]
    first_new = {*_torch_target.CHANGES.values(), (major, last_mkl + 1)}
    for older, newer in zip(_torch_target.VERIFIED, _torch_target.VERIFIED[1:], strict=False):
        assert (results[older] != results[newer]) is (newer in first_new), (older, newer)
