"""channel_dim=-1 in torch mode: torch's channel-first result, with the channel axis moved.

The noise is drawn n-major, c-minor in both layouts, so a channels-last call must return, bit
for bit, what torch returns for the same data moved to channels first (and moved back).
"""

import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn
from tests._support.bits import assert_same_bits, sample_input
from tests._support.names import MODULE_OF
from tests._support.outcome import assert_same_outcome, outcome

# Per function: channels-last shapes, and whether torch's twin takes them batched. dropout2d's
# 3-D input is unbatched (H, W, C) here; torch reads a 3-D input as (N, C, L), so its twin is
# given the batch of one that the unbatched (C, H, W) is.
CASES = [
    ("dropout1d", (4, 5, 6), True),
    ("dropout1d", (5, 6), False),
    ("dropout2d", (4, 5, 3, 6), True),
    ("dropout2d", (5, 3, 6), False),
    ("dropout3d", (2, 5, 3, 2, 6), True),
    ("dropout3d", (5, 3, 2, 6), False),
    ("feature_alpha_dropout", (4, 5, 3, 6), True),
    ("feature_alpha_dropout", (4, 6), True),
]


def torch_channels_last(name, x, p, batched):
    """torch's channel-first function on `x` (channels last), moved back to channels last."""
    first = x.movedim(-1, 1 if batched else 0)
    if not batched:
        first = first.unsqueeze(0)
    out = getattr(TF, name)(first, p, True)
    if not batched:
        out = out.squeeze(0)
    return out.movedim(1 if batched else 0, -1)


@pytest.mark.parametrize(("name", "shape", "batched"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_channels_last_same_bits_as_torch_moved(name, shape, batched, dtype, p):
    x = sample_input(shape, dtype)
    torch.manual_seed(7)
    flashdrop.manual_seed(7)
    with flashdrop.rng_mode("torch"):
        for _ in range(3):  # consecutive calls stay in step
            theirs = torch_channels_last(name, x, p, batched)
            ours = getattr(F, name)(compat.to_mlx(x), p, True, channel_dim=-1)
            assert_same_bits(ours, theirs)


@pytest.mark.parametrize(("name", "shape", "batched"), CASES)
def test_channels_last_modules_same_bits_as_torch_moved(name, shape, batched):
    x = sample_input(shape, torch.float32)
    m = getattr(nn, MODULE_OF[name])(0.3, channel_dim=-1)
    torch.manual_seed(3)
    flashdrop.manual_seed(3)
    with flashdrop.rng_mode("torch"):
        assert_same_bits(m(compat.to_mlx(x)), torch_channels_last(name, x, 0.3, batched))


@pytest.mark.parametrize("name", ["dropout2d", "dropout3d"])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5, 6])
def test_channels_last_warns_and_fails_as_torch_does_for_the_rank(name, ndim):
    """torch's deprecation warning and errors for unexpected ranks, with the same expected ranks;
    only the legacy (N, C, L) warning of dropout2d, a channels-first reading, is not given."""
    x = torch.ones((2,) * ndim)
    theirs = outcome(getattr(TF, name), x, 0.5)
    ours = outcome(lambda a, p: getattr(F, name)(a, p, channel_dim=-1), compat.to_mlx(x), 0.5)
    their_error, their_warnings = theirs
    legacy = [w for w in their_warnings if "(N, C, L)" in w[1]]
    assert len(legacy) == (name == "dropout2d" and ndim == 3)
    expected = (their_error, [w for w in their_warnings if w not in legacy])
    assert_same_outcome(expected, ours)
