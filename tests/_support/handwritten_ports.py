"""Hand-written MLX ports of torch's MultiheadAttention, TransformerEncoderLayer and 2-layer
LSTM, as users wrote them before flashdrop.nn had these layers (the examples use flashdrop.nn's
layers now). test_draws_examples plants bugs in them to check what the testing helpers say."""

import math

import mlx.core as mx
import mlx.nn
import torch

from flashdrop import compat, nn
from flashdrop.nn import functional as F


class MultiheadAttention(mlx.nn.Module):
    """``torch.nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)``, self-attention.

    The parameters have torch's names and layouts (``in_proj_weight`` stacks q, k and v).
    """

    def __init__(self, dim: int, heads: int, p: float = 0.0) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.in_proj_weight = mx.random.uniform(-bound, bound, (3 * dim, dim))
        self.in_proj_bias = mx.zeros((3 * dim,))
        self.out_proj = mlx.nn.Linear(dim, dim)
        self.heads, self.p = heads, p

    def __call__(self, x: mx.array, need_weights: bool = True) -> tuple[mx.array, mx.array | None]:
        n, length, dim = x.shape
        head_dim = dim // self.heads
        proj = x @ self.in_proj_weight.T + self.in_proj_bias
        q, k, v = (
            a.reshape(n, length, self.heads, head_dim).swapaxes(1, 2)  # (N, H, L, head_dim)
            for a in mx.split(proj, 3, axis=-1)
        )
        p = self.p if self.training else 0.0
        if not need_weights:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            weights = None
        else:
            # torch: softmax(q / sqrt(head_dim) @ k^T) on (N * H, L, S), then F.dropout
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.swapaxes(-1, -2)
            weights = mx.softmax(scores.reshape(n * self.heads, length, length), axis=-1)
            weights = F.dropout(weights, p=p) if p > 0 else weights
            weights = weights.reshape(n, self.heads, length, length)
            out = weights @ v
            weights = weights.mean(axis=1)
        out = self.out_proj(out.swapaxes(1, 2).reshape(n, length, dim))
        return out, weights


class TorchAttentionModel(torch.nn.Module):
    """Self-attention through torch's layer; with ``need_weights``, the averaged weights are
    appended to the output (N, L, dim + L) so that the parity check covers them too."""

    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(dim, heads, dropout=p, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, weights = self.attn(x, x, x, need_weights=self.need_weights)
        return out if weights is None else torch.cat([out, weights], dim=-1)


class MlxAttentionModel(mlx.nn.Module):
    def __init__(self, dim: int, heads: int, need_weights: bool, p: float = 0.2) -> None:
        super().__init__()
        self.attn = MultiheadAttention(dim, heads, p)
        self.need_weights = need_weights

    def __call__(self, x: mx.array) -> mx.array:
        out, weights = self.attn(x, need_weights=self.need_weights)
        return out if weights is None else mx.concatenate([out, weights], axis=-1)


class TransformerEncoderLayer(mlx.nn.Module):
    """``torch.nn.TransformerEncoderLayer(dim, heads, ffn, p, batch_first=True, norm_first)``."""

    def __init__(self, dim: int, heads: int, ffn: int, p: float, norm_first: bool) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, heads, p)
        self.linear1 = mlx.nn.Linear(dim, ffn)
        self.dropout = nn.Dropout(p)
        self.linear2 = mlx.nn.Linear(ffn, dim)
        self.norm1 = mlx.nn.LayerNorm(dim)
        self.norm2 = mlx.nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(p)
        self.dropout2 = nn.Dropout(p)
        self.norm_first = norm_first

    def _sa_block(self, x: mx.array) -> mx.array:
        out = self.self_attn(x, need_weights=False)[0]
        # torch's attention output is a transposed view, (N, L, E) over (L, N, E) memory, and
        # dropout draws its mask in memory order: dropout1's mask comes in (L, N, E) order.
        return self.dropout1(out.swapaxes(0, 1)).swapaxes(0, 1)

    def _ff_block(self, x: mx.array) -> mx.array:
        return self.dropout2(self.linear2(self.dropout(mlx.nn.relu(self.linear1(x)))))

    def __call__(self, x: mx.array) -> mx.array:
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x))
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x))
        return self.norm2(x + self._ff_block(x))


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
