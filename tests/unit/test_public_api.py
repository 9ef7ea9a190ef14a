"""The public names are exactly those intended, and flashdrop never needs torch."""

import inspect
import subprocess
import sys

import mlx.nn

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import nn


def test_top_level_names():
    assert sorted(flashdrop.__all__) == [
        "compile",
        "fork_rng",
        "get_rng_mode",
        "get_rng_state",
        "manual_seed",
        "nn",
        "rng_mode",
        "set_rng_mode",
        "set_rng_state",
    ]
    assert all(hasattr(flashdrop, name) for name in flashdrop.__all__)


def test_nn_names():
    assert sorted(nn.__all__) == [
        "AlphaDropout",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "FeatureAlphaDropout",
        "functional",
    ]
    assert all(issubclass(getattr(nn, n), mlx.nn.Module) for n in nn.__all__ if n != "functional")


def test_functional_names_and_defaults():
    assert sorted(F.__all__) == [
        "alpha_dropout",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "feature_alpha_dropout",
    ]
    for name in F.__all__:
        params = inspect.signature(getattr(F, name)).parameters
        assert list(params) == ["input", "p", "training", "inplace"]
        alpha = "alpha" in name
        assert params["training"].default is (not alpha), "the alpha functions default to eval"


def test_import_does_not_need_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import flashdrop, flashdrop.nn.functional\n"
        "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
