"""A self-normalising network, SELU with AlphaDropout: a torch model and its MLX port.

Run ``python examples/snn_alpha_dropout.py`` (add ``--quick`` for a run of a few seconds).

``mlx.nn.SELU`` rounds SELU's constants to 1.0507 and 1.67326 (torch: 1.0507009873554805 and
1.6732632423543772), a relative difference of about 2e-6, so this port agrees with torch to about
1e-5 (measured: 8e-6 with ``--quick``; with torch's constants it would be 4e-7, as close as the
other examples); the tolerance here is 1e-4.
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


class TorchSNN(torch.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, p: float = 0.1) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(features, hidden)
        self.fc2 = torch.nn.Linear(hidden, hidden)
        self.fc3 = torch.nn.Linear(hidden, classes)
        self.selu = torch.nn.SELU()
        self.dropout = torch.nn.AlphaDropout(p)
        for fc in (self.fc1, self.fc2, self.fc3):  # LeCun normal, as SELU networks need
            torch.nn.init.kaiming_normal_(fc.weight, nonlinearity="linear")
            torch.nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.selu(self.fc1(x)))
        x = self.dropout(self.selu(self.fc2(x)))
        return self.fc3(x)


class MlxSNN(mlx.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, p: float = 0.1) -> None:
        super().__init__()
        self.fc1 = mlx.nn.Linear(features, hidden)
        self.fc2 = mlx.nn.Linear(hidden, hidden)
        self.fc3 = mlx.nn.Linear(hidden, classes)
        self.selu = mlx.nn.SELU()
        self.dropout = nn.AlphaDropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.dropout(self.selu(self.fc1(x)))
        x = self.dropout(self.selu(self.fc2(x)))
        return self.fc3(x)


def main() -> int:
    args = parse_args(__doc__)
    batch, features, hidden, classes = (16, 20, 32, 5) if args.quick else (256, 64, 256, 10)
    torch_model = TorchSNN(features, hidden, classes)
    model = MlxSNN(features, hidden, classes)
    copy_weights(torch_model, model)

    x = torch.randn(batch, features)
    check_parity("SNN", torch_model, x, model, compat.to_mlx(x), args.seed, tol=1e-4)

    x, y = synthetic_classes(batch, (features,), classes)
    train("SNN", model, mlx.nn.losses.cross_entropy, x, y, args.steps, learning_rate=1e-3)
    check_modes("SNN", model, x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
