"""compat.port_dropout and compat.dropout_layers: torch dropout modules -> flashdrop twins.

torchvision and timm are not installed: their classes are stood in for by torch modules defined
here, named and placed (``__module__``) as the originals are, and computing the originals'
published definitions (tests/parity/test_more_layers_parity.py). Every twin is checked against
its original bit for bit, several calls in a row, with flashdrop.testing.assert_same_as_torch.
"""

from collections import OrderedDict

import mlx.core as mx
import pytest
import torch

from flashdrop import compat, nn
from flashdrop.testing import assert_same_as_torch
from tests._support.names import CHANNEL_MODULES, LAYERS
from tests._support.originals import (
    torch_drop_block,
    torch_drop_path,
    torch_stochastic_depth,
)

# Input shapes each of torch's six accepts, batched.
SHAPES = {
    "Dropout": (4, 6, 5),
    "AlphaDropout": (4, 6, 5),
    "Dropout1d": (4, 6, 5),
    "Dropout2d": (4, 6, 5, 3),
    "Dropout3d": (4, 6, 2, 3, 3),
    "FeatureAlphaDropout": (4, 6, 5, 3),
}
# What port_dropout must say it accepts, written out here rather than read from compat.
ACCEPTED = [
    "torch.nn.Dropout",
    "torch.nn.Dropout1d",
    "torch.nn.Dropout2d",
    "torch.nn.Dropout3d",
    "torch.nn.AlphaDropout",
    "torch.nn.FeatureAlphaDropout",
    "torchvision.ops.StochasticDepth",
    "torchvision.ops.DropBlock2d",
    "torchvision.ops.DropBlock3d",
    "timm.layers.DropPath",
    *(f"torch.nn.{name}" for name in LAYERS),
]


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(3))


# --- stand-ins for torchvision.ops and timm, where those packages define them ------------------


class StochasticDepth(torch.nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        return torch_stochastic_depth(x, self.p, self.mode, self.training)


class DropBlock2d(torch.nn.Module):
    def __init__(self, p: float, block_size: int, inplace: bool = False, eps: float = 1e-06):
        super().__init__()
        self.p, self.block_size, self.inplace, self.eps = p, block_size, inplace, eps

    def forward(self, x):
        return torch_drop_block(x, self.p, self.block_size, self.inplace, self.eps, self.training)


class DropBlock3d(DropBlock2d):
    pass


class DropPath(torch.nn.Module):
    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

    def forward(self, x):
        return torch_drop_path(x, self.drop_prob, self.training, self.scale_by_keep)


StochasticDepth.__module__ = "torchvision.ops.stochastic_depth"
DropBlock2d.__module__ = DropBlock3d.__module__ = "torchvision.ops.drop_block"
DropPath.__module__ = "timm.layers.drop"


def in_module(cls: type, module: str) -> type:
    """A copy of ``cls`` that claims to be defined in ``module``."""
    return type(cls.__name__, (cls,), {"__module__": module, "__qualname__": cls.__name__})


OldTimmDropPath = in_module(DropPath, "timm.models.layers.drop")  # timm before 0.9

# (stand-in, its flashdrop twin's settings, an input shape)
EXTRAS = [
    (StochasticDepth(0.3, "row"), {"p": 0.3, "mode": "row"}, (6, 3, 4)),
    (StochasticDepth(0.3, "batch"), {"p": 0.3, "mode": "batch"}, (6, 3, 4)),
    (
        DropBlock2d(0.2, 3, eps=1e-3),
        {"p": 0.2, "block_size": 3, "inplace": False, "eps": 1e-3},
        (2, 3, 9, 7),
    ),
    (
        DropBlock3d(0.2, 3, inplace=True),
        {"p": 0.2, "block_size": 3, "inplace": True, "eps": 1e-6},
        (1, 2, 7, 5, 6),
    ),
    (DropPath(0.25, False), {"drop_prob": 0.25, "scale_by_keep": False}, (8, 3, 5)),
    (OldTimmDropPath(0.25), {"drop_prob": 0.25, "scale_by_keep": True}, (8, 3, 5)),
]


# --- port_dropout ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_torchs_six_become_their_twins(name, p, inplace, training):
    original = getattr(torch.nn, name)(p, inplace).train(training)
    twin = compat.port_dropout(original)
    assert type(twin) is getattr(nn, name)
    assert (twin.p, twin.inplace, twin.training) == (p, inplace, training)
    assert repr(twin) == repr(original)
    assert_same_as_torch(original, twin, randn(*SHAPES[name]))


def test_the_original_is_left_alone():
    original = torch.nn.Dropout(0.3).eval()
    twin = compat.port_dropout(original)
    twin.train()
    assert not original.training
    assert twin is not compat.port_dropout(original)


@pytest.mark.parametrize("name", CHANNEL_MODULES)
def test_channel_layers_take_channel_dim(name):
    original = getattr(torch.nn, name)(0.4)
    twin = compat.port_dropout(original, channel_dim=-1)
    assert twin.channel_dim == -1

    def channels_last(x: mx.array) -> mx.array:  # the port sees (N, *, C)
        return mx.moveaxis(twin(mx.moveaxis(x, 1, -1)), -1, 1)

    assert_same_as_torch(original, channels_last, randn(*SHAPES[name]))


@pytest.mark.parametrize("original", [torch.nn.Dropout(0.4), torch.nn.AlphaDropout(0.4)])
def test_elementwise_layers_ignore_channel_dim(original):
    assert repr(compat.port_dropout(original, channel_dim=-1)) == repr(original)


@pytest.mark.parametrize("channel_dim", [0, 2, -2, True])
def test_channel_dim_is_1_or_minus_1(channel_dim):
    with pytest.raises(ValueError, match=r"port_dropout: channel_dim must be 1 .* or -1"):
        compat.port_dropout(torch.nn.Dropout2d(0.4), channel_dim=channel_dim)


@pytest.mark.parametrize("original", [DropBlock2d(0.2, 3), DropBlock3d(0.2, 3)])
def test_drop_block_is_channels_first_only(original):
    with pytest.raises(ValueError, match=r"DropBlock.d drops blocks of channels-first inputs only"):
        compat.port_dropout(original, channel_dim=-1)


@pytest.mark.parametrize(("original", "settings", "shape"), EXTRAS, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("training", [True, False])
def test_torchvision_and_timm_layers_become_their_twins(original, settings, shape, training):
    original.train(training)
    twin = compat.port_dropout(original)
    assert type(twin).__name__ == type(original).__name__
    assert type(twin).__module__.startswith("flashdrop.nn")
    assert {k: getattr(twin, k) for k in settings} == settings
    assert twin.training is training
    assert_same_as_torch(original, twin, randn(*shape))


class MyDropout(torch.nn.Dropout):
    pass


@pytest.mark.parametrize(
    ("module", "got"),
    [
        (torch.nn.Linear(2, 2), "torch.nn.modules.linear.Linear"),
        (
            nn.Dropout(0.1),
            "flashdrop.nn.modules.dropout.Dropout, which is a flashdrop module already",
        ),
        (
            MyDropout(0.1),
            f"{__name__}.MyDropout, a subclass of torch.nn.Dropout whose forward may differ",
        ),
        # Named as timm's and torchvision's, but defined elsewhere (or not mapped).
        (in_module(DropPath, "mymodels.layers")(), "mymodels.layers.DropPath"),
        (in_module(DropPath, "timmy.layers")(), "timmy.layers.DropPath"),
        (in_module(torch.nn.Module, "torchvision.ops.misc")(), "torchvision.ops.misc.Module"),
        ("Dropout", "builtins.str"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_anything_else_is_refused_with_what_is_accepted(module, got):
    with pytest.raises(TypeError) as error:
        compat.port_dropout(module)
    message = str(error.value)
    assert message.startswith(f"port_dropout accepts {', '.join(ACCEPTED)} modules, but got ")
    assert got in message


# --- dropout_layers ----------------------------------------------------------------------------


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn_drop = torch.nn.Dropout(0.1)
        self.proj = torch.nn.Linear(4, 4)
        self.drop_path = DropPath(0.2)


def test_dropout_layers_in_registration_order_with_qualified_names():
    shared = torch.nn.Dropout(0.3)
    model = torch.nn.Sequential(
        OrderedDict(
            embed=torch.nn.Linear(4, 4),
            drop=shared,
            blocks=torch.nn.Sequential(Block(), Block()),
            again=shared,  # registered twice: listed once, under its first name
            sub=MyDropout(0.4),  # a subclass is still a dropout layer
            head=torch.nn.Sequential(torch.nn.ReLU(), torch.nn.AlphaDropout(0.5)),
        )
    )
    layers = compat.dropout_layers(model)
    assert [name for name, _ in layers] == [
        "drop",
        "blocks.0.attn_drop",
        "blocks.0.drop_path",
        "blocks.1.attn_drop",
        "blocks.1.drop_path",
        "sub",
        "head.1",
    ]
    modules = dict(model.named_modules())
    assert all(module is modules[name] for name, module in layers)


def test_dropout_layers_of_a_dropout_module_is_itself():
    layer = torch.nn.Dropout2d(0.2)
    assert compat.dropout_layers(layer) == [("", layer)]
    assert compat.dropout_layers(torch.nn.Linear(2, 2)) == []


@pytest.mark.parametrize("model", [nn.Dropout(0.1), "model", None])
def test_dropout_layers_needs_a_torch_module(model):
    with pytest.raises(TypeError, match=r"dropout_layers expects a torch.nn.Module, but got \w+"):
        compat.dropout_layers(model)
