"""What the Hugging Face ports (tests/_support/gpt2.py, bert.py) share: transformers' two
attention functions ported with flashdrop, and loading a model's ``state_dict()`` into a port.

docs/hugging-face.md shows these functions (the ``--8<--`` sections) beside the lines of
transformers they port.
"""

import mlx.core as mx
import mlx.nn

import flashdrop.nn.functional as F
from flashdrop import compat


# --8<-- [start:attention]
def eager_attention(module, query, key, value, mask, scaling, dropout):
    """transformers' ``eager_attention_forward``: ``mask`` is additive (0 or the float minimum)."""
    weights = (query @ key.swapaxes(-1, -2)) * scaling
    if mask is not None:
        weights = weights + mask
    weights = mx.softmax(weights, axis=-1)
    # transformers: nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return (weights @ value).swapaxes(1, 2)  # (N, L, heads, head_dim)


def sdpa_attention(module, query, key, value, mask, scaling, dropout):
    """transformers' ``sdpa_attention_forward``: ``mask`` is bool, True where a key is seen;
    without one, a causal module (``module.is_causal``) passes ``is_causal=True``."""
    is_causal = query.shape[2] > 1 and mask is None and module.is_causal
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, dropout_p=dropout, is_causal=is_causal, scale=scaling
    )
    return out.swapaxes(1, 2)


ATTENTION = {"eager": eager_attention, "sdpa": sdpa_attention}
# --8<-- [end:attention]


# --8<-- [start:load]
def load_hugging_face(port: mlx.nn.Module, model) -> mlx.nn.Module:
    """``port`` with ``model``'s ``state_dict()`` loaded as it is (strict: every parameter),
    but for a head tied to the input embeddings (the port reuses the embedding), and in the
    model's training mode."""
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    port.load_weights(
        [(k, compat.to_mlx(v)) for k, v in model.state_dict().items() if k not in tied],
        strict=True,
    )
    return port.train(model.training)


# --8<-- [end:load]
