"""Check your MLX port's dropout against the torch original, in CI: copy this file and adapt it.

Run it with ``pytest examples/test_port_in_ci.py``. flashdrop's pytest plugin is active wherever
flashdrop is installed: it provides the ``flashdrop_seed`` and ``torch_mode`` fixtures, the
``--flashdrop-seed N`` option (rerun the statistical checks with another seed) and the
``@pytest.mark.flashdrop_seed(N)`` marker (one test's seed).

The model: a small CNN. torch is channels first (NCHW); the port computes channels last
(NHWC), as MLX's convolutions do, so its Dropout2d takes ``channel_dim=-1``.

Both helpers record every dropout draw on both sides and compare the draws first: a port that
draws differently fails naming the first draw that differs (op, shape, p, module, call site).
Without ``channel_dim=-1`` this port's Dropout2d would draw (N, H, 1, 1) instead of torch's
(N, C, 1, 1); here H == C == 8, so it draws the same shape along the wrong axis: only the torch
mode tests see that, by position ("same masks, the math differs"). The mlx-mode test cannot.
"""

import mlx.core as mx
import mlx.nn
import pytest
import torch

from flashdrop import compat, nn
from flashdrop.testing import (
    assert_same_as_torch,
    assert_statistically_equivalent,
    dropout_sites,
    record_draws,
    seeded,
)

# MLX's convolutions and matrix products round differently from torch's: compare the whole model
# within a tolerance (assert_same_as_torch's default). A dropout layer alone, bit for bit.
ATOL = 1e-5


class TorchNet(torch.nn.Module):
    """The torch model being ported."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.drop2d = torch.nn.Dropout2d(0.2)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop2d(torch.relu(self.conv(x)))
        return self.fc(self.drop(x.flatten(1)))


class Port(mlx.nn.Module):
    """Its MLX port: NCHW in, as torch's, NHWC inside."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = mlx.nn.Conv2d(3, 8, 3, padding=1)
        self.drop2d = nn.Dropout2d(0.2, channel_dim=-1)
        self.fc = mlx.nn.Linear(8 * 8 * 8, 10)
        self.drop = nn.Dropout(0.5)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.drop2d(mlx.nn.relu(self.conv(x.transpose(0, 2, 3, 1))))
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # flattened in torch's order
        return self.fc(self.drop(x))


@pytest.fixture(scope="module")
def models() -> tuple[TorchNet, Port]:
    """The torch model and its port, with the torch weights copied over."""
    with seeded(0):  # the initial weights; the global random state is left as it was
        torch_model = TorchNet()
    port = Port()
    weights = {k: compat.to_mlx(v) for k, v in torch_model.state_dict().items()}
    weights["conv.weight"] = weights["conv.weight"].transpose(0, 2, 3, 1)  # OIHW -> OHWI
    port.load_weights(list(weights.items()))
    return torch_model, port


def batch() -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_same_dropout_layers(models):
    torch_model, port = models
    layers = compat.dropout_layers(torch_model)
    assert [name for name, _ in layers] == ["drop2d", "drop"]
    for name, layer in layers:
        # channel_dim=-1: where the port's channel layers find channels (others ignore it).
        assert repr(getattr(port, name)) == repr(compat.port_dropout(layer, channel_dim=-1))


def test_same_draws_in_the_same_order(models):
    # torch's draws in call order, with the module making each, and the port's.
    torch_model, port = models
    torch_model.train()
    port.train()
    sites = dropout_sites(torch_model, batch())
    assert [(d.op, d.module, d.shape) for d in sites] == [
        ("dropout2d", "drop2d", (4, 8, 1, 1)),
        ("dropout", "drop", (4, 512)),
    ]
    with record_draws() as draws:
        port(compat.to_mlx(batch()))
    # The port draws channels last, (4, 1, 1, 8): the same draws as torch's (4, 8, 1, 1).
    assert [(d.op, d.module, d.drawn()) for d in draws] == [
        (d.op, d.module, d.drawn()) for d in sites
    ]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_port_gives_torchs_outputs(models, training):
    torch_model, port = models
    torch_model.train(training)
    port.train(training)
    assert_same_as_torch(torch_model, port, batch(), calls=3)


def test_dropout2d_alone_bit_for_bit(models):
    _, port = models
    port.train()

    def port_drop2d(x: mx.array) -> mx.array:  # NCHW in and out, as torch's
        return port.drop2d(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    assert_same_as_torch(torch.nn.Dropout2d(0.2), port_drop2d, batch(), rtol=0, atol=0)


def test_with_the_torch_mode_fixture(models, torch_mode):
    # torch and flashdrop are seeded alike and flashdrop draws torch's masks: compare directly.
    torch_model, port = models
    torch_model.train()
    port.train()
    x = batch()
    with torch.no_grad():
        expected = torch_model(x)
    got = compat.to_torch(port(compat.to_mlx(x)))
    # A failure names the elements that differ, the largest difference and where it is.
    torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


def test_same_distribution_in_mlx_mode(models, flashdrop_seed):
    # flashdrop's default mode draws from MLX's generator: the same distribution, not the same
    # masks. The seed is 0, or the one given with --flashdrop-seed.
    torch_model, port = models
    torch_model.train()
    port.train()
    assert_statistically_equivalent(torch_model, port, batch(), trials=300, seed=flashdrop_seed)


@pytest.mark.flashdrop_seed(1234)
def test_dropout_rate_with_a_pinned_seed(flashdrop_seed):
    assert flashdrop_seed == 1234
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(2))
    assert_statistically_equivalent(torch.nn.Dropout(0.5), nn.Dropout(0.5), x, seed=flashdrop_seed)
