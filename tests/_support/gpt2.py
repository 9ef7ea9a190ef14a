"""Hugging Face's GPT-2 (transformers' GPT2LMHeadModel) and an MLX port of it, built from a tiny
config: no downloads. The port drops where Hugging Face's does: the embeddings (``drop``), the
attention weights (``nn.functional.dropout`` in the eager attention function, SDPA's
``dropout_p`` in the "sdpa" one, with ``attn_dropout``'s p: the module itself is never
called), ``resid_dropout`` and the MLP's ``dropout``. docs/hugging-face.md shows it."""

import math

import mlx.core as mx
import mlx.nn
import torch

from flashdrop import nn
from tests._support.hugging_face import ATTENTION, load_hugging_face

VOCAB, POSITIONS, DIM, HEADS, LAYERS = 32, 16, 16, 2, 2


def gpt2_config(attention: str, p: float = 0.1):
    """A tiny GPT2Config with ``attn_implementation=attention`` and every dropout ``p``."""
    from transformers import GPT2Config

    return GPT2Config(
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


def hf_gpt2(attention: str, p: float = 0.1):
    """transformers' GPT2LMHeadModel with ``attn_implementation=attention``, in training."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(gpt2_config(attention, p)).train()


class Conv1D(mlx.nn.Module):
    """transformers' Conv1D: a linear layer whose weight is stored (in, out)."""

    def __init__(self, out_features: int, in_features: int) -> None:
        super().__init__()
        self.weight = mx.zeros((in_features, out_features))
        self.bias = mx.zeros((out_features,))

    def __call__(self, x: mx.array) -> mx.array:
        return x @ self.weight + self.bias


# --8<-- [start:attention]
class Attention(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.attention = ATTENTION[config._attn_implementation]
        self.sdpa = config._attn_implementation == "sdpa"
        self.is_causal = True  # read by SDPA, as transformers' module attribute
        self.heads = config.n_head
        self.c_attn = Conv1D(3 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)  # only its p is used, as in transformers
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def __call__(self, x: mx.array) -> mx.array:
        n, length, dim = x.shape
        q, k, v = (
            t.reshape(n, length, self.heads, -1).swapaxes(1, 2)
            for t in mx.split(self.c_attn(x), 3, axis=-1)
        )
        if self.sdpa:  # no mask: SDPA's is_causal (transformers', without padding)
            mask = None
        else:  # the eager function adds transformers' causal mask: 0, or float32's minimum
            causal = mx.tril(mx.ones((length, length), dtype=mx.bool_))
            mask = mx.where(causal, 0.0, mx.finfo(mx.float32).min)
        out = self.attention(
            self,
            q,
            k,
            v,
            mask,
            scaling=1 / math.sqrt(dim // self.heads),
            dropout=self.attn_dropout.p if self.training else 0.0,
        )
        return self.resid_dropout(self.c_proj(out.reshape(n, length, dim)))


# --8<-- [end:attention]


class MLP(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.c_fc = Conv1D(4 * config.n_embd, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, 4 * config.n_embd)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def __call__(self, x: mx.array) -> mx.array:
        h = self.c_fc(x)
        h = 0.5 * h * (1 + mx.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))  # gelu_new
        return self.dropout(self.c_proj(h))


class Block(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.ln_1 = mlx.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config)
        self.ln_2 = mlx.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.wte = mlx.nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = mlx.nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = [Block(config) for _ in range(config.n_layer)]
        self.ln_f = mlx.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def __call__(self, input_ids: mx.array) -> mx.array:
        x = self.drop(self.wte(input_ids) + self.wpe(mx.arange(input_ids.shape[1])))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class MlxGPT2(mlx.nn.Module):
    """The port of GPT2LMHeadModel: returns a dict with Hugging Face's output field,
    ``logits``."""

    def __init__(self, config) -> None:
        super().__init__()
        self.transformer = Transformer(config)

    def __call__(self, input_ids: mx.array) -> dict[str, mx.array]:
        hidden = self.transformer(input_ids)
        return {"logits": self.transformer.wte.as_linear(hidden)}  # lm_head is tied to wte


def gpt2(attention: str):
    """(Hugging Face's model, its port with the same weights, a batch of input_ids)."""
    model = hf_gpt2(attention)
    port = load_hugging_face(MlxGPT2(model.config), model)
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    return model, port, ids
