"""The messages of torch.nn's layers that drop inside themselves: ``MultiheadAttention``, the
Transformer family, ``RNN``, ``LSTM`` and ``GRU``.

torch 2.13's texts, word for word; shapes are printed as torch prints them
(``torch.Size([2, 3])``) so that a message reads exactly as torch's.
"""

from collections.abc import Sequence
from typing import NoReturn


def _size(shape: Sequence[int]) -> str:
    """A shape as torch prints it."""
    return f"torch.Size([{', '.join(str(n) for n in shape)}])"


# --- MultiheadAttention -------------------------------------------------------------------


def raise_embed_dim_and_heads(embed_dim: int, num_heads: int) -> NoReturn:
    raise ValueError(
        "embed_dim and num_heads must be greater than 0,"
        f" got embed_dim={embed_dim} and num_heads={num_heads} instead"
    )


def raise_embed_dim_not_divisible() -> NoReturn:
    raise AssertionError("embed_dim must be divisible by num_heads")


def raise_mask_dtype(mask_name: str) -> NoReturn:
    raise AssertionError(f"only bool and floating types of {mask_name} are supported")


def mismatched_masks(mask_name: str, other_name: str) -> str:
    return (
        f"Support for mismatched {mask_name} and {other_name} "
        "is deprecated. Use same type for both instead."
    )


def raise_batched_dims(what: str, expected: str, found: str) -> NoReturn:
    raise AssertionError(f"For {what} `query`, expected {expected} but found {found}")


def raise_query_dims(ndim: int) -> NoReturn:
    raise AssertionError(
        f"query should be unbatched 2D or batched 3D tensor but received {ndim}-D query tensor"
    )


def raise_unbatched_3d_mask(expected: tuple[int, ...], got: tuple[int, ...]) -> NoReturn:
    raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {_size(got)}")


def raise_causal_without_mask() -> NoReturn:
    raise RuntimeError(
        "Need attn_mask if specifying the is_causal hint. "
        "You may use the Transformer module method "
        "`generate_square_subsequent_mask` to create this mask."
    )


def raise_embed_dim(expected: int, got: int) -> NoReturn:
    raise AssertionError(f"was expecting embedding dimension of {expected}, but got {got}")


def raise_key_value_shapes(key: tuple[int, ...], value: tuple[int, ...]) -> NoReturn:
    raise AssertionError(f"key shape {_size(key)} does not match value shape {_size(value)}")


def raise_key_value_dims(key: tuple[int, ...], value: tuple[int, ...]) -> NoReturn:
    raise AssertionError(
        f"key's sequence and batch dims {_size(key)} do not match value's {_size(value)}"
    )


def raise_attn_mask_shape(ndim: int, shape: tuple[int, ...], correct: tuple[int, ...]) -> NoReturn:
    raise RuntimeError(
        f"The shape of the {ndim}D attn_mask is {_size(shape)}, but should be {correct}."
    )


def raise_key_padding_mask_shape(axis: int, expected: int, got: int) -> NoReturn:
    raise AssertionError(f"Expected key_padded_mask.shape[{axis}] to be {expected}, but got {got}")


def raise_not_an_array(layer: str, arg: str, value: object) -> NoReturn:
    """Where torch would take a PackedSequence or a NestedTensor: flashdrop takes arrays only."""
    got = type(value).__name__
    hint = ""
    if hasattr(value, "batch_sizes"):
        hint = (
            ": flashdrop has no PackedSequence; pad the sequences to one length and pass the"
            " padded (L, N, *) array (mask the padded steps' outputs yourself)"
        )
    raise TypeError(f"{layer}: {arg} must be an mlx.core.array, but got {got}{hint}")


# --- Transformer ----------------------------------------------------------------------------


def raise_activation(activation: object) -> NoReturn:
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def nested_tensor_disabled(reason: str) -> str:
    return f"enable_nested_tensor is True, but self.use_nested_tensor is False because {reason}"


def raise_transformer_batch() -> NoReturn:
    raise RuntimeError("the batch number of src and tgt must be equal")


def raise_transformer_features() -> NoReturn:
    raise RuntimeError("the feature number of src and tgt must be equal to d_model")


# --- RNN, LSTM, GRU -------------------------------------------------------------------------


def raise_rnn_dropout() -> NoReturn:
    raise ValueError(
        "dropout should be a number in range [0, 1] "
        "representing the probability of an element being "
        "zeroed"
    )


def rnn_dropout_single_layer(dropout: float, num_layers: int) -> str:
    return (
        "dropout option adds dropout after all but last "
        "recurrent layer, so non-zero dropout expects "
        f"num_layers greater than 1, but got dropout={dropout} and "
        f"num_layers={num_layers}"
    )


def raise_rnn_type(arg: str, value: object) -> NoReturn:
    raise TypeError(
        f"{arg} should be of type {'bool' if arg in ('bias', 'batch_first') else 'int'}"
        f", got: {type(value).__name__}"
    )


def raise_rnn_not_positive(arg: str) -> NoReturn:
    """``input_size``, ``hidden_size`` or ``num_layers`` below 1."""
    raise ValueError(f"{arg} must be greater than zero")


def raise_proj_size_negative() -> NoReturn:
    raise ValueError("proj_size should be a positive integer or zero to disable projections")


def raise_proj_size_not_smaller() -> NoReturn:
    raise ValueError("proj_size has to be smaller than hidden_size")


def raise_nonlinearity(nonlinearity: object) -> NoReturn:
    raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def check_no_proj_size(kwargs: dict[str, object]) -> None:
    """``RNN`` and ``GRU`` take keywords beyond their own only to refuse ``proj_size`` as torch
    does (a ``ValueError``, given any value); any other is the ``TypeError`` torch's
    ``RNNBase`` gets from Python."""
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        name = next(iter(kwargs))
        raise TypeError(f"RNNBase.__init__() got an unexpected keyword argument '{name}'")


def raise_rnn_input_dims(mode: str, ndim: int) -> NoReturn:
    tail = "D tensor instead" if mode == "RNN" else "D instead"
    raise ValueError(f"{mode}: Expected input to be 2D or 3D, got {ndim}{tail}")


def raise_hx_dims(batched: bool, ndims: Sequence[int], lstm: bool) -> NoReturn:
    kind = "batched 3-D" if batched else "unbatched 2-D"
    want = 3 if batched else 2
    if lstm:
        got = ", ".join(f"{n}-D" for n in ndims)
        raise RuntimeError(
            f"For {kind} input, hx and cx should also be {want}-D but got ({got}) tensors"
        )
    raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {ndims[0]}-D tensor")


def raise_rnn_input_dtype(input_dtype: str, weight_dtype: str) -> NoReturn:
    raise ValueError(
        f"RNN input dtype ({input_dtype}) does not match weight dtype ({weight_dtype}). "
        f"Convert input: input.to({weight_dtype}), or convert model: model.to({input_dtype})"
    )


def raise_rnn_input_size(expected: int, got: int) -> NoReturn:
    raise RuntimeError(
        f"input.size(-1) must be equal to input_size. Expected {expected}, got {got}"
    )


def raise_hidden_size(which: str, expected: tuple[int, ...], got: tuple[int, ...]) -> NoReturn:
    raise RuntimeError(f"Expected {which} size {expected}, got {list(got)}")
