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
        "TorchTarget",
        "bernoulli",
        "checkpoint",
        "compat",
        "compile",
        "fork_rng",
        "get_rng_mode",
        "get_rng_state",
        "get_torch_target",
        "manual_seed",
        "nn",
        "normal",
        "rand",
        "rand_like",
        "randint",
        "randint_like",
        "randn",
        "randn_like",
        "randperm",
        "rng_mode",
        "set_rng_mode",
        "set_rng_state",
        "set_torch_target",
        "torch_target",
    ]
    assert all(hasattr(flashdrop, name) for name in flashdrop.__all__)


# torch.nn.functional's six; the others are torchvision's, timm's and AWD-LSTM's.
TORCH_TWINS = [
    "alpha_dropout",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "feature_alpha_dropout",
]


def test_nn_names():
    assert sorted(nn.__all__) == [
        "AlphaDropout",
        "DropBlock2d",
        "DropBlock3d",
        "DropPath",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "FeatureAlphaDropout",
        "GRU",
        "LSTM",
        "LockedDropout",
        "MultiheadAttention",
        "RNN",
        "StochasticDepth",
        "Transformer",
        "TransformerDecoder",
        "TransformerDecoderLayer",
        "TransformerEncoder",
        "TransformerEncoderLayer",
        "functional",
    ]
    assert all(issubclass(getattr(nn, n), mlx.nn.Module) for n in nn.__all__ if n != "functional")


def test_testing_names():
    """flashdrop.testing is a package of private modules: its face is this list."""
    import flashdrop.testing

    assert flashdrop.testing.__all__ == [
        "CallSite",
        "Draw",
        "assert_same_as_torch",
        "assert_statistically_equivalent",
        "dropout_sites",
        "record_draws",
        "record_torch_draws",
        "seeded",
    ]
    assert all(callable(getattr(flashdrop.testing, n)) for n in flashdrop.testing.__all__)


def test_nn_modules_are_nn_s_layers():
    from flashdrop.nn import modules

    assert sorted(modules.__all__) == sorted(n for n in nn.__all__ if n != "functional")
    assert all(getattr(modules, n) is getattr(nn, n) for n in modules.__all__)


def test_functional_names_and_defaults():
    beyond = ["drop_block2d", "drop_block3d", "drop_path", "locked_dropout", "stochastic_depth"]
    attention = ["scaled_dot_product_attention"]
    assert sorted(F.__all__) == sorted([*TORCH_TWINS, *beyond, *attention])
    for name in ["alpha_dropout", "dropout"]:
        params = inspect.signature(getattr(F, name)).parameters
        assert list(params) == ["input", "p", "training", "inplace"]
    for name in ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"]:
        params = inspect.signature(getattr(F, name)).parameters
        assert list(params) == ["input", "p", "training", "inplace", "channel_dim"]
        assert params["channel_dim"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["channel_dim"].default == 1
    for name in TORCH_TWINS:
        params = inspect.signature(getattr(F, name)).parameters
        alpha = "alpha" in name
        assert params["training"].default is (not alpha), "the alpha functions default to eval"


def test_import_does_not_need_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import flashdrop, flashdrop.nn.functional, flashdrop.testing, flashdrop.parity\n"
        "from flashdrop import compat\n"
        "from flashdrop.compat import lazy_torch, porting, random_state, tensors\n"
        "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_signatures_beyond_torch_nn_follow_the_originals():
    def shape(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    empty = inspect.Parameter.empty
    assert shape(F.stochastic_depth) == [
        ("input", empty),
        ("p", empty),
        ("mode", empty),
        ("training", True),
    ]
    assert shape(F.drop_path) == [
        ("x", empty),
        ("drop_prob", 0.0),
        ("training", False),
        ("scale_by_keep", True),
    ]
    for fn in [F.drop_block2d, F.drop_block3d]:
        assert shape(fn) == [
            ("input", empty),
            ("p", empty),
            ("block_size", empty),
            ("inplace", False),
            ("eps", 1e-06),
            ("training", True),
        ]
    assert shape(F.locked_dropout) == [
        ("input", empty),
        ("p", 0.5),
        ("training", True),
        ("batch_first", False),
    ]
    assert shape(nn.StochasticDepth) == [("p", empty), ("mode", empty)]
    assert shape(nn.DropPath) == [("drop_prob", 0.0), ("scale_by_keep", True)]
    for cls in [nn.DropBlock2d, nn.DropBlock3d]:
        assert shape(cls) == [
            ("p", empty),
            ("block_size", empty),
            ("inplace", False),
            ("eps", 1e-06),
        ]
    assert shape(nn.LockedDropout) == [("p", 0.5), ("batch_first", False)]
