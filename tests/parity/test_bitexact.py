"""Torch mode: same seed, same bits as torch's CPU dropout, for every op, dtype, p and shape.

NaN outputs (from NaN or inf inputs) are compared as NaN: torch does not define which NaN
payload `nan * 0` produces.
"""

import warnings

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn
from tests._support.bits import assert_same_bits, sample_input
from tests._support.names import LAYERS

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
PS = [0.0, 1e-300, 0.1, 0.2, 1 / 3, 0.5, 0.7, 0.9, 0.999, 1 - 1e-16, 1.0]
# Per op: batched, unbatched and legacy shapes torch accepts (some with a warning).
SHAPES = {
    "dropout": [(7,), (3, 5), (2, 3, 4, 5), ()],
    "alpha_dropout": [(7,), (3, 5), (2, 3, 4, 5), ()],
    "dropout1d": [(4, 6, 5), (6, 5)],
    "dropout2d": [(4, 6, 5, 3), (4, 6, 5), (6, 5)],
    "dropout3d": [(2, 6, 5, 3, 2), (6, 5, 3, 2), (6, 5, 3)],
    "feature_alpha_dropout": [(4, 6, 5, 3), (4, 6), (2, 3, 2, 2, 2, 2)],
}
CASES = [(name, shape) for name, shapes in SHAPES.items() for shape in shapes]


def run_both(name, x, p, calls=3, inplace=False, seed=1234):
    """`calls` consecutive calls on each side from the same seed, torch mode for flashdrop."""
    torch_fn, our_fn = getattr(TF, name), getattr(F, name)
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    pairs = []
    with warnings.catch_warnings(), flashdrop.rng_mode("torch"):
        warnings.simplefilter("ignore")  # legacy shapes warn; tests/parity/test_contract checks
        for _ in range(calls):
            xt, xm = x.clone(), compat.to_mlx(x)
            pairs.append((our_fn(xm, p, True, inplace), torch_fn(xt, p, True, inplace)))
    return pairs


@pytest.mark.parametrize(("name", "shape"), CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", PS)
def test_same_bits_as_torch(name, shape, dtype, p):
    x = sample_input(shape, dtype)
    for ours, theirs in run_both(name, x, p):
        assert_same_bits(ours, theirs)


@pytest.mark.parametrize(("name", "shape"), CASES)
@pytest.mark.parametrize("p", [0.25, 1.0])
def test_inplace_same_bits_as_torch(name, shape, p):
    x = sample_input(shape, torch.float32)
    for ours, theirs in run_both(name, x, p, inplace=True):
        assert_same_bits(ours, theirs)


def test_streams_stay_in_step_across_ops_sizes_and_state_bytes():
    """A mixed sequence of calls, then the generator state itself, byte for byte."""
    torch.manual_seed(77)
    flashdrop.manual_seed(77)
    sequence = [
        ("dropout", (1000,), 0.3),
        ("feature_alpha_dropout", (5, 7, 3), 0.6),
        ("dropout2d", (3, 4, 2, 2), 0.5),
        ("alpha_dropout", (70_001,), 0.1),  # more than one chunk of the torch stream
        ("dropout1d", (9, 11), 0.8),
        ("dropout3d", (2, 3, 2, 2, 2), 0.4),
    ]
    with flashdrop.rng_mode("torch"):
        for name, shape, p in sequence:
            x = sample_input(shape, torch.float32)
            assert_same_bits(
                getattr(F, name)(compat.to_mlx(x), p, True), getattr(TF, name)(x, p, True)
            )
    ours = np.array(flashdrop.get_rng_state())[:5056]
    assert np.array_equal(ours, torch.get_rng_state().numpy())


@pytest.mark.parametrize(
    "name",
    [n for n in nn.__all__ if n != "functional" and hasattr(torch.nn, n) and n not in LAYERS],
)
def test_modules_same_bits_as_torch(name):
    shape = {"Dropout2d": (4, 6, 5, 3), "Dropout3d": (2, 6, 5, 3, 2)}.get(name, (4, 6, 5))
    x = sample_input(shape, torch.float32)
    ours_m, theirs_m = getattr(nn, name)(0.35), getattr(torch.nn, name)(0.35)
    torch.manual_seed(5)
    flashdrop.manual_seed(5)
    with flashdrop.rng_mode("torch"):
        for _ in range(3):
            assert_same_bits(ours_m(compat.to_mlx(x)), theirs_m(x))


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("p", [0.2, 0.6])
def test_gradients_match_torch_autograd(name, p):
    """Same mask on both sides (torch mode): mx.grad equals torch autograd, bit for bit."""
    shape = SHAPES[name][0]
    x = sample_input(shape, torch.float32, seed=3).nan_to_num(0.0, 1.0, -1.0)
    xt = x.clone().requires_grad_(True)
    torch.manual_seed(11)
    getattr(TF, name)(xt, p, True).sum().backward()
    flashdrop.manual_seed(11)
    with flashdrop.rng_mode("torch"):
        grad = mx.grad(lambda v: getattr(F, name)(v, p, True).sum())(compat.to_mlx(x))
    assert_same_bits(grad, xt.grad)
