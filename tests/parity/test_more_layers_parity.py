"""Torch mode: the layers beyond torch.nn give the bits of their published definitions.

torchvision and timm are not installed, so each original is written here in torch, from its
published definition (torchvision.ops.stochastic_depth and drop_block2d/3d, timm's drop_path,
AWD-LSTM's LockedDropout), and run from the same seed: several calls in a row, bit for bit.
"""

import pytest
import torch

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn
from tests._support.bits import assert_same_bits, same_state, sample_input
from tests._support.originals import (
    torch_drop_block,
    torch_drop_path,
    torch_locked_dropout,
    torch_stochastic_depth,
)

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
PS = [0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0]
# (shape, block_size): blocks of 1, 3 and 5, and blocks clamped to the smallest spatial size.
BLOCK_CASES = [
    ((2, 3, 9, 7), 3),
    ((2, 3, 9, 7), 1),
    ((2, 3, 9, 7), 5),
    ((2, 2, 5, 8), 7),
    ((1, 2, 7, 5, 6), 3),
    ((1, 2, 5, 6, 7), 9),
    ((2, 1, 3, 3, 3), 1),
]


def same_bits_in_a_row(ours, theirs, x, calls=3, seed=1234):
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"):
        for _ in range(calls):
            assert_same_bits(ours(compat.to_mlx(x)), theirs(x.clone()))
    # Both streams were left in the same place.
    assert same_state()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("shape", [(6, 3, 4), (5,), (4, 2, 3, 2, 2)])
def test_stochastic_depth(dtype, p, mode, shape):
    same_bits_in_a_row(
        lambda x: F.stochastic_depth(x, p, mode),
        lambda x: torch_stochastic_depth(x, p, mode),
        sample_input(shape, dtype),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drop_path(dtype, p, scale_by_keep):
    same_bits_in_a_row(
        lambda x: F.drop_path(x, p, True, scale_by_keep),
        lambda x: torch_drop_path(x, p, True, scale_by_keep),
        sample_input((8, 3, 5), dtype),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize(("shape", "block_size"), BLOCK_CASES)
@pytest.mark.parametrize("inplace", [False, True])
def test_drop_block(dtype, p, shape, block_size, inplace):
    ours = F.drop_block2d if len(shape) == 4 else F.drop_block3d
    same_bits_in_a_row(
        lambda x: ours(x, p, block_size, inplace),
        lambda x: torch_drop_block(x, p, block_size, inplace),
        sample_input(shape, dtype),
    )


def test_drop_block_with_everything_dropped_and_eps():
    """p = 1 with block_size 1 drops every element: the scale is numel / eps."""
    x = sample_input((2, 2, 3, 3), torch.float32)
    for eps in [1e-6, 0.5]:
        same_bits_in_a_row(
            lambda a, e=eps: F.drop_block2d(a, 1.0, 1, eps=e),
            lambda a, e=eps: torch_drop_block(a, 1.0, 1, eps=e),
            x,
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize(
    ("shape", "batch_first"), [((7, 4, 5), False), ((4, 7, 5), True), ((7, 5), False)]
)
def test_locked_dropout(dtype, p, shape, batch_first):
    same_bits_in_a_row(
        lambda x: F.locked_dropout(x, p, True, batch_first),
        lambda x: torch_locked_dropout(x, p, True, batch_first),
        sample_input(shape, dtype),
    )


@pytest.mark.parametrize(
    ("ours", "theirs", "shape"),
    [
        (
            lambda: nn.StochasticDepth(0.3, "row"),
            lambda x: torch_stochastic_depth(x, 0.3, "row"),
            (6, 4),
        ),
        (lambda: nn.DropPath(0.3), lambda x: torch_drop_path(x, 0.3, True), (6, 4)),
        (lambda: nn.DropBlock2d(0.3, 3), lambda x: torch_drop_block(x, 0.3, 3), (2, 3, 6, 6)),
        (lambda: nn.DropBlock3d(0.3, 3), lambda x: torch_drop_block(x, 0.3, 3), (2, 3, 4, 4, 4)),
        (lambda: nn.LockedDropout(0.3), lambda x: torch_locked_dropout(x, 0.3), (5, 3, 4)),
    ],
)
def test_modules_in_training(ours, theirs, shape):
    same_bits_in_a_row(ours(), theirs, sample_input(shape, torch.float32))
