"""A Conv3d video block with Dropout3d: a torch model and its MLX port.

Run ``python examples/video_dropout3d.py`` (add ``--quick`` for a run of a few seconds).

The port runs in MLX's channels-last layout, ``(N, T, H, W, C)``, and drops whole channels of
each clip with ``nn.Dropout3d(p, channel_dim=-1)``: one draw per (clip, channel), in torch's order.
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import (
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


class TorchVideoBlock(torch.nn.Module):
    def __init__(self, classes: int, p: float = 0.2) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv3d(8, 16, 3, stride=2, padding=1)
        self.dropout = torch.nn.Dropout3d(p)
        self.fc = torch.nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, T, H, W)
        x = self.dropout(torch.relu(self.conv1(x)))
        x = self.dropout(torch.relu(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3, 4)))


class MlxVideoBlock(mlx.nn.Module):
    def __init__(self, classes: int, p: float = 0.2) -> None:
        super().__init__()
        self.conv1 = mlx.nn.Conv3d(3, 8, 3, padding=1)
        self.conv2 = mlx.nn.Conv3d(8, 16, 3, stride=2, padding=1)
        self.dropout = nn.Dropout3d(p, channel_dim=-1)
        self.fc = mlx.nn.Linear(16, classes)

    def __call__(self, x: mx.array) -> mx.array:  # (N, T, H, W, 3)
        x = self.dropout(mlx.nn.relu(self.conv1(x)))
        x = self.dropout(mlx.nn.relu(self.conv2(x)))
        return self.fc(x.mean(axis=(1, 2, 3)))


def main() -> int:
    args = parse_args(__doc__)
    batch, frames, size, classes = (16, 4, 8, 3) if args.quick else (16, 8, 16, 5)
    torch_model = TorchVideoBlock(classes)
    model = MlxVideoBlock(classes)
    copy_weights(torch_model, model)

    x = torch.randn(batch, 3, frames, size, size)
    check_parity("video block", torch_model, x, model, channels_last(compat.to_mlx(x)), args.seed)

    clips, labels = synthetic_classes(batch, (frames, size, size, 3), classes)
    train("video block", model, mlx.nn.losses.cross_entropy, clips, labels, args.steps)
    check_modes("video block", model, clips)
    return report()


if __name__ == "__main__":
    sys.exit(main())
