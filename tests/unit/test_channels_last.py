"""channel_dim=-1: whole channels of channels-last inputs, the same masks as channels first.

Statistical bounds are Hoeffding's at tests.stats.FALSE_FAILURE_RATE (1e-9); seeds are fixed.
"""

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn
from tests._support.stats import hoeffding_halfwidth

FUNCTIONS = [F.dropout1d, F.dropout2d, F.dropout3d, F.feature_alpha_dropout]
BATCHED = {F.dropout1d: (4, 5, 6), F.dropout2d: (4, 5, 3, 6), F.dropout3d: (2, 5, 3, 2, 6)}
BATCHED[F.feature_alpha_dropout] = (4, 5, 3, 6)
UNBATCHED = {F.dropout1d: (5, 6), F.dropout2d: (5, 3, 6), F.dropout3d: (5, 3, 2, 6)}


@pytest.fixture(params=["mlx", "torch"], autouse=True)
def mode(request):
    flashdrop.manual_seed(11)
    with flashdrop.rng_mode(request.param):
        yield


def channels_of(y: np.ndarray) -> np.ndarray:
    """(N, C): the value each channel of an (N, *, C) array holds, after checking it holds
    just one."""
    flat = y.reshape(y.shape[0], -1, y.shape[-1])
    assert np.all(flat == flat[:, :1]), "a channel is kept or dropped whole"
    return flat[:, 0]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_batched_mask_is_the_channels_first_mask_moved(fn):
    x = mx.random.normal(BATCHED[fn])
    with flashdrop.fork_rng():
        first = fn(mx.moveaxis(x, -1, 1), 0.4, True)
    last = fn(x, 0.4, True, channel_dim=-1)
    assert mx.array_equal(last, mx.moveaxis(first, 1, -1))


@pytest.mark.parametrize("fn", [F.dropout1d, F.dropout2d, F.dropout3d])
def test_unbatched_input_is_spatial_then_channels(fn):
    """(L, C), (H, W, C), (D, H, W, C): one draw per channel, as for a batch of one; for
    dropout2d no legacy (N, C, L) warning (pytest turns warnings into errors)."""
    shape = UNBATCHED[fn]
    x = mx.ones(shape)
    with flashdrop.fork_rng():
        batch_of_one = fn(x[None], 0.4, True, channel_dim=-1)[0]
    y = fn(x, 0.4, True, channel_dim=-1)
    assert mx.array_equal(y, batch_of_one)
    assert channels_of(np.array(y)[None]).shape == (1, shape[-1])


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_keep_rate_per_channel(fn):
    n, c = 400, 250
    shape = {F.dropout1d: (n, 6, c), F.dropout3d: (n, 2, 2, 2, c)}.get(fn, (n, 3, 2, c))
    y = np.array(fn(mx.ones(shape), 0.3, True, channel_dim=-1))
    values = channels_of(y)
    dropped = values.min() if fn is F.feature_alpha_dropout else 0.0
    kept = values != dropped
    assert abs(kept.mean() - 0.7) < hoeffding_halfwidth(n * c)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("channel_dim", [0, 2, -2, True, "last", None])
def test_rejects_other_channel_dims(fn, channel_dim):
    with pytest.raises(ValueError, match=r"channel_dim must be 1 .* or -1 .* but got"):
        fn(mx.ones(BATCHED[fn]), 0.5, True, channel_dim=channel_dim)


@pytest.mark.parametrize("cls", [nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout])
def test_modules_take_channel_dim_keyword_only_and_show_it_when_not_default(cls):
    assert repr(cls(0.5)) == f"{cls.__name__}(p=0.5, inplace=False)"
    assert repr(cls(0.5, channel_dim=1)) == f"{cls.__name__}(p=0.5, inplace=False)"
    assert repr(cls(0.5, channel_dim=-1)) == f"{cls.__name__}(p=0.5, inplace=False, channel_dim=-1)"
    with pytest.raises(TypeError):
        cls(0.5, False, -1)
    with pytest.raises(ValueError, match="channel_dim"):
        cls(0.5, channel_dim=3)


def test_module_forwards_channel_dim_and_follows_eval():
    m = nn.Dropout2d(0.5, channel_dim=-1)
    x = mx.ones((8, 4, 4, 16))
    with flashdrop.fork_rng():
        expected = F.dropout2d(x, 0.5, True, channel_dim=-1)
    assert mx.array_equal(m(x), expected)
    m.eval()
    assert m(x) is x


def test_after_an_mlx_conv2d():
    """MLX's Conv2d gives NHWC: whole output channels are dropped."""
    model = mlx.nn.Sequential(mlx.nn.Conv2d(3, 8, 3), nn.Dropout2d(0.5, channel_dim=-1))
    y = model(mx.random.normal((2, 6, 6, 3)))
    assert y.shape == (2, 4, 4, 8)
    channels_of(np.array(y) != 0)
