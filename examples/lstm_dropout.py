"""A two-layer bidirectional LSTM with inter-layer dropout: ``torch.nn.LSTM(dropout=p)`` ported.

Run ``python examples/lstm_dropout.py`` (add ``--quick`` for a run of a few seconds).

``torch.nn.LSTM(num_layers=2, dropout=p)`` drops each layer's output sequence except the last
layer's, in training: one ``F.dropout`` of the whole (L, N, H * directions) output, drawn in
(L, N, H) order also with ``batch_first=True`` (torch runs its layers on (L, N, H) sequences).
``flashdrop.nn.LSTM`` is the same layer on MLX: the same arguments, parameters named as
torch's ``state_dict()`` (so a torch checkpoint loads with no renaming), the same draws in torch
random mode. Checked for ``batch_first`` True and False; the head classifies the last step.
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


class TorchLSTMClassifier(torch.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, batch_first: bool, p=0.3) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(
            features, hidden, 2, dropout=p, batch_first=batch_first, bidirectional=True
        )
        self.head = torch.nn.Linear(2 * hidden, classes)
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1] if self.batch_first else out[-1])


class MlxLSTMClassifier(mlx.nn.Module):
    """The port: ``torch.nn`` -> ``flashdrop.nn`` for the LSTM, ``mlx.nn`` for the head."""

    def __init__(self, features: int, hidden: int, classes: int, batch_first: bool, p=0.3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            features, hidden, 2, dropout=p, batch_first=batch_first, bidirectional=True
        )
        self.head = mlx.nn.Linear(2 * hidden, classes)
        self.batch_first = batch_first

    def __call__(self, x: mx.array) -> mx.array:
        out, _ = self.lstm(x)
        return self.head(out[:, -1] if self.batch_first else out[-1])


def main() -> int:
    args = parse_args(__doc__)
    batch, length, features, hidden, classes = (
        (8, 5, 6, 16, 3) if args.quick else (64, 20, 16, 64, 5)
    )
    for batch_first in (True, False):
        name = f"LSTM batch_first={batch_first}"
        torch_model = TorchLSTMClassifier(features, hidden, classes, batch_first)
        model = MlxLSTMClassifier(features, hidden, classes, batch_first)
        copy_weights(torch_model, model)  # the state_dict's names are the port's

        shape = (batch, length, features) if batch_first else (length, batch, features)
        x = torch.randn(shape)
        check_parity(name, torch_model, x, model, compat.to_mlx(x), args.seed)

        # Training: classify noisy copies of one pattern per class.
        x, y = synthetic_classes(batch, (length, features), classes)
        x = x if batch_first else x.swapaxes(0, 1)
        train(name, model, mlx.nn.losses.cross_entropy, x, y, args.steps)
        check_modes(name, model, x)
    return report()


if __name__ == "__main__":
    sys.exit(main())
