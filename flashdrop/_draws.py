"""torch's module-level random draws on MLX: ``rand``, ``randn``, ``randint``, ``randperm``,
``bernoulli``, ``normal`` and their ``*_like`` forms.

Each draws from the current random mode's stream (see :mod:`flashdrop._random`): in ``"torch"``
mode the very values torch 2.13's CPU kernels return after the same ``manual_seed``, leaving the
generator where torch leaves it (:mod:`flashdrop._random.torch_cpu.kernels` holds the recipes); in
``"mlx"`` mode ``mx.random``'s draws of the same shapes, dtypes and ranges.
"""

from typing import Any

import mlx.core as mx
import numpy as np

from flashdrop import _checks, _dtypes, _random
from flashdrop._random import legacy_torch_kernels as legacy
from flashdrop._random import torch_kernels as kernels

# torch's keywords each function takes, honoured at their defaults only
_FACTORY = ("generator", "out", "layout", "device", "requires_grad", "pin_memory")
_LIKE = ("generator", "layout", "device", "requires_grad", "pin_memory", "memory_format")


def _torch_mode(what: str, like: mx.array | None) -> bool:
    """Whether to draw from torch's stream; a torch-mode draw refuses a trace: that of
    :func:`flashdrop.compile` always, that of a plain ``mx.compile`` or ``mx.vmap`` when the
    draw is given an array (``like``: the ``*_like`` input, ``bernoulli``'s and ``normal``'s
    arrays). A draw of a size alone is not caught there (docs/differences.md)."""
    if _random.get_rng_mode() != "torch":
        return False
    _random.check_not_tracing(what, like)
    return True


def _from_compute(values: np.ndarray, dtype: mx.Dtype, shape: tuple[int, ...]) -> mx.array:
    """Round torch's compute-dtype values to ``dtype`` as c10 does (a double through float)."""
    if dtype == mx.float64:
        return mx.array(values.reshape(shape), dtype=mx.float64)  # mx.array would take float32
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as c10's cast
        out = mx.array(values.reshape(shape).astype(np.float32, copy=False))
    return out if dtype == mx.float32 else out.astype(dtype)


def _recorded(out: mx.array) -> mx.array:
    """Report a draw that is not a mask to :func:`flashdrop.testing.record_draws`, if it records."""
    _random.report_draw(out.shape, None, None)
    return out


def _float_dtype(kernel: str, dtype: mx.Dtype | None) -> mx.Dtype:
    """``dtype`` (``None``: torch's default float dtype) if a float kernel takes it, else
    torch's ``NotImplementedError`` naming ``kernel``."""
    dtype = _dtypes.DEFAULT_FLOAT if dtype is None else dtype
    if dtype not in _dtypes.FLOATING:
        _checks.raise_no_kernel(kernel, dtype)
    return dtype


def rand(*size: Any, dtype: mx.Dtype | None = None, **options: Any) -> mx.array:
    """Uniform random numbers in [0, 1), as ``torch.rand``.

    Args:
        *size: the shape, as ints or one tuple or list (``rand(2, 3)``, ``rand((2, 3))``,
            ``rand([])`` for a 0-d array).
        dtype: a floating dtype; default ``mx.float32`` (torch's default dtype).
        **options: torch's ``size=`` (instead of ``*size``), and ``generator``, ``out``,
            ``layout``, ``device``, ``requires_grad``, ``pin_memory`` at torch's defaults only
            (``None``, ``torch.strided`` or ``False``); another value raises ``ValueError``.

    Shape:
        Output: ``size``.

    Example::

        >>> flashdrop.manual_seed(0)
        >>> with flashdrop.rng_mode("torch"):
        ...     x = flashdrop.rand(3)   # torch.manual_seed(0); torch.rand(3)
    """
    shape = _factory_size("rand", size, options)
    _checks.check_dtype_given("rand", dtype)
    dtype = _float_dtype("check_uniform_bounds", dtype)
    return _uniform(shape, dtype)


def _factory_size(fn: str, size: tuple[Any, ...], options: dict[str, Any]) -> tuple[int, ...]:
    """``*size`` or torch's ``size=`` keyword (not both), after checking torch's other keywords."""
    if "size" in options:
        if size:
            _checks.raise_size_given_twice(fn)
        size = (options.pop("size"),)
        _checks.check_size_is_sequence(fn, size[0], position=1)
    _checks.check_torch_options(fn, options, _FACTORY)
    return _checks.check_size(fn, size)


def _uniform(shape: tuple[int, ...], dtype: mx.Dtype, like: mx.array | None = None) -> mx.array:
    _checks.check_storage_size(shape, dtype)
    if not _torch_mode("rand", like):
        out = mx.random.uniform(shape=shape, key=_random.next_mlx_key()).astype(dtype)
    else:
        count = int(np.prod(shape, dtype=np.int64))
        with _random.torch_stream() as stream:
            if dtype == mx.float64:
                values = kernels.uniform_double(stream, count)
            elif dtype != mx.float32 and _random.get_torch_target().before("half_uniform"):
                half = "float16" if dtype == mx.float16 else "bfloat16"  # the dtype's own digits
                values = legacy.uniform_half(stream, count, half)
            else:
                values = kernels.uniform_float(stream, count)
        out = _from_compute(values, dtype, shape)
    if dtype in (mx.float16, mx.bfloat16):  # rounding up to 1.0 gives 0.0, as in torch: [0, 1)
        out = mx.where(out == 1, mx.array(0, dtype), out)
    return _recorded(out)


def rand_like(input: mx.array, *, dtype: mx.Dtype | None = None, **options: Any) -> mx.array:
    """``rand`` with ``input``'s shape and (by default) dtype, as ``torch.rand_like``.

    torch's other keywords (``generator``, ``layout``, ``device``, ``requires_grad``,
    ``pin_memory``, ``memory_format``) are taken at torch's defaults only.
    """
    _check_like("rand_like", input, dtype, options)
    dtype = _float_dtype("check_uniform_bounds", input.dtype if dtype is None else dtype)
    return _uniform(tuple(input.shape), dtype, input)


def randn(*size: Any, dtype: mx.Dtype | None = None, **options: Any) -> mx.array:
    """Standard normal random numbers, as ``torch.randn``.

    Args:
        *size: the shape, as ints or one tuple or list.
        dtype: a floating dtype; default ``mx.float32``.
        **options: as for :func:`rand`.

    Shape:
        Output: ``size``.

    Example::

        >>> with flashdrop.rng_mode("torch"):
        ...     flashdrop.manual_seed(0)
        ...     noise = flashdrop.randn(4, 16)   # torch.manual_seed(0); torch.randn(4, 16)
    """
    shape = _factory_size("randn", size, options)
    _checks.check_dtype_given("randn", dtype)
    dtype = _float_dtype("normal_kernel_cpu", dtype)
    return _normal(shape, dtype, 0.0, 1.0)


def _normal(
    shape: tuple[int, ...], dtype: mx.Dtype, mean: float, std: float, like: mx.array | None = None
) -> mx.array:
    _checks.check_storage_size(shape, dtype)
    if not _torch_mode("randn", like):
        out = mx.random.normal(shape=shape, key=_random.next_mlx_key())
        out = out * std + mean if (mean, std) != (0.0, 1.0) else out
        return _recorded(out.astype(dtype))
    count = int(np.prod(shape, dtype=np.int64))
    kind = {mx.float32: "float32", mx.float64: "float64"}.get(dtype, "half")
    # Older releases compute float16/bfloat16 normals of 16+ elements otherwise: in the dtype
    # (2.1-2.11), in float32 with the C library's functions (2.12); arm64 builds compute the
    # others with the C library's float math (refused)
    target = _random.get_torch_target()
    half = count >= 16 and kind == "half"
    in_dtype = half and target.before("half_normal")
    in_libm = half and not in_dtype and target.before("half_normal_avx2")
    if count >= 16 and kind != "float64" and target.cpu == "arm" and not in_dtype:
        _checks.raise_arm_normal(target, dtype)
    with _random.torch_stream() as stream:
        if in_dtype:
            name = "float16" if dtype == mx.float16 else "bfloat16"
            values = legacy.normal_fill(stream, count, name, mean, std)
        elif in_libm:
            values = legacy.normal_fill_float(stream, count, mean, std)
        else:
            values = kernels.normal(stream, count, kind, mean, std)
    return _recorded(_from_compute(values, dtype, shape))


def randn_like(input: mx.array, *, dtype: mx.Dtype | None = None, **options: Any) -> mx.array:
    """``randn`` with ``input``'s shape and (by default) dtype, as ``torch.randn_like``; other
    keywords as for :func:`rand_like`."""
    _check_like("randn_like", input, dtype, options)
    dtype = _float_dtype("normal_kernel_cpu", input.dtype if dtype is None else dtype)
    return _normal(tuple(input.shape), dtype, 0.0, 1.0, input)


def randint(
    *args: Any,
    low: int | None = None,
    high: int | None = None,
    size: Any = None,
    dtype: mx.Dtype | None = None,
    **options: Any,
) -> mx.array:
    """Random integers in ``[low, high)``, as ``torch.randint``.

    Called as ``randint(high, size)`` or ``randint(low, high, size)``; each argument may also be
    given by name, as in torch.

    Args:
        low: the lowest value (default 0).
        high: one above the highest value.
        size: the shape, a tuple or list of ints.
        dtype: default ``mx.int64``; float dtypes hold the integers as floats.
        **options: ``generator``, ``out``, ``layout``, ``device``, ``requires_grad``,
            ``pin_memory`` at torch's defaults only, as for :func:`rand`.

    Shape:
        Output: ``size``.

    Example::

        >>> with flashdrop.rng_mode("torch"):
        ...     flashdrop.manual_seed(0)
        ...     ix = flashdrop.randint(1000, (8,))   # torch.randint(1000, (8,))
    """
    named = {"low": low, "high": high, "size": size}
    given = {name: value for name, value in named.items() if value is not None}
    order = ["low", "high", "size"] if len(args) + len(given) == 3 else ["high", "size"]
    bound = dict(zip(order, args, strict=False))
    if len(args) + len(given) not in (2, 3) or set(bound) & set(given) or set(given) - set(order):
        _checks.raise_randint_arguments(len(args), sorted(given))
    bound.update(given)
    low, high, size = bound.get("low", 0), bound["high"], bound["size"]
    _checks.check_torch_options("randint", options, _FACTORY)
    high = _checks.check_int_argument("randint", "high", 1 + ("low" in bound), high)
    low = _checks.check_int_argument("randint", "low", 1, low)
    _checks.check_size_is_sequence("randint", size, position=2 + ("low" in bound))
    shape = _checks.check_size("randint", (size,))
    _checks.check_dtype_given("randint", dtype)
    return _randint(low, high, shape, mx.int64 if dtype is None else dtype)


def _randint(
    low: int, high: int, shape: tuple[int, ...], dtype: mx.Dtype, like: mx.array | None = None
) -> mx.array:
    _checks.check_int64(low, high)
    _checks.check_from_to(low, high)
    if dtype in _dtypes.FLOATING:
        if dtype == mx.float16:
            _checks.check_half_bounds(low, high)
        low, high = _update_from(low, dtype), _update_to(high, dtype)
        _checks.check_from_to_in_dtype(low, high)
        _checks.warn_float_bounds(low, high, dtype, _dtypes.DIGITS[dtype])
    elif dtype in _dtypes.INTS:
        _checks.check_int_bounds(low, high, dtype)
    else:
        _checks.raise_unsupported_dtype("randint", dtype)
    _checks.check_storage_size(shape, dtype)
    if not _torch_mode("randint", like):
        return _recorded(_mlx_randint(low, high, shape).astype(dtype))
    count = int(np.prod(shape, dtype=np.int64))
    old = _random.get_torch_target().before("randint_span")  # torch 2.1-2.6: one word to 2**32
    with _random.torch_stream() as stream:
        values, offset = (legacy if old else kernels).randint(stream, count, low, high)
    if dtype in _dtypes.FLOATING:  # exact: below 2**53
        values = values.astype(np.int64) + offset
        return _recorded(_from_compute(values.astype(np.float64), dtype, shape))
    out = mx.array(values.reshape(shape)).astype(mx.int64)
    if offset:
        out = out + mx.array(offset, mx.int64)  # within int64: low <= value < high
    return _recorded(out != 0 if dtype == mx.bool_ else out.astype(dtype))


def _mlx_randint(low: int, high: int, shape: tuple[int, ...]) -> mx.array:
    """int64 draws in ``[low, high)`` from MLX's keys, as torch draws them from its words:
    64 random bits modulo the span, plus ``low``, in uint64 arithmetic wrapping through 2**64
    (exact for every span torch accepts; ``mx.random.randint`` computes in float32).

    The 64 bits are four ``mx.random.randint(0, 2**16)`` draws, each exact (MLX takes the floor
    of ``2**16 u``, ``u`` a float32 uniform with 23 random bits).
    """
    chunks = mx.random.randint(0, 1 << 16, (4, *shape), mx.uint64, key=_random.next_mlx_key())
    bits = chunks[0]
    for chunk in chunks[1:]:
        bits = (bits << mx.array(16, mx.uint64)) | chunk
    span, start = (mx.array(np.uint64(v % 2**64)) for v in (high - low, low))
    return mx.view(bits % span + start, mx.int64)


def _in_dtype(value: int, dtype: mx.Dtype) -> int:
    """``static_cast<int64_t>(static_cast<scalar_t>(value))`` for a float dtype.

    A value rounding to 2**63 is out of int64's range: x86-64's conversion gives -2**63.
    """
    if dtype == mx.float64:
        result = int(float(value))
    else:
        rounded = np.float32(np.int64(value))  # int64 -> float, then float -> the dtype
        result = int(mx.array(rounded).astype(dtype).astype(mx.float32).item())
    return result if result < 2**63 else -(2**63)


def _update_from(low: int, dtype: mx.Dtype) -> int:
    """ATen's ``update_from``: a ``low`` the dtype rounds down past moves up to one it holds."""
    rounded = _in_dtype(low + 1, dtype)
    if rounded < low:
        return rounded + (1 << (abs(low + 1).bit_length() - 1 - _dtypes.DIGITS[dtype] + 1))
    return low


def _update_to(high: int, dtype: mx.Dtype) -> int:
    """ATen's ``update_to``: a ``high`` the dtype rounds up past moves down to one it holds."""
    rounded = _in_dtype(high - 1, dtype)
    if rounded >= high:
        return rounded - (1 << (abs(high - 1).bit_length() - 1 - _dtypes.DIGITS[dtype] + 1))
    return high


def randint_like(
    input: mx.array,
    low: int = 0,
    high: int | None = None,
    *,
    dtype: mx.Dtype | None = None,
    **options: Any,
) -> mx.array:
    """``randint`` with ``input``'s shape and (by default) dtype, as ``torch.randint_like``.

    Called as ``randint_like(input, high)`` or ``randint_like(input, low, high)``; other
    keywords as for :func:`rand_like`.
    """
    _check_like("randint_like", input, dtype, options)
    if high is None:
        low, high = 0, low
    high = _checks.check_int_argument("randint_like", "high", 2, high)
    low = _checks.check_int_argument("randint_like", "low", 1, low)
    dtype = input.dtype if dtype is None else dtype
    return _randint(low, high, tuple(input.shape), dtype, input)


def _check_like(fn: str, input: mx.array, dtype: Any, options: dict[str, Any]) -> None:
    _checks.check_array(input, fn)
    _checks.check_torch_options(fn, options, _LIKE)
    _checks.check_dtype_given(fn, dtype)


def randperm(n: int, *, dtype: mx.Dtype = mx.int64, **options: Any) -> mx.array:
    """A random permutation of ``0 .. n - 1``, as ``torch.randperm``.

    Args:
        n: the length.
        dtype: default ``mx.int64``.
        **options: as for :func:`rand`.

    Example::

        >>> with flashdrop.rng_mode("torch"):
        ...     flashdrop.manual_seed(0)
        ...     order = flashdrop.randperm(10)   # torch.randperm(10)
    """
    n = _checks.check_int_argument("randperm", "n", 1, n)
    _checks.check_torch_options("randperm", options, _FACTORY)
    _checks.check_dtype_given("randperm", dtype)
    _checks.check_randperm(n, dtype)
    if not _torch_mode("randperm", None):
        return _recorded(mx.random.permutation(n, key=_random.next_mlx_key()).astype(dtype))
    with _random.torch_stream() as stream:
        values = kernels.randperm(stream, n)
    return _recorded(mx.array(values).astype(dtype))


def bernoulli(input: mx.array, p: float | None = None, **options: Any) -> mx.array:
    """0s and 1s drawn with the probabilities in ``input``, as ``torch.bernoulli``.

    Args:
        input: probabilities in [0, 1], a floating array.
        p: if given, one probability for every element instead (``input`` then gives only the
            shape and dtype).
        **options: torch's ``generator`` (and ``out`` without ``p``), ``None`` only.

    Shape:
        Output: as ``input``, in ``input``'s dtype.

    Example::

        >>> keep = flashdrop.bernoulli(mx.full((4,), 0.9))
    """
    _checks.check_array(input, "bernoulli")
    _checks.check_torch_options("bernoulli", options, ("generator",) + ("out",) * (p is None))
    if p is not None:
        p = float(p)  # torch's double p (a float16 p's value, exactly)
        _checks.check_bernoulli_p(p)
        keep = _random.bernoulli(input.shape, p, like=input)  # bernoulli_(p): dropout's draw
        return keep.astype(input.dtype)
    _float_dtype("bernoulli_tensor_cpu_p_", input.dtype)
    if not _torch_mode("bernoulli", input):
        _check_probabilities(input)
        return _recorded(mx.random.bernoulli(input, key=_random.next_mlx_key()).astype(input.dtype))
    probs = np.asarray(input.astype(mx.float64 if input.dtype == mx.float64 else mx.float32))
    flat = probs.reshape(-1)
    bad = np.flatnonzero(~((flat >= 0) & (flat <= 1)))
    with _random.torch_stream() as stream:
        if bad.size:  # torch draws the elements before the first bad one, then raises
            kernels.bernoulli_tensor(stream, flat[: bad[0]])
            _checks.raise_probability_out_of_range()
        keep = kernels.bernoulli_tensor(stream, flat)
    return _recorded(mx.array(keep.reshape(input.shape)).astype(input.dtype))


def _check_probabilities(probs: mx.array) -> None:
    if not _checks.holds((probs >= 0) & (probs <= 1)):
        _checks.raise_probability_out_of_range()


def normal(
    mean: float | mx.array,
    std: float | mx.array = 1.0,
    size: Any = None,
    *,
    dtype: mx.Dtype | None = None,
    **options: Any,
) -> mx.array:
    """Normal random numbers with the given mean and standard deviation, as ``torch.normal``.

    Three forms, as in torch: ``normal(mean: float, std: float, size)``; ``normal(mean: array,
    std=1.0)`` and ``normal(mean: float, std: array)`` (the array's shape and dtype);
    ``normal(mean: array, std: array)`` (their broadcast shape; both of one dtype).

    Args:
        mean: the mean, a float or a floating array.
        std: the standard deviation (>= 0), a float or a floating array.
        size: the shape, when both are floats.
        dtype: with two floats only; default ``mx.float32``.
        **options: ``generator`` and ``out``, and with two floats ``layout``, ``device``,
            ``requires_grad``, ``pin_memory``, at torch's defaults only.

    Example::

        >>> with flashdrop.rng_mode("torch"):
        ...     flashdrop.manual_seed(0)
        ...     w = flashdrop.normal(0.0, 0.02, (256, 256))   # torch.normal(0., 0.02, (256, 256))
    """
    mean_is_array, std_is_array = isinstance(mean, mx.array), isinstance(std, mx.array)
    floats = not (mean_is_array or std_is_array)
    _checks.check_torch_options("normal", options, _FACTORY if floats else ("generator", "out"))
    _checks.check_dtype_given("normal", dtype)
    if floats:
        if size is None:
            _checks.raise_normal_form("with a float mean and a float std, size is required")
        shape = _checks.check_size("normal", (size,))
        _checks.check_std(float(std))
        dtype = _float_dtype("normal_kernel_cpu", dtype)
        return _normal(shape, dtype, float(mean), float(std))
    if size is not None or dtype is not None:
        _checks.raise_normal_form("size and dtype are taken only with a float mean and std")
    like = mean if mean_is_array else std  # torch's output: like's dtype
    _float_dtype("normal_kernel_cpu", like.dtype)
    if std_is_array:
        _checks.check_std_array(std)
    else:
        _checks.check_std(float(std))
    if mean_is_array and not std_is_array:  # normal_(0, std), then + mean
        return _normal(tuple(mean.shape), mean.dtype, 0.0, float(std), mean) + mean
    shape = tuple(mx.broadcast_shapes(mean.shape, std.shape)) if mean_is_array else std.shape
    # normal_(0, 1), then mul_(std) and add_(mean) in place: each rounded to like's dtype.
    out = (_normal(tuple(shape), like.dtype, 0.0, 1.0, like) * std).astype(like.dtype)
    return (out + (mean if mean_is_array else mx.array(mean, like.dtype))).astype(like.dtype)
