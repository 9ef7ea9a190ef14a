"""Hugging Face's GPT-2 (transformers' GPT2LMHeadModel) and an MLX port of it, built from a tiny
config: no downloads. The port drops where Hugging Face's does: the embeddings (``drop``), the
attention weights (``nn.functional.dropout`` in the eager attention function, SDPA's
``dropout_p`` in the "sdpa" one), ``resid_dropout`` and the MLP's ``dropout``."""

import math

import mlx.core as mx
import mlx.nn
import torch

import flashdrop.nn.functional as F
from flashdrop import compat, nn

VOCAB, POSITIONS, DIM, HEADS, LAYERS = 32, 16, 16, 2, 2


def hf_gpt2(attention: str, p: float = 0.1):
    """transformers' GPT2LMHeadModel with ``attn_implementation=attention``, in training."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=POSITIONS,
        n_embd=DIM,
        n_layer=LAYERS,
        n_head=HEADS,
        embd_pdrop=p,
        attn_pdrop=p,
        resid_pdrop=p,
        use_cache=False,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation=attention,
    )
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).train()


class Conv1D(mlx.nn.Module):
    """transformers' Conv1D: a linear layer whose weight is stored (in, out)."""

    def __init__(self, out_features: int, in_features: int) -> None:
        super().__init__()
        self.weight = mx.zeros((in_features, out_features))
        self.bias = mx.zeros((out_features,))

    def __call__(self, x: mx.array) -> mx.array:
        return x @ self.weight + self.bias


class Attention(mlx.nn.Module):
    def __init__(self, attention: str, p: float) -> None:
        super().__init__()
        self.attention = attention
        self.c_attn = Conv1D(3 * DIM, DIM)
        self.c_proj = Conv1D(DIM, DIM)
        self.attn_dropout = nn.Dropout(p)  # its p, as Hugging Face reads it
        self.resid_dropout = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        n, length, _ = x.shape
        q, k, v = (
            t.reshape(n, length, HEADS, -1).swapaxes(1, 2) for t in mx.split(self.c_attn(x), 3, -1)
        )
        p = self.attn_dropout.p if self.training else 0.0
        scale = 1 / math.sqrt(DIM // HEADS)
        if self.attention == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, scale=scale)
        else:
            causal = mx.tril(mx.ones((length, length), dtype=mx.bool_))
            weights = mx.where(causal, (q @ k.swapaxes(-1, -2)) * scale, -mx.inf)
            weights = F.dropout(mx.softmax(weights, axis=-1), p=p, training=self.training)
            out = weights @ v
        out = out.swapaxes(1, 2).reshape(n, length, DIM)
        return self.resid_dropout(self.c_proj(out))


class MLP(mlx.nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.c_fc = Conv1D(4 * DIM, DIM)
        self.c_proj = Conv1D(DIM, 4 * DIM)
        self.dropout = nn.Dropout(p)

    def __call__(self, x: mx.array) -> mx.array:
        h = self.c_fc(x)
        h = 0.5 * h * (1 + mx.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))  # gelu_new
        return self.dropout(self.c_proj(h))


class Block(mlx.nn.Module):
    def __init__(self, attention: str, p: float) -> None:
        super().__init__()
        self.ln_1 = mlx.nn.LayerNorm(DIM, eps=1e-5)
        self.attn = Attention(attention, p)
        self.ln_2 = mlx.nn.LayerNorm(DIM, eps=1e-5)
        self.mlp = MLP(p)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(mlx.nn.Module):
    def __init__(self, attention: str, p: float) -> None:
        super().__init__()
        self.wte = mlx.nn.Embedding(VOCAB, DIM)
        self.wpe = mlx.nn.Embedding(POSITIONS, DIM)
        self.drop = nn.Dropout(p)
        self.h = [Block(attention, p) for _ in range(LAYERS)]
        self.ln_f = mlx.nn.LayerNorm(DIM, eps=1e-5)

    def __call__(self, input_ids: mx.array) -> mx.array:
        x = self.drop(self.wte(input_ids) + self.wpe(mx.arange(input_ids.shape[1])))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class MlxGPT2(mlx.nn.Module):
    """The port: returns a dict with Hugging Face's output field, ``logits``."""

    def __init__(self, attention: str, p: float = 0.1) -> None:
        super().__init__()
        self.transformer = Transformer(attention, p)

    def __call__(self, input_ids: mx.array) -> dict[str, mx.array]:
        hidden = self.transformer(input_ids)
        return {"logits": self.transformer.wte.as_linear(hidden)}  # lm_head is tied to wte


def gpt2(attention: str):
    """(Hugging Face's model, its port with the same weights, a batch of input_ids)."""
    model = hf_gpt2(attention)
    port = MlxGPT2(attention)
    port.load_weights(
        [
            (name, compat.to_mlx(tensor))
            for name, tensor in model.state_dict().items()
            if name != "lm_head.weight"
        ],
        strict=True,
    )
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    return model, port, ids
