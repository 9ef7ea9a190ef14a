"""A CNN with Dropout2d: a torch model and two MLX ports.

Run ``python examples/cnn_dropout2d.py`` (add ``--quick`` for a run of a few seconds).

MLX's convolutions are channels-last, ``(N, H, W, C)``. The first port keeps that layout and
drops channels on the last axis with ``nn.Dropout2d(p, channel_dim=-1)``; the second is a literal
port that keeps torch's ``(N, C, H, W)`` between layers. Both draw one mask value per (sample,
channel), in the same order as torch, so both reproduce torch's output.
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import (
    channels_first,
    channels_last,
    check_modes,
    check_parity,
    copy_weights,
    parse_args,
    report,
    synthetic_classes,
    train,
)

from flashdrop import compat, nn


class TorchCNN(torch.nn.Module):
    def __init__(self, classes: int, p: float = 0.25) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.dropout = torch.nn.Dropout2d(p)
        self.fc = torch.nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, H, W)
        x = self.dropout(torch.relu(self.conv1(x)))
        x = self.dropout(torch.relu(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


class MlxCNN(mlx.nn.Module):
    """The port in MLX's channels-last layout."""

    def __init__(self, classes: int, p: float = 0.25) -> None:
        super().__init__()
        self.conv1 = mlx.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = mlx.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.dropout = nn.Dropout2d(p, channel_dim=-1)
        self.fc = mlx.nn.Linear(16, classes)

    def __call__(self, x: mx.array) -> mx.array:  # (N, H, W, 1)
        x = self.dropout(mlx.nn.relu(self.conv1(x)))
        x = self.dropout(mlx.nn.relu(self.conv2(x)))
        return self.fc(x.mean(axis=(1, 2)))


class MlxCNNChannelsFirst(MlxCNN):
    """A literal port in torch's layout: each MLX convolution is wrapped in transposes."""

    def __init__(self, classes: int, p: float = 0.25) -> None:
        super().__init__(classes, p)
        self.dropout = nn.Dropout2d(p)  # channel_dim=1, torch's default

    def __call__(self, x: mx.array) -> mx.array:  # (N, 1, H, W)
        x = self.dropout(channels_first(mlx.nn.relu(self.conv1(channels_last(x)))))
        x = self.dropout(channels_first(mlx.nn.relu(self.conv2(channels_last(x)))))
        return self.fc(x.mean(axis=(2, 3)))


def main() -> int:
    args = parse_args(__doc__)
    batch, size, classes = (16, 12, 4) if args.quick else (64, 28, 10)
    torch_model = TorchCNN(classes)
    x = torch.randn(batch, 1, size, size)
    images, labels = synthetic_classes(batch, (1, size, size), classes)  # in torch's layout

    # check_parity's flashdrop.manual_seed also seeds MLX's stream, so both ports train with the
    # same masks: their losses agree line for line.
    for name, model, to_port in [
        ("CNN channels-last", MlxCNN(classes), channels_last),
        ("CNN channel-first", MlxCNNChannelsFirst(classes), lambda x: x),
    ]:
        copy_weights(torch_model, model)
        check_parity(name, torch_model, x, model, to_port(compat.to_mlx(x)), args.seed)
        train(name, model, mlx.nn.losses.cross_entropy, to_port(images), labels, args.steps)
        check_modes(name, model, to_port(images))
    return report()


if __name__ == "__main__":
    sys.exit(main())
