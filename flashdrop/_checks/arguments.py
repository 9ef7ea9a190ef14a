"""torch's argument parsing: Python values as torch's parser takes them (floats, bools, ints,
arrays), with its ``TypeError`` texts."""

import ctypes
import operator
import sys
from typing import Any

import mlx.core as mx
import numpy as np

# The parser's text for an integer outside the C ``long long`` it unpacks to.
OVERFLOW = "Overflow when unpacking long long"


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


def to_int(value: Any) -> Any:
    """An integer of any kind (numpy's, a 0-d integer array or tensor) as a Python int, as
    torch's size arguments take it; a bool, or anything else, is returned unchanged."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value
