"""Check an MLX port's dropout against the torch original, in your own tests.

- :func:`assert_same_as_torch`: the port gives torch's outputs bit for bit (or within
  tolerances), call after call, from the same seed in flashdrop's ``"torch"`` random mode. On
  failure it says which call, where, both values, and whether the dropout masks themselves differ.
- :func:`assert_statistically_equivalent`: in the default ``"mlx"`` mode, where masks differ by
  design, the port's drop rate, mask structure and output moments match torch's over many calls,
  with a stated false-failure rate.
- :func:`seeded`: seed torch and flashdrop together, and restore both afterwards.

The pytest plugin (:mod:`flashdrop.pytest_plugin`, active when flashdrop is installed) wraps
:func:`seeded` in the fixtures ``flashdrop_seed`` and ``torch_mode``.

torch is needed to run these helpers, not to import this module: it is loaded through
:func:`flashdrop.compat.import_torch` on the first call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn
from mlx.utils import tree_flatten

import flashdrop
from flashdrop import compat
from flashdrop.compat.porting import _twin_for
from flashdrop.parity.reference import _same

__all__ = ["assert_same_as_torch", "assert_statistically_equivalent", "seeded"]

Tensor = Any  # a torch.Tensor; torch is imported only when a helper runs

# How many differing positions a failure message lists.
_SHOWN = 5
# torch's dropout ops that drop to alpha dropout's value rather than to 0.
_ALPHA_OPS = ("AlphaDropout", "FeatureAlphaDropout", "alpha_dropout", "feature_alpha_dropout")


@contextmanager
def seeded(seed: int, mode: str | None = None) -> Iterator[None]:
    """Context manager: seed torch and flashdrop alike; restore both, and the mode, on exit.

    Inside the block torch's CPU generator is in the state ``torch.manual_seed(seed)`` leaves,
    and flashdrop's streams in the state ``flashdrop.manual_seed(seed)`` leaves; on exit both
    random states and flashdrop's random mode are what they were before.

    Args:
        seed: the seed of both, as for ``torch.manual_seed``.
        mode: flashdrop's random mode inside the block, ``"torch"`` or ``"mlx"``; ``None`` (the
            default) keeps the current one.

    Example::

        >>> with flashdrop.testing.seeded(0, mode="torch"):
        ...     assert (compat.to_torch(port(compat.to_mlx(x))) == torch_model(x)).all()
    """
    torch = compat.import_torch()
    with (
        torch.random.fork_rng(devices=[]),
        flashdrop.fork_rng(),
        flashdrop.rng_mode(mode or flashdrop.get_rng_mode()),
    ):
        torch.manual_seed(seed)
        flashdrop.manual_seed(seed)
        yield


def assert_same_as_torch(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    *inputs: Any,
    seed: int = 0,
    calls: int = 3,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> None:
    """Assert that a port gives the torch original's outputs, call after call, from one seed.

    Seeds torch and flashdrop with ``seed`` (see :func:`seeded`), then calls ``torch_obj`` and
    ``flashdrop_obj`` ``calls`` times each, in flashdrop's ``"torch"`` random mode, and compares
    each call's outputs: bit for bit by default (NaN equals NaN), else with
    ``|port - torch| <= atol + rtol * |torch|``. Every call gets fresh copies of ``inputs``, so
    in-place layers do not feed one call's output into the next. Modules run in whatever
    training or evaluation state they are in. The random states and mode are restored afterwards.

    Args:
        torch_obj: a torch callable on CPU tensors: a dropout function or module, or a model.
        flashdrop_obj: its port, called on ``mlx.core.array`` inputs.
        inputs: the positional arguments of both. ``torch.Tensor`` and ``mx.array`` values are
            given to torch as tensors and to the port as arrays (converted with
            :mod:`flashdrop.compat`, bit for bit); anything else is passed to both as it is.
        seed: the seed of both sides. Default: 0
        calls: how many consecutive calls to compare (each draws new masks). Default: 3
        rtol, atol: tolerances, for ports whose other layers round differently from torch's
            (MLX's matrix products, for one). Default: 0, bit for bit.

    Outputs may be a tensor (an array for the port) or tuples, lists and dicts of them; dtypes
    and shapes must be equal.

    Raises:
        AssertionError: an output differs. The message names the call and the output, the first
            differing positions with both values, and what the outputs' exact zeros (alpha
            dropout's dropped value, for alpha dropout) say about the masks: "your port drops
            different elements" or "same mask, different math". When both objects are modules
            it also compares their dropout layers (:func:`flashdrop.compat.dropout_layers`).
        ValueError: ``calls`` is not a positive int, or a tolerance is negative.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.2))
        >>> port = mlx.nn.Sequential(mlx.nn.Linear(8, 8), flashdrop.nn.Dropout(0.2))
        >>> port.load_weights([(f"layers.{k}", compat.to_mlx(v))
        ...                    for k, v in model.state_dict().items()])
        >>> assert_same_as_torch(model, port, torch.randn(4, 8), atol=1e-6)
    """
    if not isinstance(calls, int) or calls < 1:
        raise ValueError(f"assert_same_as_torch: calls must be a positive int, but got {calls!r}")
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(
            f"assert_same_as_torch: rtol and atol must be >= 0, but got rtol={rtol}, atol={atol}"
        )
    torch = compat.import_torch()
    originals = _as_tensors(inputs)
    how = "bit for bit" if rtol == atol == 0 else f"within rtol={rtol}, atol={atol}"
    with seeded(seed, mode="torch"):
        for call in range(1, calls + 1):
            header = f"the port differs from torch at call {call} of {calls} (seed {seed})"
            torch_args, port_args = _call_args(originals)
            with torch.no_grad():
                theirs = torch_obj(*torch_args)
            for where, t, o in _paired(theirs, flashdrop_obj(*port_args), header):
                differ = _differing(t, o, rtol, atol)
                if differ.any():
                    lines = [
                        f"{header}: {int(differ.sum())} of {differ.numel()} elements of {where} "
                        f"differ (compared {how}); first at",
                        *(
                            f"  {pos}: torch {_value(t, pos)}, port {_value(o, pos)}"
                            for pos in _positions(differ)
                        ),
                        _mask_verdict(t, o, _is_alpha(torch_obj)),
                        *_layers_verdict(torch_obj, flashdrop_obj),
                    ]
                    raise AssertionError("\n".join(lines))


def assert_statistically_equivalent(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    *inputs: Any,
    trials: int = 1000,
    false_failure_rate: float = 1e-6,
    seed: int = 0,
) -> None:
    """Assert that a port drops like the torch original in flashdrop's default ``"mlx"`` mode.

    In ``"mlx"`` mode the port draws its masks from MLX's generator, so its outputs differ from
    torch's call by call; over many calls their distributions must not. Both sides are seeded
    with ``seed`` (see :func:`seeded`) and called ``trials`` times on fresh copies of
    ``inputs``. Each call's output (each output, for several) gives these statistics:

    - the drop rate: the fraction of exact zeros (for alpha dropout, of the most common value);
    - for each dimension of size 2 or more, the fraction of neighbouring elements along it that
      are dropped alike (the mask's structure: whole channels, rows, blocks);
    - the mean and the variance of the finite output values.

    Each statistic's mean over the calls is compared between the two sides with a two-sample
    z-test (Welch's: the difference of the means over the standard error estimated from both
    samples; two-sided p-value ``erfc(|z| / sqrt 2)``; a statistic constant on both sides
    passes when it is equal). The calls are independent, so by the central limit theorem each
    p-value is uniform under equivalence. The check fails when a p-value is below
    ``false_failure_rate / (number of statistics)``: by Bonferroni's bound, a port equivalent
    to torch fails with probability at most ``false_failure_rate`` (up to the normal
    approximation, which needs many calls: keep ``trials`` in the hundreds at least).

    Args:
        torch_obj: a torch callable on CPU tensors: a dropout function or module, or a model.
        flashdrop_obj: its port, called on ``mlx.core.array`` inputs.
        inputs: as for :func:`assert_same_as_torch`.
        trials: calls per side. Default: 1000
        false_failure_rate: the probability that the check fails a port whose outputs have
            torch's distribution. Default: 1e-6
        seed: the seed of both sides; the ``flashdrop_seed`` fixture of the pytest plugin gives
            the one chosen with ``--flashdrop-seed`` or the ``flashdrop_seed`` marker.
            Default: 0

    Raises:
        AssertionError: a statistic differs; the message lists every statistic with both
            sides' means, their standard errors and the p-value, and marks those that failed.
            Outputs of different structure, dtype or shape fail at once.
        ValueError: ``trials`` is below 2, or ``false_failure_rate`` is not in (0, 1).

    Example::

        >>> assert_statistically_equivalent(torch.nn.Dropout(0.3), flashdrop.nn.Dropout(0.3),
        ...                                 torch.randn(64, 32))
    """
    if not isinstance(trials, int) or trials < 2:
        raise ValueError(
            f"assert_statistically_equivalent: trials must be an int >= 2, but got {trials!r}"
        )
    if not 0 < false_failure_rate < 1:
        raise ValueError(
            "assert_statistically_equivalent: false_failure_rate must be in (0, 1), "
            f"but got {false_failure_rate!r}"
        )
    torch = compat.import_torch()
    originals = _as_tensors(inputs)
    alpha = _is_alpha(torch_obj)
    # samples[(output, statistic)] = (torch's values, the port's values), one per call.
    samples: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    with seeded(seed, mode="mlx"):
        for call in range(1, trials + 1):
            header = f"the port differs from torch at call {call} (seed {seed})"
            torch_args, port_args = _call_args(originals)
            with torch.no_grad():
                theirs = torch_obj(*torch_args)
            for where, t, o in _paired(theirs, flashdrop_obj(*port_args), header):
                ours_stats = _statistics(o, alpha)
                for name, value in _statistics(t, alpha).items():
                    torch_values, port_values = samples.setdefault((where, name), ([], []))
                    torch_values.append(value)
                    port_values.append(ours_stats[name])

    threshold = false_failure_rate / max(len(samples), 1)
    rows, failed = [], 0
    for (where, name), (torch_values, port_values) in samples.items():
        (m1, se1), (m2, se2) = _mean_and_error(torch_values), _mean_and_error(port_values)
        p_value = _z_test_p_value(m1, se1, m2, se2)
        failed += p_value < threshold
        mark = "  <- differs" if p_value < threshold else ""
        rows.append(
            f"  {where} {name}: torch {m1:.6g} ± {se1:.2g}, port {m2:.6g} ± {se2:.2g}, "
            f"p = {p_value:.3g}{mark}"
        )
    if failed:
        header = (
            f"the port is not statistically equivalent to torch: {failed} of {len(samples)} "
            f"statistics differ ({trials} calls per side, seed {seed}, flashdrop in mlx mode). "
            f"Each is a two-sample z-test failing below p = {threshold:.3g}, so that together "
            f"they fail a port equivalent to torch with probability at most {false_failure_rate:g} "
            "(Bonferroni, normal approximation). Mean ± standard error over the calls:"
        )
        raise AssertionError("\n".join([header, *rows]))


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


def _as_tensors(inputs: tuple[Any, ...]) -> list[Any]:
    """The inputs with every ``mx.array`` converted to a torch tensor (the originals)."""
    return [compat.to_torch(v) if isinstance(v, mx.array) else v for v in inputs]


def _call_args(originals: list[Any]) -> tuple[list[Any], list[Any]]:
    """Fresh arguments for one call: (torch's, the port's), tensors copied for each call."""
    torch = compat.import_torch()
    theirs, ours = [], []
    for value in originals:
        if isinstance(value, torch.Tensor):
            theirs.append(value.detach().clone())
            ours.append(compat.to_mlx(value))
        else:
            theirs.append(value)
            ours.append(value)
    return theirs, ours


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _paired(theirs: Any, ours: Any, header: str, where: str = "output") -> list[tuple]:
    """``(where, torch's tensor, the port's as a tensor)`` for each output, matched by position.

    Raises an AssertionError, prefixed with ``header``, when the two outputs do not have the same
    structure, or a pair differs in dtype or shape.
    """
    torch = compat.import_torch()
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, mx.array):
            raise AssertionError(
                f"{header}: {where} is a torch.Tensor from torch, but a {_kind(ours)} from the "
                "port, where an mlx.core.array was expected"
            )
        t, o = theirs.detach().cpu(), compat.to_torch(ours)
        if t.dtype != o.dtype or t.shape != o.shape:
            raise AssertionError(
                f"{header}: {where} is {str(t.dtype)[6:]} of shape {tuple(t.shape)} from torch, "
                f"but {str(o.dtype)[6:]} of shape {tuple(o.shape)} from the port"
            )
        return [(where, t, o)]
    keys = _keys(theirs)
    if keys is not None:
        if _keys(ours) != keys or isinstance(ours, dict) != isinstance(theirs, dict):
            raise AssertionError(
                f"{header}: {where} is a {_kind(theirs)} of {len(theirs)} from torch, but "
                f"a {_kind(ours)} from the port"
            )
        pairs = []
        for key in keys:
            pairs += _paired(theirs[key], ours[key], header, f"{where}[{key!r}]")
        return pairs
    if theirs != ours:
        raise AssertionError(f"{header}: {where} is {theirs!r} from torch, {ours!r} from the port")
    return []


def _keys(value: Any) -> list[Any] | None:
    """The keys of a dict, the indices of a tuple or list; None for anything else."""
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, (tuple, list)):
        return list(range(len(value)))
    return None


def _differing(t: Tensor, o: Tensor, rtol: float, atol: float) -> Tensor:
    """Where the port's output ``o`` differs from torch's ``t``: in its bits (NaN equals NaN)
    when both tolerances are 0, else by more than ``atol + rtol * |t|``."""
    if rtol == atol == 0:
        return ~_same(o, t)
    torch = compat.import_torch()
    wide = torch.complex128 if t.is_complex() else torch.float64
    return ~torch.isclose(o.to(wide), t.to(wide), rtol, atol, equal_nan=True)


def _positions(mask: Tensor) -> list[tuple[int, ...]]:
    """The first positions (row-major) where ``mask`` is True."""
    return [tuple(index) for index in mask.nonzero()[:_SHOWN].tolist()]


def _value(t: Tensor, position: tuple[int, ...]) -> str:
    """One element, written so that two different values of its dtype read differently."""
    value = t[position].item()
    if t.is_floating_point():
        return repr(value) if t.element_size() == 8 else str(float(f"{value:.9g}"))
    return repr(value)


# ---------------------------------------------------------------------------------------------
# Masks and layers


def _is_alpha(torch_obj: Any) -> bool:
    """Whether ``torch_obj`` is one of torch's alpha dropout functions or modules."""
    target = getattr(torch_obj, "func", torch_obj)  # functools.partial
    name = getattr(target, "__name__", None) or type(target).__name__
    return name in _ALPHA_OPS


def _dropped(t: Tensor, alpha: bool) -> Tensor:
    """Where an output shows a dropped element: exact zeros, or alpha dropout's dropped value
    (the most common value, if it occurs twice or more)."""
    if not alpha or t.numel() == 0 or t.is_complex():
        return t == 0
    values, counts = t.double().flatten().unique(return_counts=True)
    if counts.max() < 2:
        return t.new_zeros(t.shape, dtype=bool)
    return t.double() == values[counts.argmax()]


def _mask_verdict(t: Tensor, o: Tensor, alpha: bool) -> str:
    """What the outputs say about the two masks."""
    how = "most common value (alpha dropout's dropped value)" if alpha else "exact zeros"
    theirs, ours = _dropped(t, alpha), _dropped(o, alpha)
    if not (theirs.any() or ours.any()):
        return (
            f"masks: neither output has {how}, so the masks cannot be read from it (is dropout "
            "followed by other layers?); check the dropout layers one by one"
        )
    disagree = theirs != ours
    counts = f"torch dropped {int(theirs.sum())} of {t.numel()}, the port {int(ours.sum())}"
    if disagree.any():
        return (
            f"masks, read from each output's {how}: {counts}, differing at "
            f"{int(disagree.sum())} positions, first {_positions(disagree)}: "
            "your port drops different elements"
        )
    return (
        f"masks, read from each output's {how}: {counts}, at the same positions: "
        "same mask, different math"
    )


def _is_module(value: Any) -> bool:
    return isinstance(value, mlx.nn.Module)


def _flashdrop_layers(model: mlx.nn.Module) -> list[tuple[str, mlx.nn.Module]]:
    """The dropout-like modules of an MLX model, in registration order, with their names."""
    found = []

    def visit(name: str, module: mlx.nn.Module) -> None:
        if _twin_for(type(module)) is not None or _is_mlx_dropout(module):
            found.append((name, module))
        for child_name, child in tree_flatten(module.children(), is_leaf=_is_module):
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return found


def _is_mlx_dropout(module: Any) -> bool:
    """MLX's own dropout layers, which draw from MLX's stream even in flashdrop's torch mode."""
    cls = type(module)
    return cls.__module__.startswith("mlx.nn") and cls.__name__.startswith("Dropout")


def _settings(module: Any) -> str:
    """``Class(settings)``, with the settings port_dropout copies, and ``(eval)`` if so."""
    twin = _twin_for(type(module))
    if twin is None:  # an MLX dropout layer
        return f"mlx.nn.{type(module).__name__}"
    settings = ", ".join(f"{s}={getattr(module, s)!r}" for s in twin.settings)
    return f"{twin.name}({settings}){'' if module.training else ' (eval)'}"


def _layers_verdict(torch_obj: Any, flashdrop_obj: Any) -> list[str]:
    """When both are modules: how their dropout layers compare (registration order)."""
    torch = compat.import_torch()
    if not (isinstance(torch_obj, torch.nn.Module) and _is_module(flashdrop_obj)):
        return []
    sides = compat.dropout_layers(torch_obj), _flashdrop_layers(flashdrop_obj)
    theirs, ours = ([_settings(m) for _, m in side] for side in sides)
    listed = [
        ", ".join(f"{_settings(m)} at {n!r}" if n else _settings(m) for n, m in side)
        for side in sides
    ]
    if theirs == ours:
        line = f"dropout layers: the same on both sides, in the same order: {listed[1]}"
        if any(getattr(m, "channel_dim", None) == 1 for _, m in sides[1]):
            line += "; if the port is channels last, its channel layers need channel_dim=-1"
        return [line]
    if sorted(theirs) == sorted(ours):
        verdict = "the port has torch's dropout layers in another order"
    elif len(theirs) != len(ours):
        verdict = f"torch has {len(theirs)} dropout layers, the port {len(ours)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b)
        verdict = f"they differ first at #{i + 1}: torch {theirs[i]}, port {ours[i]}"
    lines = [
        f"dropout layers (registration order): {verdict}",
        f"  torch: {listed[0] or 'none'}",
        f"  port:  {listed[1] or 'none'}",
    ]
    if any(_is_mlx_dropout(m) for _, m in sides[1]):
        lines.append(
            "  mlx.nn's dropout layers draw from MLX's stream, never torch's: use flashdrop.nn's "
            "(flashdrop.compat.port_dropout)"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# Statistics


def _statistics(t: Tensor, alpha: bool) -> dict[str, float]:
    """One call's statistics of one output (the same keys for equal shapes)."""
    torch = compat.import_torch()
    dropped = _dropped(t, alpha)
    stats = {"drop rate": float(dropped.double().mean()) if t.numel() else 0.0}
    for dim, size in enumerate(t.shape):
        if size > 1:
            alike = dropped.narrow(dim, 0, size - 1) == dropped.narrow(dim, 1, size - 1)
            stats[f"neighbours along dim {dim} dropped alike"] = float(alike.double().mean())
    x = torch.view_as_real(t) if t.is_complex() else t.double()
    finite = x[x.isfinite()].double()
    stats["mean"] = float(finite.mean()) if finite.numel() else 0.0
    stats["variance"] = float(finite.var(unbiased=False)) if finite.numel() else 0.0
    return stats


def _mean_and_error(values: list[float]) -> tuple[float, float]:
    """The sample mean and its estimated standard error."""
    n = len(values)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def _z_test_p_value(m1: float, se1: float, m2: float, se2: float) -> float:
    """Two-sided p-value that two independent means are equal (normal approximation)."""
    error = math.hypot(se1, se2)
    if error == 0:
        return 1.0 if m1 == m2 else 0.0
    return math.erfc(abs(m1 - m2) / error / math.sqrt(2))
