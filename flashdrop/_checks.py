"""Every check flashdrop makes on its inputs, and every message it raises or warns.

The texts are torch 2.13's, word for word (tests/parity compares them with real torch), so code
that matches on torch's messages keeps working. Where torch's text leaves the user guessing, a
sentence of ours follows it.
"""

import ctypes
import math
import operator
import re
import sys
import warnings
from collections.abc import Iterable
from typing import Any

import mlx.core as mx
import numpy as np

_P_RANGE = "dropout probability has to be between 0 and 1, but got {p}"


def truth(value: Any) -> bool:
    """``bool(value)``, with torch's ``RuntimeError`` for an ``mx.array`` of more than one value
    (or none), as torch raises for such a tensor: ``Boolean value of Tensor with more than one
    value is ambiguous``. (MLX's own is a ``ValueError``.)"""
    if isinstance(value, mx.array) and value.size != 1:
        values = "more than one value" if value.size else "no values"
        raise RuntimeError(f"Boolean value of Tensor with {values} is ambiguous")
    return bool(value)


def check_not_traced(fn: str, arg: str, value: Any) -> None:
    """A ``TypeError`` for an ``mx.array`` argument that a transformation traces.

    p becomes a Python float, as torch's ops take it; an array that ``mx.grad`` differentiates
    would get a zero gradient without a word (torch refuses a p that requires grad), and one that
    ``mx.compile`` or ``mx.vmap`` traces has no value to convert. MLX's ``async_eval`` refuses
    exactly the arrays such a trace has not evaluated yet, which is how they are told apart. (An
    array the traced function evaluated itself, with ``mx.eval`` or ``.item()``, is not.)
    """
    if not isinstance(value, mx.array):
        return
    try:
        mx.async_eval(value)
    except ValueError as error:  # "[async_eval] Not allowed inside a graph transformation."
        raise TypeError(
            f"{fn}: {arg} is an mx.array traced by a function transformation (mx.grad, "
            f"mx.value_and_grad, mx.vjp, mx.jvp, mx.vmap or mx.compile); {arg} is taken as a "
            f"Python float, as torch's ops take it (torch refuses a {arg} that requires grad), "
            f"so it can be neither differentiated nor traced. Pass a Python float (mx.compile "
            f"traces once per value), or an array that is not an input of the transformation"
        ) from error


def check_p(fn: str, p: Any, low: float = 0.0, high: float = 1.0) -> None:
    """torch's Python-level check: ``ValueError`` for p outside [0, 1].

    NaN passes (every comparison with NaN is false), as in torch: it is caught later by
    :func:`check_p_is_probability`. torch's modules compare with the ints ``0`` and ``1``, its
    functions with ``0.0`` and ``1.0``; the caller passes the bounds so that even the
    ``TypeError`` for a non-number p reads as torch's.
    """
    check_not_traced(fn, "p", p)
    if truth(p < low) or truth(p > high):
        raise ValueError(_P_RANGE.format(p=p))


def check_p_is_probability(p: float) -> None:
    """torch's ATen-level check, which also rejects NaN: ``RuntimeError``."""
    if not 0 <= p <= 1:
        raise RuntimeError(_P_RANGE.format(p=p))


def check_args(fn: str, input: Any, p: Any) -> None:
    """The checks every public dropout function starts with."""
    check_array(input, fn)
    check_p(fn, p)


# torch's messages name a type by its C tp_name. CPython makes that the bare `__name__` for a
# class from a `class` statement (Fraction, Tensor), "module.Name" for C types outside builtins
# (numpy.ndarray, decimal.Decimal), and, for a C extension's heap types, the name the extension
# registered, which no attribute tells (nanobind's mlx.core.array: "array"; array.array:
# "array.array"). So it is read where it is: right after the type object's PyVarObject header.
_TP_NAME_AT = object.__basicsize__ + ctypes.sizeof(ctypes.c_ssize_t)


def typename(obj: Any) -> str:
    """The name torch's messages give ``type(obj)``, its ``tp_name``: ``Fraction``, ``int``,
    ``Tensor``, ``numpy.ndarray``, ``decimal.Decimal``, ``array`` (an ``mx.array``)."""
    return ctypes.c_char_p.from_address(id(type(obj)) + _TP_NAME_AT).value.decode()


def is_torch_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (a subclass's too), without importing torch: a
    tensor exists only once torch is imported."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _argument(op: str, arg: str, position: int | None) -> str:
    where = "" if position is None else f" (position {position})"
    return f"{op}(): argument '{arg}'{where}"


def to_float(value: Any, op: str, arg: str, position: int | None = None) -> float:
    """torch's argument parser for a ``float`` argument: ``value`` as a Python float.

    Accepted, as torch accepts them: bools, ints, floats, numpy's bool, integer, floating and
    complex scalars (complex ones lose their imaginary part, with numpy's ``ComplexWarning``),
    0-d torch tensors (of any subclass) that do not require grad, and, as their analogue, 0-d
    MLX arrays of a real dtype that no transformation traces (:func:`check_not_traced`).
    Anything else (``Fraction``, ``Decimal``, numpy arrays, 0-d ones included, arrays and
    tensors with dimensions) raises torch's ``TypeError``:
    ``dropout(): argument 'p' (position 2) must be float, not Fraction``. ``position`` is left
    out of the message when ``None`` (torch leaves it out for arguments passed by keyword).

    Reusable by every public function with a float argument (``op`` names the function as
    torch's message does: the ``_VF`` op, such as ``feature_dropout`` for ``dropout2d``).
    """
    if isinstance(value, (float, int, np.bool_, np.integer, np.floating, np.complexfloating)):
        return float(value)
    if isinstance(value, mx.array) and value.ndim == 0:
        if mx.issubdtype(value.dtype, mx.complexfloating):
            raise TypeError(
                f"{_argument(op, arg, position)} must be float, not array; "
                f"a 0-d array of a real dtype is taken, but this one is {value.dtype}"
            )
        check_not_traced(op, arg, value)
        return float(value.item())
    if is_torch_tensor(value) and value.ndim == 0 and not value.requires_grad:
        return float(value.item())
    raise TypeError(f"{_argument(op, arg, position)} must be float, not {typename(value)}")


def to_bool(value: Any, op: str, arg: str, position: int | None = None) -> bool:
    """torch's argument parser for a ``bool`` argument: only ``True`` and ``False`` pass;
    anything else (``1``, ``None``, ``numpy.bool``) raises torch's ``TypeError``:
    ``dropout(): argument 'train' (position 3) must be bool, not int``."""
    if isinstance(value, bool):
        return value
    raise TypeError(f"{_argument(op, arg, position)} must be bool, not {typename(value)}")


def vf_args(op: str, p: Any, training: Any, inplace: Any) -> tuple[float, bool, bool]:
    """What torch's ``_VF.<op>_(input, p, train) if inplace else _VF.<op>(input, p, train)``
    makes of its arguments, in that order: ``inplace`` by truthiness (it picks the op, whose
    name the messages give: ``dropout_()`` in place), then ``p`` as a Python float, then
    ``train``, which must be a bool."""
    inplace = truth(inplace)
    if inplace:
        op += "_"
    return to_float(p, op, "p", 2), to_bool(training, op, "train", 3), inplace


def element_dropout_args(
    fn: str, input: Any, p: Any, training: Any, inplace: Any
) -> tuple[float, bool, bool]:
    """:func:`check_args` then :func:`vf_args` for ``fn`` (``dropout``, ``alpha_dropout``):
    ``(p, training, inplace)`` as torch makes them, or its error.

    The common call (an ``mx.array``, a Python float p in [0, 1], a bool ``training``,
    ``inplace=False``) passes every check unchanged: it is answered at once, without the
    conversions (a dropout layer is called once per step and per sequence length; see
    scripts/bench.py's "many shapes")."""
    if (
        type(p) is float
        and type(training) is bool
        and inplace is False
        and type(input) is mx.array
        and 0.0 <= p <= 1.0
    ):
        return p, training, False
    check_args(fn, input, p)
    return vf_args(fn, p, training, inplace)


def check_train_mode(mode: Any) -> None:
    """``Module.train(mode)``'s ``ValueError`` for a ``mode`` that is not a bool."""
    if not isinstance(mode, bool):
        raise ValueError("training mode is expected to be boolean")


def check_rng_state(state: Any, sizes: tuple[int, ...]) -> None:
    """``torch.set_rng_state``'s checks, with its exception types and texts: a uint8 array
    (``TypeError``) with one of ``sizes`` elements, in any shape (``RuntimeError``)."""
    how = (
        f"; set_rng_state takes the uint8 mx.array flashdrop.get_rng_state() returns "
        f"({sizes[0]} elements), or torch's state ({sizes[1]} elements) as an mx.array: "
        "compat.to_mlx(torch.get_rng_state())"
    )
    if not isinstance(state, mx.array):
        raise TypeError(f"expected a torch.ByteTensor, but got {typename(state)}{how}")
    if state.dtype != mx.uint8:
        raise TypeError(f"RNG state must be a torch.ByteTensor{how}, not {state.dtype}")
    if state.size not in sizes:
        raise RuntimeError(
            f"Expected a CPUGeneratorImplState of size {sizes[1]} but found the input RNG "
            f"state size to be {state.size}{how}"
        )


def check_torch_generator_state(left: int, seeded: int, next_: int, words: int) -> None:
    """A torch generator state's header (``left``, ``seeded``, ``next`` of its mt19937 of
    ``words`` words): torch's ``RuntimeError`` for one torch refuses (torch's check; our text
    names the fields), and a ``ValueError`` for one torch accepts but never produces: its draws
    read word ``next`` and regenerate after ``left`` more, two counters only torch's own updates
    keep in step, as numpy's one does."""
    if not (1 <= left <= words and seeded != 0 and next_ <= words):
        raise RuntimeError(
            f"Invalid mt19937 state; the torch part of the state needs 1 <= left <= {words}, "
            f"seeded != 0 and next <= {words}, but has left={left}, seeded={seeded}, "
            f"next={next_}"
        )
    if not (next_ == words + 1 - left or (left == 1 and next_ == 0)):
        raise ValueError(
            f"set_rng_state: a torch generator state with left={left} and next={next_} "
            f"is not one torch produces (next == {words + 1} - left, or left == 1 and next == 0 "
            "after seeding); flashdrop's torch mode cannot continue it"
        )


def check_rng_mode(mode: Any, modes: tuple[str, ...]) -> str:
    """``mode`` if it is one of ``modes``, else a ``ValueError``."""
    if mode not in modes:
        raise ValueError(f"random mode must be one of {modes}, but got {mode!r}")
    return mode


def check_seed(seed: int) -> None:
    """torch's ``ValueError`` for a seed outside [-2**63, 2**64)."""
    if not -(2**63) <= seed < 2**64:
        raise ValueError("Overflow when unpacking long long")  # torch's text


def check_compile_not_shapeless(shapeless: bool) -> None:
    """``flashdrop.compile``'s ``ValueError`` for ``shapeless=True``."""
    if shapeless:
        raise ValueError(
            "flashdrop.compile: shapeless=True cannot compile a random draw (MLX's random ops "
            "cannot infer their output shapes in a shapeless trace: 'RandomBits cannot infer "
            "output shapes'). Use shapeless=False: one trace per input shape."
        )


def raise_layer_item(layer: str, key: str) -> None:
    """The ``TypeError`` for ``layer[key] = value`` on a layer that holds no MLX parameters."""
    raise TypeError(
        f"{layer} holds no MLX parameters: layer[{key!r}] = ... would make "
        f"one; set an attribute instead (layer.{key} = ...), which stays a plain attribute"
    )


# torch 2.13's device types, as its message lists them, and those it has a module for.
_DEVICE_TYPES = (
    "cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, maia, xla, lazy, "
    "vulkan, mps, meta, hpu, mtia, privateuseone"
)
_DEVICE_MODULES = ("cpu", "cuda", "xpu", "mps", "mtia")
_DEVICE_STRING = re.compile(r"([a-zA-Z_]+)(?::([1-9][0-9]*|0))?")


def check_device_type(device_type: Any) -> None:
    """``torch.random.fork_rng``'s check of ``device_type`` (``torch.get_device_module``'s),
    made before it looks at ``enabled``; torch's ``RuntimeError`` texts. ``"meta"`` and a false
    value (torch's default) pass."""
    if device_type == "meta" or not device_type:
        return
    if not isinstance(device_type, str):
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(device_type, torch.device):
            raise RuntimeError(
                f"Invalid value of device '{device_type}', expect torch.device, str, or None"
            )
        device_type = device_type.type
    match = _DEVICE_STRING.fullmatch(device_type)
    if match is None:
        raise RuntimeError(f"Invalid device string: '{device_type}'")
    name, index = match.groups()
    if index is not None and int(index) >= 2**31:
        raise RuntimeError(
            f"Could not parse device index '{index}' in device string '{device_type}'"
        )
    if name not in _DEVICE_TYPES.split(", "):
        raise RuntimeError(
            f"Expected one of {_DEVICE_TYPES} device type at start of device string: {name}"
        )
    if name not in _DEVICE_MODULES:
        raise RuntimeError(
            f"Device '{name}' does not have a corresponding module registered as 'torch.{name}'."
        )


def check_array(input: Any, fn: str) -> None:
    """``TypeError`` for anything that is not an ``mlx.core.array``, saying how to convert it."""
    if isinstance(input, mx.array):
        return
    kind = type(input)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if is_torch_tensor(input):
        how = "convert a torch tensor with flashdrop.compat.to_mlx(tensor)"
    elif kind.__module__.startswith("numpy"):
        how = "convert a numpy array with mlx.core.array(a)"
    else:
        how = "wrap the data with mlx.core.array(...)"
    raise TypeError(f"{fn}: expected input to be an mlx.core.array, but got {name}; {how}")


# torch's names for the dtypes that torch and MLX share (c10::ScalarType's names).
_TORCH_DTYPE_NAMES = {
    mx.bool_: "Bool",
    mx.uint8: "Byte",
    mx.int8: "Char",
    mx.int16: "Short",
    mx.int32: "Int",
    mx.int64: "Long",
    mx.uint16: "UInt16",
    mx.uint32: "UInt32",
    mx.uint64: "UInt64",
    mx.complex64: "ComplexFloat",
    mx.float32: "Float",
    mx.float64: "Double",
    mx.float16: "Half",
    mx.bfloat16: "BFloat16",
}

# Dtypes torch's CPU bernoulli_ has no kernel for: the draw fails before any number is drawn.
_NO_BERNOULLI_KERNEL = (mx.uint16, mx.uint32, mx.uint64, mx.complex64)


def check_can_draw(dtype: mx.Dtype) -> None:
    """torch's ``NotImplementedError`` for dtypes its CPU ``bernoulli_`` cannot fill."""
    if dtype in _NO_BERNOULLI_KERNEL:
        raise NotImplementedError(
            f"\"bernoulli_scalar_cpu_\" not implemented for '{_TORCH_DTYPE_NAMES[dtype]}'"
            f"; dropout in training needs a floating-point input, got {dtype}"
        )


def raise_cannot_scale(dtype: mx.Dtype, alpha: bool) -> None:
    """torch's ``RuntimeError`` for integer and bool inputs, raised after the mask was drawn.

    torch's alpha variants add -1 to the noise first, which turns a bool noise tensor into a
    Long one: their message names ``Long`` for bool inputs, and so does ours.
    """
    name = "Long" if alpha and dtype == mx.bool_ else _TORCH_DTYPE_NAMES[dtype]
    raise RuntimeError(
        f"result type Float can't be cast to the desired output type {name}"
        f"; dropout in training needs a floating-point input, got {dtype}"
    )


def check_feature_dims(ndim: int) -> None:
    if ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")


def check_dropout1d_dims(ndim: int) -> None:
    if ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )


_DEPRECATED_DIMS = (
    "{fn}: Received a {ndim}-D input to {fn}, which is deprecated "
    "and will result in an error in a future release. To retain the behavior "
    "and silence this warning, please use dropout instead. Note that {fn} "
    "exists to provide channel-wise dropout on inputs with {spatial} spatial dimensions, "
    "a channel dimension, and an optional batch dimension (i.e. {lo}D or {hi}D inputs)."
)

_DROPOUT2D_AS_1D = (
    "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
    "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
    "is the channel dim. This behavior will change in a future release to interpret the "
    "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
    "channel-wise dropout behavior, please switch to using dropout1d instead."
)


# Both warnings point at the caller of the public function: the public function is one frame
# up from here, its caller two.


def warn_unexpected_dims(fn: str, ndim: int, spatial: int) -> None:
    """``dropout2d``'s and ``dropout3d``'s ``UserWarning`` for inputs of a deprecated rank."""
    lo, hi = spatial + 1, spatial + 2
    if ndim not in (lo, hi):
        message = _DEPRECATED_DIMS.format(fn=fn, ndim=ndim, spatial=spatial, lo=lo, hi=hi)
        warnings.warn(message, UserWarning, stacklevel=3)


def warn_dropout2d_as_1d() -> None:
    """``dropout2d``'s ``UserWarning`` that a 3-D input is taken as (N, C, L), not (C, H, W)."""
    warnings.warn(_DROPOUT2D_AS_1D, UserWarning, stacklevel=3)


def check_channel_dim(fn: str, channel_dim: int) -> None:
    """``ValueError`` unless ``channel_dim`` is 1 (channels first) or -1 (channels last)."""
    if isinstance(channel_dim, bool) or channel_dim not in (1, -1):
        raise ValueError(
            f"{fn}: channel_dim must be 1 (channels first, torch's (N, C, *) layout) or -1 "
            f"(channels last, the (N, *, C) layout of MLX's convolutions), but got {channel_dim!r}"
        )


# torchvision.ops' texts (its drop_block functions end theirs with a period); flashdrop's own
# functions beyond torch.nn (drop_path, locked_dropout) use the same wording.
_DROP_P_RANGE = "drop probability has to be between 0 and 1, but got {p}"


def check_drop_probability(fn: str, arg: str, p: Any, end: str = "") -> None:
    """torchvision's ``ValueError`` for p outside [0, 1]; NaN is rejected here too (torchvision
    lets it through to a ``bernoulli_`` error)."""
    check_not_traced(fn, arg, p)
    if truth(p < 0.0) or truth(p > 1.0) or truth(p != p):  # torchvision's test, then NaN
        raise ValueError(_DROP_P_RANGE.format(p=p) + end)


def check_stochastic_depth_mode(mode: str) -> None:
    if mode not in ["batch", "row"]:
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")


def check_has_batch(fn: str, ndim: int) -> None:
    """A mask per sample needs a batch axis; torchvision and timm fail with an IndexError."""
    if ndim == 0:
        raise ValueError(f"{fn}: drops whole samples of an (N, *) input, but got a 0-D input")


def check_drop_block_dims(fn: str, ndim: int, expected: int) -> None:
    if ndim != expected:
        raise ValueError(
            f"input should be {expected} dimensional. Got {ndim} dimensions."
            f"; {fn} takes (N, C, {'D, ' if expected == 5 else ''}H, W)"
        )


def check_block_size(fn: str, block_size: int) -> None:
    """torchvision's ``ValueError`` for an even block size (after clamping to the input's size:
    blocks are centred on a pixel), then ours for a block size that is not an int (torchvision:
    a ``TypeError`` from ``torch.empty``) or is below 1."""
    if block_size % 2 == 0:
        raise ValueError(
            f"block size should be odd. Got {block_size} which is even."
            "; block_size is clamped to the smallest spatial size first, which must then be odd"
        )
    if not isinstance(block_size, int):
        raise TypeError(f"{fn}: block_size must be an int, but got {type(block_size).__name__}")
    if block_size < 1:
        raise ValueError(f"{fn}: block_size must be a positive odd integer, but got {block_size}")


def to_int(value: Any) -> Any:
    """An integer of any kind (numpy's, a 0-d integer array or tensor) as a Python int, as
    torch's size arguments take it; a bool, or anything else, is returned unchanged."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def check_max_pool(centres: mx.array, block_size: int, dtype: mx.Dtype) -> None:
    """torchvision's DropBlock max-pools the ``centres`` it drew (taken here, so that the check
    cannot come before the draw): torch's ``TypeError`` for a bool block size (its kernel size),
    then its ``NotImplementedError`` for a bool input (of ``dtype``)."""
    op = f"max_pool{centres.ndim - 2}d"
    if isinstance(block_size, bool):
        raise TypeError(
            f"{op}(): argument 'kernel_size' (position 2) must be tuple of ints, but found "
            "element of type bool at pos 0"
        )
    if dtype == mx.bool_:
        raise NotImplementedError(f"\"{op}\" not implemented for 'Bool'")


def check_locked_dropout_dims(ndim: int) -> None:
    if ndim not in (2, 3):
        raise ValueError(
            f"locked_dropout: Expected 2D (unbatched) or 3D (batched) input, but received a "
            f"{ndim}D input; it takes (L, N, H), (N, L, H) with batch_first=True, or (L, H), "
            "as torch.nn.RNN does"
        )


# --- scaled_dot_product_attention ---------------------------------------------------------------

_SDPA = "scaled_dot_product_attention"

# The C++ type names torch's attention and randint checks print for a dtype (caffe2's TypeMeta
# names).
_TORCH_CPP_DTYPE_NAMES = {
    mx.float32: "float",
    mx.float64: "double",
    mx.float16: "c10::Half",
    mx.bfloat16: "c10::BFloat16",
    mx.int64: "long int",
    mx.int32: "int",
    mx.int16: "short int",
    mx.int8: "signed char",
    mx.uint8: "unsigned char",
    mx.bool_: "bool",
    mx.complex64: "c10::complex<float>",
    mx.uint16: "short unsigned int",
    mx.uint32: "unsigned int",
    mx.uint64: "long unsigned int",
}


def sdpa_args(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any,
    dropout_p: Any,
    is_causal: Any,
    scale: Any,
    enable_gqa: Any,
) -> tuple[float, bool, float | None, bool]:
    """torch's argument parser for ``scaled_dot_product_attention``: ``dropout_p``, ``is_causal``,
    ``scale`` and ``enable_gqa`` as the Python float, bool, float or None and bool the kernel
    sees (torch's ``TypeError`` texts, as for arguments passed by keyword), after our conversion
    hint for arrays that are not ``mx.array``."""
    for name, array in (("query", query), ("key", key), ("value", value)):
        check_array(array, f"{_SDPA}: {name}")
    if attn_mask is not None:
        check_array(attn_mask, f"{_SDPA}: attn_mask")
    return (
        to_float(dropout_p, _SDPA, "dropout_p"),
        to_bool(is_causal, _SDPA, "is_causal"),
        None if scale is None else to_float(scale, _SDPA, "scale"),
        to_bool(enable_gqa, _SDPA, "enable_gqa"),
    )


def check_sdpa_dropout_p(dropout_p: float) -> None:
    """``ValueError`` for a negative or NaN ``dropout_p``, which torch silently takes as 0.

    ``dropout_p > 1`` is left to the dropout itself: torch's ``RuntimeError``, raised where torch
    raises it (after the shape checks of ``query @ key^T`` and of the mask).
    """
    if not dropout_p >= 0:
        raise ValueError(
            f"{_SDPA}: dropout_p has to be between 0 and 1, but got {dropout_p}; torch silently "
            "applies no dropout for a negative or NaN dropout_p, flashdrop refuses it"
        )


def check_sdpa_inputs(query: mx.array, key: mx.array, value: mx.array, attn_mask: Any) -> None:
    """torch's ``validate_sdpa_input``: one dtype, at least 2-D, a mask of an allowed dtype."""
    names = _TORCH_CPP_DTYPE_NAMES
    if not query.dtype == key.dtype == value.dtype:
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{names[query.dtype]} key.dtype: {names[key.dtype]} and value.dtype: "
            f"{names[value.dtype]} instead."
        )
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
            f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead."
        )
    if attn_mask is not None and attn_mask.dtype not in (mx.bool_, mx.float32, query.dtype):
        raise RuntimeError(
            "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
            f"attn_mask.dtype: {names[attn_mask.dtype]} and  query.dtype: "
            f"{names[query.dtype]} instead."
        )


def check_sdpa_flash_mask(
    query: mx.array,
    key: mx.array,
    value: mx.array,
    attn_mask: Any,
    dropout_p: float,
    enable_gqa: bool,
) -> None:
    """torch's ``IndexError`` for a 0-d or 1-D mask where torch 2.13 considers its CPU flash
    kernel: no dropout, 4-D inputs of one batch size and one head count (with ``enable_gqa``,
    key and value heads alike and dividing the query's), a non-empty output and S > 0. Its
    check of the mask reads ``attn_mask.size(-2)``; elsewhere (the math kernel) such a mask
    broadcasts."""
    if attn_mask is None or attn_mask.ndim >= 2 or dropout_p != 0:
        return
    if not query.ndim == key.ndim == value.ndim == 4:
        return
    if not query.shape[0] == key.shape[0] == value.shape[0]:
        return
    heads, key_heads, value_heads = query.shape[1], key.shape[1], value.shape[1]
    if enable_gqa:
        if key_heads != value_heads or heads % key_heads:
            return
    elif not heads == key_heads == value_heads:
        return
    if not math.prod((*query.shape[:-1], value.shape[-1])) or not key.shape[-2]:
        return
    raise IndexError(
        _dim_out_of_range(attn_mask.ndim, -2)
        + "; without dropout torch reads the mask's size(-2) for 4-D inputs; give the mask of "
        f"shape {attn_mask.shape} at least 2 dimensions, e.g. attn_mask.reshape(1, -1)"
    )


def _dim_out_of_range(ndim: int, dim: int) -> str:
    """torch's text for ``size(dim)`` of a tensor with ``ndim`` dimensions (too few)."""
    if ndim == 0:
        return f"Dimension specified as {dim} but tensor has no dimensions"
    return (
        f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})"
    )


def check_sdpa_not_causal_and_mask(is_causal: bool, attn_mask: Any) -> None:
    """torch's ``RuntimeError`` for ``is_causal=True`` together with an ``attn_mask``."""
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "_scaled_dot_product_attention: "
            "Explicit attn_mask should not be set when is_causal=True"
        )


def check_heads_axis(ndim: int) -> None:
    """torch's ``IndexError`` for ``size(-3)`` of a tensor with fewer than 3 dimensions."""
    if ndim < 3:
        raise IndexError(
            _dim_out_of_range(ndim, -3)
            + "; enable_gqa=True needs a heads axis: (N, ..., H, L, E) or (H, L, E) inputs"
        )


def check_gqa_heads(query_heads: int, key_heads: int, value_heads: int) -> None:
    """torch's ``RuntimeError`` (its text stops mid-sentence; ours completes it)."""
    if query_heads == key_heads == value_heads:
        return
    if query_heads % key_heads or query_heads % value_heads:
        raise RuntimeError(
            "Number of heads in key and value must divide the number of heads in "
            f"; the query has {query_heads} heads, the key {key_heads}, the value {value_heads}"
        )


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...], what: str = "") -> tuple[int, ...]:
    """torch's ``infer_size``: the broadcast shape, or its ``RuntimeError`` naming the first
    mismatched dimension from the right; ``what`` (ours) says which arrays were broadcast."""
    ndim = max(len(a), len(b))
    out = []
    for i in range(ndim - 1, -1, -1):
        offset = ndim - 1 - i
        size_a = a[len(a) - 1 - offset] if len(a) - 1 - offset >= 0 else 1
        size_b = b[len(b) - 1 - offset] if len(b) - 1 - offset >= 0 else 1
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise RuntimeError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) "
                f"at non-singleton dimension {i}" + (f"; {what}" if what else "")
            )
        out.append(size_a if size_a != 1 else size_b)
    return tuple(reversed(out))


def check_mask_shape(mask_shape: tuple[int, ...], scores_shape: tuple[int, ...]) -> None:
    """torch adds the mask in place to the (N, ..., H, L, S) scores: it must broadcast to their
    shape without enlarging it."""
    what = f"attn_mask of shape {mask_shape} must broadcast to the scores' shape {scores_shape}"
    shape = broadcast_shapes(scores_shape, mask_shape, what)
    if shape != scores_shape:
        raise RuntimeError(
            f"output with shape {list(scores_shape)} doesn't match the broadcast shape "
            f"{list(shape)}; {what} (N, ..., H, L, S)"
        )


def sdpa_scores_shape(
    query: tuple[int, ...], key: tuple[int, ...], expanded_key: tuple[int, ...]
) -> tuple[int, ...]:
    """The (N, ..., H, L, S) shape of the scores ``query @ key^T``: the batch axes of the query
    and of ``expanded_key`` (the key, its heads repeated for GQA) broadcast, torch's
    ``RuntimeError`` otherwise. The messages name the caller's ``query`` and ``key`` shapes;
    for a mismatched E torch's own is an internal ``bmm`` one, so ours has its type only."""
    what = f"query {query} and key {key} have batch axes that do not broadcast"
    batch = broadcast_shapes(query[:-2], expanded_key[:-2], what)
    if query[-1] != key[-1]:
        raise RuntimeError(
            f"{_SDPA}: query and key must have one embedding size E; got {query[-1]} and "
            f"{key[-1]} (query {query}, key {key})"
        )
    return (*batch, query[-2], key[-2])


def check_sdpa_value(
    scores: tuple[int, ...],
    query: tuple[int, ...],
    key: tuple[int, ...],
    value: tuple[int, ...],
    expanded_value: tuple[int, ...],
) -> None:
    """The product ``weights @ value``: the weights' batch axes (``scores``, from the caller's
    ``query`` and ``key``) broadcast with ``expanded_value``'s, and key and value have one S;
    torch's ``RuntimeError`` otherwise (for S, with our text: torch's is an internal one)."""
    what = (
        f"the batch axes {scores[:-2]} of query {query} and key {key} and those of value "
        f"{value} do not broadcast"
    )
    broadcast_shapes(scores[:-2], expanded_value[:-2], what)
    if key[-2] != value[-2]:
        raise RuntimeError(
            f"{_SDPA}: key and value must have one sequence length S; got {key[-2]} and "
            f"{value[-2]} (key {key}, value {value})"
        )


def raise_sdpa_not_floating(dtype: mx.Dtype) -> None:
    """torch fails on integer and bool inputs (with varying internal texts), after the dropout."""
    raise RuntimeError(f"{_SDPA}: expected floating-point query, key and value, but got {dtype}")


def raise_sdpa_complex() -> None:
    """torch's CPU softmax has no complex kernel."""
    raise NotImplementedError(
        "\"softmax_lastdim_kernel_impl\" not implemented for 'ComplexFloat'"
        f"; {_SDPA} needs floating-point query, key and value"
    )


# ---------------------------------------------------------------------------------------------
# Random draws (flashdrop.rand, randn, randint, randperm, bernoulli, normal): torch's texts.


def raise_torch_mode_compiled(what: str) -> None:
    raise RuntimeError(
        f"flashdrop: a torch-mode {what} cannot be compiled or vmapped: its values are drawn "
        "on the host, so mx.compile would freeze them into the graph (the same values on every "
        "call) and mx.vmap would share them between all rows. Draw in 'mlx' mode there (with "
        "flashdrop.compile for compiling), or call the function uncompiled and outside mx.vmap "
        "(dropout on the whole batch draws every row afresh)."
    )


def raise_torch_mode_recomputed(what: str) -> None:
    raise RuntimeError(
        f"flashdrop: a torch-mode {what} cannot be recomputed by mx.checkpoint or "
        "mlx.nn.utils.checkpoint (or drawn in any custom vjp's backward pass): the "
        "recomputation would draw new masks, not the forward's, so the gradient would be wrong "
        "and torch's stream would advance past where torch's checkpoint leaves it. Use "
        "flashdrop.checkpoint(fn) (or flashdrop.checkpoint(module)), which recomputes with the "
        "forward's masks, as torch.utils.checkpoint does."
    )


def torch_dtype_name(dtype: mx.Dtype) -> str:
    """c10's name for ``dtype`` (``Float``, ``Long``, ...)."""
    return _TORCH_DTYPE_NAMES[dtype]


def check_size(fn: str, size: Any) -> tuple[int, ...]:
    """A size as torch's factories take it: ints, or one tuple or list of ints."""
    if not size:
        raise TypeError(f'{fn}() missing 1 required positional arguments: "size"')
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for dim in size:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            _raise_size_type(fn, 1, dim)
    dims = tuple(int(dim) for dim in size)
    for dim in dims:
        if dim < 0:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {dim}: {list(dims)}"
            )
    return dims


def raise_size_given_twice(fn: str) -> None:
    """Python's ``TypeError`` for ``*size`` and ``size=`` in one call."""
    raise TypeError(f"{fn}() got multiple values for argument 'size'")


def check_size_is_sequence(fn: str, size: Any, position: int) -> None:
    if not isinstance(size, (tuple, list)):
        _raise_size_type(fn, position, size)


def _raise_size_type(fn: str, position: int, value: Any) -> None:
    """torch's ``TypeError`` for a size, or one of its dimensions, that is not an int."""
    raise TypeError(
        f"{fn}(): argument 'size' (position {position}) must be tuple of ints, "
        f"not {type(value).__name__}"
    )


def raise_randint_arguments(positional: int, keywords: list[str]) -> None:
    raise TypeError(
        "randint() takes (high, size) or (low, high, size), but got "
        f"{positional} positional arguments and the keywords {keywords}"
    )


def raise_unsupported_dtype(fn: str, dtype: mx.Dtype) -> None:
    raise TypeError(f"{fn}: dtype {dtype} is not supported; use an int or float dtype")


def raise_normal_form(problem: str) -> None:
    raise TypeError(f"normal(): {problem}")


def raise_no_kernel(kernel: str, dtype: mx.Dtype) -> None:
    """torch's ``NotImplementedError`` for a dtype a random kernel has no instance for."""
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{torch_dtype_name(dtype)}'")


def check_int64(*values: int) -> None:
    for value in values:
        if not -(2**63) <= value < 2**63:
            raise ValueError("Overflow when unpacking long long")  # torch's text


def check_from_to(low: int, high: int) -> None:
    if not low < high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )


def check_int_bounds(low: int, high: int, dtype: mx.Dtype) -> None:
    """torch's range check of ``randint``'s bounds against an integer or bool dtype."""
    info = (0, 1) if dtype == mx.bool_ else (mx.iinfo(dtype).min, mx.iinfo(dtype).max)
    for name, value in (("from", low), ("to - 1", high - 1)):
        if not info[0] <= value <= info[1]:
            raise RuntimeError(f"{name} is out of bounds for {_TORCH_CPP_DTYPE_NAMES[dtype]}")


def warn_float_bounds(low: int, high: int, dtype: mx.Dtype, digits: int) -> None:
    """torch's warnings for ``randint`` bounds past the integers a float dtype holds exactly."""
    for name, value in (("from", low), ("to - 1", high - 1)):
        if not -(2**digits) <= value <= 2**digits:
            warnings.warn(
                f"{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to precision "
                f"limitations {_TORCH_CPP_DTYPE_NAMES[dtype]} can support discrete uniform "
                "distribution only within this range. This warning will become an error in "
                "version 1.7 release, please fix the code in advance",
                UserWarning,
                stacklevel=4,
            )


def check_half_bounds(low: int, high: int) -> None:
    """float16 bounds past its largest finite value: torch casts infinity to int64 (undefined)."""
    if max(abs(low), abs(high)) > 65504:
        raise ValueError(
            f"randint: bounds [{low}, {high}) go past float16's largest value, 65504; torch's "
            "result there is undefined behaviour in C++, which flashdrop's torch mode does not "
            "reproduce. Draw an integer dtype and convert."
        )


def check_from_to_in_dtype(low: int, high: int) -> None:
    if not low < high:
        raise RuntimeError(
            "random_ expects 'from' casted to dtype to be less than 'to' casted to dtype, but "
            f"got from={low} >= to={high}"
        )


def check_std(std: float) -> None:
    if not std >= 0.0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")


def holds(condition: mx.array) -> bool:
    """Whether ``condition`` holds everywhere, where MLX can evaluate it: True while
    ``mx.compile`` or ``mx.vmap`` trace (the values are placeholders; nothing can be checked)."""
    try:
        return bool(mx.all(condition).item())
    except ValueError as error:
        if "function transformations" not in str(error):
            raise
        return True


def check_std_array(std: mx.array) -> None:
    if not holds(std >= 0):
        raise RuntimeError("normal expects all elements of std >= 0.0")


def raise_probability_out_of_range() -> None:
    """torch's check in ``bernoulli_distribution``, raised at the first bad probability."""
    raise RuntimeError(
        "Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error "
        "message be improved?  If so, please report an enhancement request to PyTorch.)"
    )


def check_bernoulli_p(p: float) -> None:
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")


def check_randperm(n: int, dtype: mx.Dtype) -> None:
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    if dtype == mx.bool_:
        raise_no_kernel("randperm", dtype)
    # torch's limits and texts; bfloat16 has none (its values round past 256).
    limit = {mx.float16: (2049, "2049"), mx.float32: (2**24 + 1, "2^24+1")}
    limit[mx.float64] = (2**53 + 1, "2^53+1")
    if dtype in limit and n > limit[dtype][0]:
        name = torch_dtype_name(dtype)
        raise RuntimeError(f"n cannot be greater than {limit[dtype][1]} for {name} type.")
    if dtype in (mx.uint8, mx.int8, mx.int16, mx.int32, mx.int64) and n - 1 > mx.iinfo(dtype).max:
        cname = {mx.uint8: "uint8_t", mx.int8: "int8_t", mx.int16: "int16_t", mx.int32: "int32_t"}
        raise RuntimeError(f"value cannot be converted to type {cname[dtype]} without overflow")


# torch's factory keywords flashdrop honours only at their defaults, each with why another value
# cannot be honoured on MLX.
_TORCH_OPTIONS = {
    "generator": "flashdrop draws from its own stream (seed it with flashdrop.manual_seed)",
    "out": "MLX arrays cannot be written in place; use the returned array",
    "device": "MLX arrays carry no device (MLX runs on mx.default_device())",
    "requires_grad": "MLX differentiates functions (mx.grad), not arrays",
    "pin_memory": "MLX's memory is unified: there is nothing to pin",
    "layout": "MLX arrays are strided only",
    "memory_format": "MLX arrays are row-major only",
}


def _is_torch_default(name: str, value: Any) -> bool:
    if name in ("requires_grad", "pin_memory"):
        return value is False
    if name == "layout":
        return value is None or str(value) == "torch.strided"
    if name == "memory_format":
        return value is None or str(value) in ("torch.preserve_format", "torch.contiguous_format")
    return value is None


def check_torch_options(fn: str, options: dict[str, Any], accepted: Iterable[str]) -> None:
    """Keywords of torch's ``fn`` that flashdrop takes only at torch's defaults.

    A keyword ``fn`` does not take raises Python's ``TypeError``; one it takes, at a value
    flashdrop cannot honour, a ``ValueError`` saying why (never silently ignored).
    """
    accepted = tuple(accepted)
    for name, value in options.items():
        if name not in accepted:
            raise TypeError(f"{fn}() got an unexpected keyword argument '{name}'")
        if not _is_torch_default(name, value):
            raise ValueError(
                f"{fn}(): {name}={value!r} is not supported: {_TORCH_OPTIONS[name]}; "
                f"leave {name} at torch's default"
            )


def check_dtype_given(fn: str, dtype: Any) -> None:
    """A ``dtype`` argument must be MLX's (``mx.float32``, ...), not torch's or numpy's."""
    if dtype is not None and not isinstance(dtype, mx.Dtype):
        raise TypeError(
            f"{fn}(): argument 'dtype' must be an mlx.core.Dtype such as mx.float32, "
            f"not {type(dtype).__name__} ({dtype!r})"
        )


def check_int_argument(fn: str, name: str, position: int, value: Any) -> int:
    """An int argument as torch's parser takes it: Python or numpy ints, not bool or float."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{fn}(): argument '{name}' (position {position}) must be int, "
            f"not {type(value).__name__}"
        )
    return int(value)
