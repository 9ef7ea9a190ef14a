"""mlx mode against real torch: different generators, the same distribution.

Each of the six modules runs on both sides over many independent draws (flashdrop in "mlx" mode,
torch on its CPU generator, both seeded). The checks:

- keep rates (per element, or per channel for feature dropout) of each side are consistent with
  Bernoulli(1 - p), and the two sides are consistent with each other;
- every output value is one of torch's own two values for that element: where both sides kept an
  element they agree bit for bit, and where both dropped it too;
- the output's mean and mean square (so its variance) agree between the two sides.

Every bound is Hoeffding's at tests.stats.FALSE_FAILURE_RATE (1e-9 per assertion), so a correct
implementation fails here by chance with probability below 1e-9 per assertion. Seeds are fixed:
the suite is deterministic.
"""

import math

import numpy as np
import pytest
import torch

import flashdrop
from flashdrop import compat, nn
from tests._support.names import CHANNEL_MODULES, ELEMENT_MODULES
from tests._support.stats import hoeffding_halfwidth, two_sample_halfwidth

# SELU's scale * alpha, the value alpha dropout drops towards.
_A = 1.7580993408473766
# Inputs are standard normal, clipped to +-_CLIP, so each output lies in a known interval.
_CLIP = 4.0
# Per feature op: (N, C, spatial...) with N * C = 80_000 channels in all.
FEATURE_SHAPES = {
    "Dropout1d": (400, 200, 3),
    "Dropout2d": (400, 200, 2, 2),
    "Dropout3d": (400, 200, 1, 2, 2),
    "FeatureAlphaDropout": (400, 200, 2, 2),
}
PS = [0.1, 0.5, 0.8]


def clipped_normal(shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(42)
    x = torch.randn(shape, generator=g).clamp(-_CLIP, _CLIP)
    return torch.where(x == 0, torch.ones_like(x), x)  # no input whose kept value is 0


def both_outputs(name: str, x: torch.Tensor, p: float) -> tuple[np.ndarray, np.ndarray]:
    """(flashdrop, torch) outputs of the module `name` in training mode, as numpy arrays."""
    ours = np.array(getattr(nn, name)(p)(compat.to_mlx(x)))
    with torch.no_grad():
        theirs = getattr(torch.nn, name)(p)(x).numpy()
    return ours, theirs


def dropped_value(theirs_units: np.ndarray) -> np.float32:
    """What torch made of a dropped unit: 0, or alpha dropout's one value A*a*p - A*a.

    Read off torch's output as its most common value: every dropped unit shares it, while kept
    values follow the (continuous) input.
    """
    values, counts = np.unique(theirs_units[:, 0], return_counts=True)
    return values[np.argmax(counts)]


def output_range(name: str, p: float) -> tuple[float, float]:
    """An interval every output lies in, for inputs in [-_CLIP, _CLIP]."""
    if "Alpha" not in name:
        return -_CLIP / (1 - p), _CLIP / (1 - p)
    a = 1 / math.sqrt((_A * _A * p + 1) * (1 - p))
    low = min(-_CLIP * a + _A * a * p, _A * a * p - _A * a)
    return low - 1e-3, _CLIP * a + _A * a * p + 1e-3  # + rounding slack


def assert_same_distribution(name: str, p: float, ours: np.ndarray, theirs: np.ndarray, units):
    """The checks of the module docstring; `units` reshapes an output to (units, elements)."""
    ours_u, theirs_u = units(ours), units(theirs)
    dropped = dropped_value(theirs_u)
    for y in (ours_u, theirs_u):
        is_dropped = y == dropped
        assert np.all(is_dropped.all(axis=1) | ~is_dropped.any(axis=1)), "channels drop whole"
    kept_ours, kept_theirs = ours_u[:, 0] != dropped, theirs_u[:, 0] != dropped
    n = len(kept_ours)
    assert abs(kept_ours.mean() - (1 - p)) < hoeffding_halfwidth(n)
    assert abs(kept_theirs.mean() - (1 - p)) < hoeffding_halfwidth(n)
    assert abs(kept_ours.mean() - kept_theirs.mean()) < two_sample_halfwidth(n, n)

    # Values: where both kept, and where both dropped, the bits agree.
    both_kept = kept_ours & kept_theirs
    both_dropped = ~kept_ours & ~kept_theirs
    assert both_kept.any() and both_dropped.any()
    np.testing.assert_array_equal(ours_u[both_kept], theirs_u[both_kept], strict=True)
    np.testing.assert_array_equal(ours_u[both_dropped], theirs_u[both_dropped], strict=True)

    # Mean and mean square: each output, rescaled to [0, 1] by the known range, is a mean of
    # units drawn independently, so the two-sample bound applies to the means over units.
    low, high = output_range(name, p)
    square_high = max(low * low, high * high)
    for statistic, width in ((lambda y: y, high - low), (lambda y: y * y, square_high)):
        ours_mean = statistic(ours_u.astype(np.float64)).mean(axis=1).mean()
        theirs_mean = statistic(theirs_u.astype(np.float64)).mean(axis=1).mean()
        assert abs(ours_mean - theirs_mean) < width * two_sample_halfwidth(n, n)


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("name", ELEMENT_MODULES)
def test_element_dropout_is_distributed_as_torchs(name, p):
    x = clipped_normal((200_000,))
    ours, theirs = both_outputs(name, x, p)
    assert_same_distribution(name, p, ours, theirs, lambda y: y.reshape(-1, 1))


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("name", CHANNEL_MODULES)
def test_feature_dropout_is_distributed_as_torchs(name, p):
    shape = FEATURE_SHAPES[name]
    x = clipped_normal(shape)
    ours, theirs = both_outputs(name, x, p)
    assert_same_distribution(name, p, ours, theirs, lambda y: y.reshape(shape[0] * shape[1], -1))


def test_mlx_mode_does_not_draw_torchs_masks():
    """The two sides really are independent draws here (else the tests above prove little)."""
    flashdrop.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = both_outputs("Dropout", clipped_normal((10_000,)), 0.5)
    assert not np.array_equal(ours != 0, theirs != 0)
