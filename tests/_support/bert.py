"""Hugging Face's BERT (transformers' BertModel, with its pooler) and an MLX port of it, built
from a tiny config: no downloads. The port drops where Hugging Face's does: the embeddings
(``embeddings.dropout``), the attention weights (``nn.functional.dropout`` in the eager attention
function, SDPA's ``dropout_p`` in the "sdpa" one, with ``attention.self.dropout``'s p: the module
itself is never called), ``attention.output.dropout`` and ``output.dropout``; padding masked out
of the keys by ``attention_mask``. docs/hugging-face.md shows it."""

import mlx.core as mx
import mlx.nn
import torch

from flashdrop import nn
from tests._support.hugging_face import ATTENTION, load_hugging_face

VOCAB, POSITIONS, DIM, HEADS, LAYERS, FFN = 32, 16, 16, 2, 2, 32


def bert_config(attention: str, p: float = 0.1):
    """A tiny BertConfig with ``attn_implementation=attention`` and both dropouts ``p``."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=DIM,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=POSITIONS,
        hidden_dropout_prob=p,
        attention_probs_dropout_prob=p,
        attn_implementation=attention,
    )


def hf_bert(attention: str, p: float = 0.1):
    """transformers' BertModel with ``attn_implementation=attention``, in training."""
    from transformers import BertModel

    torch.manual_seed(0)
    return BertModel(bert_config(attention, p)).train()


class Embeddings(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.word_embeddings = mlx.nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = mlx.nn.Embedding(
            config.max_position_embeddings, config.hidden_size
        )
        self.token_type_embeddings = mlx.nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = mlx.nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.pad_token_id = config.pad_token_id

    def __call__(self, input_ids: mx.array) -> mx.array:
        words = self.word_embeddings(input_ids)
        # torch's padding_idx: the padding token's embedding gets no gradient
        words = mx.where(
            (input_ids == self.pad_token_id)[..., None], mx.stop_gradient(words), words
        )
        x = words + self.token_type_embeddings.weight[0]  # token type 0
        x = x + self.position_embeddings(mx.arange(input_ids.shape[1]))
        return self.dropout(self.LayerNorm(x))


# --8<-- [start:attention]
class SelfAttention(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.attention = ATTENTION[config._attn_implementation]
        self.is_causal = False
        self.heads = config.num_attention_heads
        self.query = mlx.nn.Linear(config.hidden_size, config.hidden_size)
        self.key = mlx.nn.Linear(config.hidden_size, config.hidden_size)
        self.value = mlx.nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)  # only its p is used

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        n, length, dim = x.shape
        q, k, v = (
            proj(x).reshape(n, length, self.heads, -1).swapaxes(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        out = self.attention(
            self,
            q,
            k,
            v,
            mask,
            scaling=(dim // self.heads) ** -0.5,
            dropout=self.dropout.p if self.training else 0.0,
        )
        return out.reshape(n, length, dim)


def attention_mask_for(attention: str, attention_mask: mx.array | None) -> mx.array | None:
    """transformers' mask for its attention function, from the (N, S) ``attention_mask`` (1: a
    token, 0: padding): for "sdpa" bool (N, 1, 1, S), True where a key is seen; for "eager"
    additive, 0 there and float32's minimum at the padding."""
    if attention_mask is None:
        return None
    seen = attention_mask.astype(mx.bool_)[:, None, None, :]
    return seen if attention == "sdpa" else mx.where(seen, 0.0, mx.finfo(mx.float32).min)


# --8<-- [end:attention]


class AddAndNorm(mlx.nn.Module):
    """transformers' BertSelfOutput and BertOutput: dense, dropout, LayerNorm of the sum."""

    def __init__(self, config, features: int) -> None:
        super().__init__()
        self.dense = mlx.nn.Linear(features, config.hidden_size)
        self.LayerNorm = mlx.nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def __call__(self, x: mx.array, residual: mx.array) -> mx.array:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.self = SelfAttention(config)
        self.output = AddAndNorm(config, config.hidden_size)

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        return self.output(self.self(x, mask), x)


class Intermediate(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = mlx.nn.Linear(config.hidden_size, config.intermediate_size)

    def __call__(self, x: mx.array) -> mx.array:
        return mlx.nn.gelu(self.dense(x))  # transformers' "gelu": the exact, erf form


class Layer(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = AddAndNorm(config, config.intermediate_size)

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class Encoder(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.layer = [Layer(config) for _ in range(config.num_hidden_layers)]

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        for layer in self.layer:
            x = layer(x, mask)
        return x


class Pooler(mlx.nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = mlx.nn.Linear(config.hidden_size, config.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return mx.tanh(self.dense(x[:, 0]))


class MlxBert(mlx.nn.Module):
    """The port of BertModel: returns a dict with Hugging Face's output fields,
    ``last_hidden_state`` and ``pooler_output``."""

    def __init__(self, config) -> None:
        super().__init__()
        self.implementation = config._attn_implementation
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config)

    def __call__(
        self, input_ids: mx.array, attention_mask: mx.array | None = None
    ) -> dict[str, mx.array]:
        mask = attention_mask_for(self.implementation, attention_mask)
        hidden = self.encoder(self.embeddings(input_ids), mask)
        return {"last_hidden_state": hidden, "pooler_output": self.pooler(hidden)}


def bert(attention: str):
    """(Hugging Face's model, its port with the same weights, a batch of input_ids, its
    attention_mask: the second sequence padded after 5 tokens)."""
    model = hf_bert(attention)
    port = load_hugging_face(MlxBert(model.config), model)
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    attention_mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    return model, port, ids, attention_mask
