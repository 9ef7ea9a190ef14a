"""The checks and messages of the random draws (``flashdrop.rand``, ``randn``, ``randint``,
``randperm``, ``bernoulli``, ``normal``): torch's texts."""

import math
import warnings
from collections.abc import Iterable
from typing import Any

import mlx.core as mx
import numpy as np

from flashdrop import _dtypes
from flashdrop._checks.arguments import OVERFLOW


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
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_dtypes.TORCH_NAMES[dtype]}'")


def check_int64(*values: int) -> None:
    for value in values:
        if not -(2**63) <= value < 2**63:
            raise ValueError(OVERFLOW)


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
            raise RuntimeError(f"{name} is out of bounds for {_dtypes.TORCH_CPP_NAMES[dtype]}")


def warn_float_bounds(low: int, high: int, dtype: mx.Dtype, digits: int) -> None:
    """torch's warnings for ``randint`` bounds past the integers a float dtype holds exactly."""
    for name, value in (("from", low), ("to - 1", high - 1)):
        if not -(2**digits) <= value <= 2**digits:
            warnings.warn(
                f"{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to precision "
                f"limitations {_dtypes.TORCH_CPP_NAMES[dtype]} can support discrete uniform "
                "distribution only within this range. This warning will become an error in "
                "version 1.7 release, please fix the code in advance",
                UserWarning,
                stacklevel=4,
            )


def check_half_bounds(low: int, high: int) -> None:
    """torch's ``check_from_to_in_range`` for float16: ``low`` and ``high - 1`` within its finite
    values (every other float dtype holds every int64)."""
    for name, value in (("from", low), ("to - 1", high - 1)):
        if not -65504 <= value <= 65504:
            raise RuntimeError(f"{name} is out of bounds for c10::Half")


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


def check_storage_size(shape: tuple[int, ...], dtype: mx.Dtype) -> None:
    """torch's check, before it draws, that the array's bytes count fits in an int64."""
    if math.prod(shape) * dtype.size >= 2**63:
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(shape)}")


def check_bernoulli_p(p: float) -> None:
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")


def check_randperm(n: int, dtype: mx.Dtype) -> None:
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    if dtype in (mx.bool_, mx.uint16, mx.uint32, mx.uint64):
        raise_no_kernel("randperm", dtype)
    check_storage_size((n,), dtype)
    # torch's limits and texts; bfloat16 has none (its values round past 256).
    limit = {mx.float16: (2049, "2049"), mx.float32: (2**24 + 1, "2^24+1")}
    limit[mx.float64] = (2**53 + 1, "2^53+1")
    if dtype in limit and n > limit[dtype][0]:
        name = _dtypes.TORCH_NAMES[dtype]
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


def raise_arm_normal(target: object, dtype: mx.Dtype) -> None:
    """The error for the normal draws of arm64 builds that flashdrop does not reproduce."""
    name = str(dtype).rsplit(".", 1)[-1]
    raise NotImplementedError(
        f"torch mode does not reproduce {target}'s {name} randn/normal of 16 or more"
        " elements: arm64 builds compute them with the C library's logf, cosf and sinf, which"
        " are not correctly rounded. Draw float64 or fewer than 16 elements at a time, or set"
        " flashdrop.set_torch_target(cpu='amd') for the values of x86-64 builds"
    )


def raise_no_half_bernoulli() -> None:
    """torch 2.1's error for ``bernoulli_(p)`` on a float16 tensor (x86-64, MKL's kernel), raised
    after the kernel has taken its word of the generator."""
    raise RuntimeError("\"bernoulli_scalar_cpu_\" not implemented for 'Half'")
