"""A two-layer LSTM with inter-layer dropout: ``torch.nn.LSTM(dropout=p)`` and its MLX port.

Run ``python examples/lstm_dropout.py`` (add ``--quick`` for a run of a few seconds).

``torch.nn.LSTM(num_layers=2, dropout=p)`` drops each layer's output sequence except the last
layer's, in training: one ``F.dropout`` of the whole (L, N, H) output. torch runs its layers on
(L, N, H) sequences even with ``batch_first=True``, so the mask is drawn in (L, N, H) order in
both layouts. MLX's ``mlx.nn.LSTM`` is one layer on (N, L, H) sequences: the port stacks two and
drops the first one's output with ``flashdrop.nn.Dropout``, moved to (L, N, H) for the draw.
Checked for ``batch_first`` True and False; the head classifies the last step's output.
"""

import sys

import mlx.core as mx
import mlx.nn
import torch
from _common import check_modes, check_parity, parse_args, report, synthetic_classes, train

from flashdrop import compat, nn


class TorchLSTMClassifier(torch.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, batch_first: bool, p=0.3) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(features, hidden, 2, dropout=p, batch_first=batch_first)
        self.head = torch.nn.Linear(hidden, classes)
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1] if self.batch_first else out[-1])


class MlxLSTMClassifier(mlx.nn.Module):
    def __init__(self, features: int, hidden: int, classes: int, batch_first: bool, p=0.3) -> None:
        super().__init__()
        self.layers = [mlx.nn.LSTM(features, hidden), mlx.nn.LSTM(hidden, hidden)]
        self.dropout = nn.Dropout(p)
        self.head = mlx.nn.Linear(hidden, classes)
        self.batch_first = batch_first

    def __call__(self, x: mx.array) -> mx.array:
        h = x if self.batch_first else x.swapaxes(0, 1)  # mlx.nn.LSTM: (N, L, features)
        for i, layer in enumerate(self.layers):
            h, _ = layer(h)
            if i < len(self.layers) - 1:  # torch's inter-layer dropout, drawn in (L, N, H) order
                h = self.dropout(h.swapaxes(0, 1)).swapaxes(0, 1)
        return self.head(h[:, -1])


def copy_lstm_weights(torch_model: TorchLSTMClassifier, model: MlxLSTMClassifier) -> None:
    """torch's ``weight_ih_l{k}``, ``weight_hh_l{k}`` (gates i, f, g, o in both) and its two
    biases, summed, into MLX's ``Wx``, ``Wh`` and ``bias``; the head as it is."""
    state = {name: compat.to_mlx(t) for name, t in torch_model.state_dict().items()}
    weights = [("head.weight", state["head.weight"]), ("head.bias", state["head.bias"])]
    for k in range(len(model.layers)):
        weights += [
            (f"layers.{k}.Wx", state[f"lstm.weight_ih_l{k}"]),
            (f"layers.{k}.Wh", state[f"lstm.weight_hh_l{k}"]),
            (f"layers.{k}.bias", state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]),
        ]
    model.load_weights(weights, strict=True)


def main() -> int:
    args = parse_args(__doc__)
    batch, length, features, hidden, classes = (
        (8, 5, 6, 16, 3) if args.quick else (64, 20, 16, 64, 5)
    )
    for batch_first in (True, False):
        name = f"LSTM batch_first={batch_first}"
        torch_model = TorchLSTMClassifier(features, hidden, classes, batch_first)
        model = MlxLSTMClassifier(features, hidden, classes, batch_first)
        copy_lstm_weights(torch_model, model)

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
