"""An MLP with Dropout: a torch model and its MLX port.

Run ``python examples/mlp_dropout.py`` (add ``--quick`` for a run of a few seconds).
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import (
    check_modes,
    check_parity,
    copy_weights,
    parse_args,
    report,
    synthetic_classes,
    train,
)

from flashdrop import compat, nn


class TorchMLP(torch.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, p: float = 0.5) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(features, hidden)
        self.fc2 = torch.nn.Linear(hidden, hidden)
        self.fc3 = torch.nn.Linear(hidden, classes)
        self.dropout = torch.nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        return self.fc3(x)


class MlxMLP(mlx.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, p: float = 0.5) -> None:
        super().__init__()
        self.fc1 = mlx.nn.Linear(features, hidden)
        self.fc2 = mlx.nn.Linear(hidden, hidden)
        self.fc3 = mlx.nn.Linear(hidden, classes)
        self.dropout = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.dropout(mlx.nn.relu(self.fc1(x)))
        x = self.dropout(mlx.nn.relu(self.fc2(x)))
        return self.fc3(x)


def main() -> int:
    args = parse_args(__doc__)
    batch, features, hidden, classes = (16, 20, 32, 5) if args.quick else (256, 64, 256, 10)
    torch_model = TorchMLP(features, hidden, classes)
    model = MlxMLP(features, hidden, classes)
    copy_weights(torch_model, model)

    x = torch.randn(batch, features)
    check_parity("MLP", torch_model, x, model, compat.to_mlx(x), args.seed)

    x, y = synthetic_classes(batch, (features,), classes)
    train("MLP", model, mlx.nn.losses.cross_entropy, x, y, args.steps)
    check_modes("MLP", model, x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
