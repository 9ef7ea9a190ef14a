"""Keep rates within binomial bounds, in both random modes.

Each bound is Hoeffding's at tests.stats.FALSE_FAILURE_RATE (1e-9): a correct implementation
fails one of these by chance with probability at most 1e-9 per assertion. Seeds are fixed.
"""

import mlx.core as mx
import numpy as np
import pytest

import flashdrop
import flashdrop.nn.functional as F
from tests._support.stats import hoeffding_halfwidth


@pytest.fixture(params=["mlx", "torch"], autouse=True)
def mode(request):
    flashdrop.manual_seed(2024)
    with flashdrop.rng_mode(request.param):
        yield


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_element_keep_rate(p):
    n = 200_000
    kept = np.array(F.dropout(mx.ones((n,)), p)) != 0
    assert abs(kept.mean() - (1 - p)) < hoeffding_halfwidth(n)


@pytest.mark.parametrize("p", [0.2, 0.6])
@pytest.mark.parametrize("fn", [F.dropout2d, F.feature_alpha_dropout])
def test_channel_keep_rate_and_all_or_nothing(fn, p):
    n, c = 500, 200
    x = mx.ones((n, c, 4, 4))
    y = np.array(fn(x, p, True)).reshape(n * c, 16)
    assert np.all(y == y[:, :1]), "a channel is kept or dropped whole"
    dropped_value = 0.0 if fn is F.dropout2d else y.min()
    kept = y[:, 0] != dropped_value
    assert abs(kept.mean() - (1 - p)) < hoeffding_halfwidth(n * c)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_mean_zero_and_variance_one(p):
    """For standard-normal input, alpha dropout's output has mean 0 and variance 1.

    The bound: with x ~ N(0, 1) clipped to |x| <= 6 (probability of clipping ~2e-9 per element,
    accounted for below), each output lies in an interval of known width w, so Hoeffding applies
    to the mean of the outputs and of their squares."""
    n = 400_000
    mx.random.seed(1)
    x = mx.clip(mx.random.normal((n,)), -6, 6)
    y = np.array(F.alpha_dropout(x, p, True)).astype(np.float64)
    A = 1.7580993408473766
    a = 1 / np.sqrt((A * A * p + 1) * (1 - p))
    low, high = min(-6 * a + A * a * p, A * a * p - A * a), 6 * a + A * a * p
    t = hoeffding_halfwidth(n) * (high - low)
    assert abs(y.mean()) < t
    t2 = hoeffding_halfwidth(n) * max(low * low, high * high)
    clipping_bias = 1e-6  # E[x^2] lost by clipping at 6 sigma is below 1e-7
    assert abs((y * y).mean() - 1) < t2 + clipping_bias
