"""Check an MLX port's dropout against the torch original, in your own tests.

- :func:`assert_same_as_torch`: the port makes torch's dropout draws (shape, p and mask of each,
  in order) and gives torch's outputs bit for bit (or within tolerances), call after call, from
  the same seed in flashdrop's ``"torch"`` random mode. On failure it names the first draw that
  differs, on both sides (op, shape, p, module, call site), or, when every draw agrees, the
  positions where the outputs differ.
- :func:`assert_statistically_equivalent`: in the default ``"mlx"`` mode, where masks differ by
  design, the port makes torch's draws (shape and p) and its masks and outputs have torch's
  statistics over many calls, with a stated false-failure rate.
- :func:`record_draws` and :func:`record_torch_draws`: the records both compare, one
  :class:`Draw` per draw; :func:`dropout_sites` lists a torch model's draws in call order.
- :func:`seeded`: seed torch and flashdrop together, and restore both afterwards.

The pytest plugin (:mod:`flashdrop.pytest_plugin`, active when flashdrop is installed) wraps
:func:`seeded` in the fixtures ``flashdrop_seed`` and ``torch_mode``, and shows both sides'
draws, side by side, under a test these helpers fail.

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
import numpy as np
from mlx.utils import tree_flatten

import flashdrop
from flashdrop import compat
from flashdrop._recording import CallSite, Draw, record_draws
from flashdrop.compat import record_torch_draws
from flashdrop.compat.porting import _twin_for
from flashdrop.parity.reference import _same

__all__ = [
    "CallSite",
    "Draw",
    "assert_same_as_torch",
    "assert_statistically_equivalent",
    "dropout_sites",
    "record_draws",
    "record_torch_draws",
    "seeded",
]

Tensor = Any  # a torch.Tensor; torch is imported only when a helper runs

# How many differing positions a failure message lists.
_SHOWN = 5
# torch's dropout ops that drop to alpha dropout's value rather than to 0.
_ALPHA_OPS = ("AlphaDropout", "FeatureAlphaDropout", "alpha_dropout", "feature_alpha_dropout")
# flashdrop's ops that drop whole channels, found at channel_dim.
_CHANNEL_OPS = ("dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout")
# What a port missing torch's draw of one of these ops must do: torch's dropouts that no
# dropout module makes.
_INNER_DROPOUTS = {
    "scaled_dot_product_attention": (
        "torch's scaled_dot_product_attention drops the attention weights (its dropout_p): "
        "pass the same dropout_p to flashdrop.nn.functional.scaled_dot_product_attention"
    ),
    "multi_head_attention_forward": (
        "torch's MultiheadAttention drops the attention weights (its dropout): pass it as "
        "dropout_p to flashdrop.nn.functional.scaled_dot_product_attention, or drop the weights "
        "with flashdrop.nn.functional.dropout"
    ),
    **{
        rnn: f"torch's {rnn} drops the output of each layer but the last (its dropout): drop it "
        "with flashdrop's dropout, in torch's (L, N, H) order"
        for rnn in ("rnn_tanh", "rnn_relu", "lstm", "gru")
    },
}
# Two draws' p agree within this: torch's kernel sees 1 - (1 - p), flashdrop's mlx mode 1 - p
# rounded to float32.
_P_TOLERANCE = 1e-6


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
    """Assert that a port makes the torch original's draws and gives its outputs, from one seed.

    Seeds torch and flashdrop with ``seed`` (see :func:`seeded`), then calls ``torch_obj`` and
    ``flashdrop_obj`` ``calls`` times each, in flashdrop's ``"torch"`` random mode, recording
    every draw on both sides (:func:`record_torch_draws`, :func:`record_draws`). Each call's
    draws are compared first: their number, then for each draw in order its shape, as what it
    draws (a channels-last ``(N, 1, 1, C)`` is torch's ``(N, C, 1, 1)``: the sizes other than
    1 must be equal; torch's in its memory order, so that the dropout of a transposed view is
    drawn in the order of the memory under it), its ``p`` (within rounding) and its mask.
    Only when every draw agrees are
    the outputs compared: bit for bit by default (NaN equals NaN), else with
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
        AssertionError: a draw or an output differs. A draw: the message names the call and
            the first draw that differs, with both sides' op, shape, p, module and call site
            (or the draw of one side that has no counterpart on the other), and what may cause
            it. An output: the message names the call and the output, the first differing
            positions with both values, and says that the masks were the same ("same masks,
            the math differs"). The error's ``flashdrop_draws`` attribute holds both sides'
            draws as a table, which the pytest plugin shows.
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
    originals = _as_tensors(inputs)
    how = "bit for bit" if rtol == atol == 0 else f"within rtol={rtol}, atol={atol}"
    with seeded(seed, mode="torch"):
        for call in range(1, calls + 1):
            header = f"the port differs from torch at call {call} of {calls} (seed {seed})"
            theirs, ours, torch_draws, port_draws = _run_both(torch_obj, flashdrop_obj, originals)
            table = _draw_table(torch_draws, port_draws)
            verdict = _draws_verdict(torch_draws, port_draws, torch_obj, flashdrop_obj, True)
            if verdict:
                raise _failure(f"{header}: {verdict[0]}", verdict[1:], table)
            for where, t, o in _paired(theirs, ours, header, table=table):
                differ = _differing(t, o, rtol, atol)
                if differ.any():
                    lines = [
                        *(
                            f"  {pos}: torch {_value(t, pos)}, port {_value(o, pos)}"
                            for pos in _positions(differ)
                        ),
                        _same_masks(port_draws),
                    ]
                    first = (
                        f"{header}: {int(differ.sum())} of {differ.numel()} elements of {where} "
                        f"differ (compared {how}); first at"
                    )
                    raise _failure(first, lines, table)


def assert_statistically_equivalent(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    *inputs: Any,
    trials: int = 1000,
    false_failure_rate: float = 1e-6,
    seed: int = 0,
) -> None:
    """Assert that a port drops like the torch original in flashdrop's default ``"mlx"`` mode.

    In ``"mlx"`` mode the port draws its masks from MLX's generator, so its masks and outputs
    differ from torch's call by call; their plan and distributions must not. Both sides are
    seeded with ``seed`` (see :func:`seeded`) and called ``trials`` times on fresh copies of
    ``inputs``, recording every draw (:func:`record_torch_draws`, :func:`record_draws`).

    First the plan: every call, both sides must make the same draws, in the same order, with
    the same shapes (as what they draw: a channels-last ``(N, 1, 1, C)`` is torch's
    ``(N, C, 1, 1)``) and ``p``; a different plan fails at once, naming the first draw that
    differs, as :func:`assert_same_as_torch` does. Then these statistics, per call:

    - for each draw, from its mask: the keep rate, and for each drawn dimension of size 2 or
      more, the fraction of neighbouring values along it kept alike;
    - for each output: the drop rate (the fraction of exact zeros; for alpha dropout, of the
      most common value), for each dimension of size 2 or more the fraction of neighbouring
      elements along it dropped alike (how the masks lie over the output: whole channels,
      rows, blocks), and the mean and the variance of the finite values.

    Each statistic's mean over the calls is compared between the two sides with a two-sample
    z-test (Welch's: the difference of the means over the standard error estimated from both
    samples; two-sided p-value ``erfc(|z| / sqrt 2)``; a statistic constant on both sides
    passes when it is equal). The calls are independent, so by the central limit theorem each
    p-value is uniform under equivalence. The check fails when a p-value is below
    ``false_failure_rate / (number of statistics)``: by Bonferroni's bound, a port equivalent
    to torch fails with probability at most ``false_failure_rate`` (up to the normal
    approximation, which needs many calls: keep ``trials`` in the hundreds at least).

    A mask applied along other axes than torch's, with the same shape drawn (a channels-last
    port without ``channel_dim=-1`` whose H equals its C), shows only in the outputs'
    statistics, which later layers can hide: :func:`assert_same_as_torch` catches it by
    position.

    Args:
        torch_obj: a torch callable on CPU tensors: a dropout function or module, or a model.
        flashdrop_obj: its port, called on ``mlx.core.array`` inputs.
        inputs: as for :func:`assert_same_as_torch`.
        trials: calls per side. Default: 1000
        false_failure_rate: the probability that the check fails a port whose draws and
            outputs have torch's distribution. Default: 1e-6
        seed: the seed of both sides; the ``flashdrop_seed`` fixture of the pytest plugin gives
            the one chosen with ``--flashdrop-seed`` or the ``flashdrop_seed`` marker.
            Default: 0

    Raises:
        AssertionError: the plan differs (the message names the draw), or a statistic differs
            (the message lists every statistic with both sides' means, their standard errors
            and the p-value, and marks those that failed). Outputs of different structure,
            dtype or shape fail at once.
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
    originals = _as_tensors(inputs)
    alpha = _is_alpha(torch_obj)
    # samples[(where, statistic)] = (torch's values, the port's values), one per call.
    samples: dict[tuple[str, str], tuple[list[float], list[float]]] = {}

    def add(where: str, theirs: dict[str, float], ours: dict[str, float]) -> None:
        for name, value in theirs.items():
            torch_values, port_values = samples.setdefault((where, name), ([], []))
            torch_values.append(value)
            port_values.append(ours[name])

    with seeded(seed, mode="mlx"):
        for call in range(1, trials + 1):
            header = (
                f"the port differs from torch at call {call} (seed {seed}, flashdrop in mlx mode)"
            )
            theirs, ours, torch_draws, port_draws = _run_both(torch_obj, flashdrop_obj, originals)
            table = _draw_table(torch_draws, port_draws)
            verdict = _draws_verdict(torch_draws, port_draws, torch_obj, flashdrop_obj, False)
            if verdict:
                raise _failure(f"{header}: {verdict[0]}", verdict[1:], table)
            for i, (t, o) in enumerate(zip(torch_draws, port_draws, strict=True), 1):
                if t.mask is not None:
                    where = f"draw #{i} ({t.op} {t.shape})"
                    drawn = t.drawn()
                    add(where, _mask_statistics(t.keep(), drawn), _mask_statistics(o.keep(), drawn))
            for where, t, o in _paired(theirs, ours, header, table=table):
                add(where, _statistics(t, alpha), _statistics(o, alpha))

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


def dropout_sites(torch_model: Callable[..., Any], *inputs: Any) -> list[Draw]:
    """The draws a torch model makes in one call, in call order, with modules and call sites.

    Runs ``torch_model(*inputs)`` once, without gradients, recording its draws
    (:func:`record_torch_draws`): those of its dropout modules, and those no module list shows
    (the dropout inside ``scaled_dot_product_attention``, ``MultiheadAttention`` and the RNNs,
    ``F.dropout`` calls), in the order they are made. torch's random state is restored
    afterwards. The model runs in the training state it is in: a model in eval mode draws
    nothing.

    Args:
        torch_model: a torch module or callable on CPU tensors.
        inputs: its positional arguments; ``mx.array`` values are converted to tensors.

    Returns:
        One :class:`Draw` per draw: ``op``, ``shape``, ``p``, ``module`` (its qualified name)
        and ``site``.

    Example::

        >>> layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
        >>> [(d.op, d.module) for d in dropout_sites(layer, torch.randn(5, 2, 8))]
        [('multi_head_attention_forward', 'self_attn'), ('dropout', 'dropout1'),
         ('dropout', 'dropout'), ('dropout', 'dropout2')]
    """
    torch = compat.import_torch()
    with torch.random.fork_rng(devices=[]), torch.no_grad(), record_torch_draws() as draws:
        torch_model(*_as_tensors(inputs))
    return draws


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


def _paired(
    theirs: Any, ours: Any, header: str, where: str = "output", table: str = ""
) -> list[tuple]:
    """``(where, torch's tensor, the port's as a tensor)`` for each output, matched by position.

    Raises an AssertionError, prefixed with ``header``, when the two outputs do not have the same
    structure, or a pair differs in dtype or shape.
    """
    torch = compat.import_torch()
    if isinstance(theirs, torch.Tensor):
        if not isinstance(ours, mx.array):
            raise _failure(
                f"{header}: {where} is a torch.Tensor from torch, but a {_kind(ours)} from the "
                "port, where an mlx.core.array was expected",
                [],
                table,
            )
        t, o = theirs.detach().cpu(), compat.to_torch(ours)
        if t.dtype != o.dtype or t.shape != o.shape:
            raise _failure(
                f"{header}: {where} is {str(t.dtype)[6:]} of shape {tuple(t.shape)} from torch, "
                f"but {str(o.dtype)[6:]} of shape {tuple(o.shape)} from the port",
                [],
                table,
            )
        return [(where, t, o)]
    keys = _keys(theirs)
    if keys is not None:
        if _keys(ours) != keys or isinstance(ours, dict) != isinstance(theirs, dict):
            raise _failure(
                f"{header}: {where} is a {_kind(theirs)} of {len(theirs)} from torch, but "
                f"a {_kind(ours)} from the port",
                [],
                table,
            )
        pairs = []
        for key in keys:
            pairs += _paired(theirs[key], ours[key], header, f"{where}[{key!r}]", table)
        return pairs
    if theirs != ours:
        raise _failure(
            f"{header}: {where} is {theirs!r} from torch, {ours!r} from the port", [], table
        )
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
# Draws


def _run_both(
    torch_obj: Callable[..., Any], flashdrop_obj: Callable[..., Any], originals: list[Any]
) -> tuple[Any, Any, list[Draw], list[Draw]]:
    """One call of each side on fresh inputs: (torch's output, the port's, their draws)."""
    torch = compat.import_torch()
    torch_args, port_args = _call_args(originals)
    with torch.no_grad(), record_torch_draws() as torch_draws:
        theirs = torch_obj(*torch_args)
    with record_draws() as port_draws:
        ours = flashdrop_obj(*port_args)
    return theirs, ours, torch_draws, port_draws


def _failure(first: str, lines: list[str], table: str) -> AssertionError:
    """The AssertionError of a helper: its message, and the draw table the plugin shows."""
    error = AssertionError("\n".join([first, *lines]))
    error.flashdrop_draws = table  # type: ignore[attr-defined]
    return error


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _differs_in(t: Draw, o: Draw, masks: bool) -> str | None:
    """How draw ``o`` differs from ``t``: ``None`` if it does not; else what differs."""
    if (t.p is None) != (o.p is None) or (t.p is None and t.op != o.op):
        return "kind"
    if t.drawn() != o.drawn():
        return "shape"
    if t.p is not None and abs(t.p - o.p) > _P_TOLERANCE:
        return "p"
    if masks and t.mask is not None and not np.array_equal(t.keep(), o.keep()):
        return "mask"
    return None


def _unmatched(longer: list[Draw], shorter: list[Draw]) -> list[int] | None:
    """The draws of ``longer`` (0-based) left over when ``shorter`` is matched to it in order,
    each draw to the first that agrees with it (shape and p); ``None`` if it cannot be."""
    left, j = [], 0
    for i, draw in enumerate(longer):
        if j < len(shorter) and _differs_in(draw, shorter[j], False) is None:
            j += 1
        else:
            left.append(i)
    return left if j == len(shorter) else None


def _draws_verdict(
    theirs: list[Draw], ours: list[Draw], torch_obj: Any, port: Any, masks: bool
) -> list[str]:
    """Empty when the port made torch's draws; else the first line (after the header) and the
    lines naming the first draw that differs, with hints."""
    counts = f"torch drew {_times(len(theirs))}, the port {_times(len(ours))}"
    if len(theirs) != len(ours):
        longer, shorter = (theirs, ours) if len(theirs) > len(ours) else (ours, theirs)
        left = _unmatched(longer, shorter)
        if left is not None:
            side, other = ("torch", "the port") if longer is theirs else ("the port", "torch")
            label = "torch" if longer is theirs else "port "
            others = ", ".join(f"#{i + 1}" for i in left[1:])
            also = f" (nor have {side}'s {others})" if others else ""
            first = f"{counts}; {side}'s draw #{left[0] + 1} has no counterpart in {other}{also}:"
            lines = [f"  {label} #{left[0] + 1}: {longer[left[0]].describe()}"]
            return [first, *lines, *_hints(theirs, ours, torch_obj, port, None, left[0])]
    else:
        counts = f"torch and the port drew {_times(len(theirs))} each"
    # With counts unequal, the shorter side is no subsequence of the longer: a draw differs.
    i, how = next(
        (
            (i, how)
            for i, (t, o) in enumerate(zip(theirs, ours, strict=False))
            if (how := _differs_in(t, o, masks)) is not None
        ),
        (None, None),
    )
    if how is None:
        return []
    t, o = theirs[i], ours[i]
    first = f"{counts}; draw #{i + 1} differs in {_difference(t, o, how)}:"
    lines = [f"  torch #{i + 1}: {t.describe()}", f"  port  #{i + 1}: {o.describe()}"]
    return [first, *lines, *_hints(theirs, ours, torch_obj, port, how, i)]


def _difference(t: Draw, o: Draw, how: str) -> str:
    """What differs between two draws, said with their values."""
    if how == "kind":
        kinds = ["a mask" if d.p is not None else f"a {d.op} draw" for d in (t, o)]
        return f"kind (torch's is {kinds[0]}, the port's {kinds[1]})"
    if how == "shape":
        return f"shape ({_shape(t)} drawn by torch, {_shape(o)} by the port)"
    if how == "p":
        return f"p (torch {t.p:.6g}, port {o.p:.6g})"
    theirs, ours = t.keep(), o.keep()
    differ = np.flatnonzero(theirs != ours)
    at = [tuple(int(k) for k in np.unravel_index(j, t.shape)) for j in differ[:_SHOWN]]
    return (
        f"its mask, with the same shape and p: {differ.size} of {theirs.size} values differ, "
        f"first at {', '.join(map(str, at))} of torch's"
    )


def _shape(draw: Draw) -> str:
    drawn = draw.drawn()
    shape = f"{draw.shape}{draw.of_view()}"
    return shape if drawn == draw.shape else f"{shape}, that is {drawn}"


def _hints(
    theirs: list[Draw], ours: list[Draw], torch_obj: Any, port: Any, how: str | None, i: int
) -> list[str]:
    """What may have caused the difference, from both sides' layers and draws."""
    torch = compat.import_torch()
    hints = []
    if how == "shape" and ours[i].op in _CHANNEL_OPS:
        hints.append(
            "a channels-last port's channel dropout (dropout1d/2d/3d, feature_alpha_dropout) "
            "needs channel_dim=-1"
        )
    if how == "mask":
        hints.append(
            "the same draw from another place in the stream: something before it drew from "
            "torch's generator on one side only, or reseeded"
        )
    if how is None and len(ours) < len(theirs) and theirs[i].op in _INNER_DROPOUTS:
        hints.append(_INNER_DROPOUTS[theirs[i].op])
    if len(ours) < len(theirs) and _is_module(port):
        for name, module in _flashdrop_layers(port):
            if _is_mlx_dropout(module):
                hints.append(
                    f"the port's {type(module).__name__} at {name!r} is mlx.nn's: it draws from "
                    "MLX's stream, which flashdrop neither records nor keeps in step with "
                    "torch's; use flashdrop.nn's (flashdrop.compat.port_dropout)"
                )
            elif not module.training:
                hints.append(f"the port's {type(module).__name__} at {name!r} is in eval mode")
    if len(theirs) < len(ours) and isinstance(torch_obj, torch.nn.Module):
        hints += [
            f"torch's {type(module).__name__} at {name!r} is in eval mode"
            for name, module in compat.dropout_layers(torch_obj)
            if not module.training
        ]
    if how == "p" and sorted(_plan(theirs)) == sorted(_plan(ours)):
        hints.append("the port makes torch's draws in another order")
    return hints


def _plan(draws: list[Draw]) -> list[tuple]:
    """Each draw's shape (as drawn) and p, rounded: what must match in both modes."""
    return [(d.drawn(), None if d.p is None else round(d.p, 6)) for d in draws]


def _same_masks(port_draws: list[Draw]) -> str:
    """The verdict on the masks when every draw agreed and an output differs."""
    if not port_draws:
        return "no dropout draws on either side, so the math differs"
    n = len(port_draws)
    line = (
        f"same masks, the math differs: the port made torch's {n} draw{'s' * (n > 1)} (shape, p "
        "and mask of each), and computes something else with them"
    )
    if any(d.op in _CHANNEL_OPS for d in port_draws):
        line += (
            "; a channels-last port whose channel dropout lacks channel_dim=-1 draws torch's "
            "masks when H == C, and applies them along the wrong axis"
        )
    else:
        # A draw with two sizes alike looks the same drawn in either order of those axes.
        alike = next((i for i, d in enumerate(port_draws, 1) if _has_equal_sizes(d)), None)
        if alike is not None:
            line += (
                f"; draw #{alike} has dimensions of equal size {port_draws[alike - 1].drawn()}: "
                "drawn in another order of its axes (as (N, L, H) for torch's (L, N, H)), it "
                "draws torch's mask and applies it to other positions"
            )
    return line


def _has_equal_sizes(draw: Draw) -> bool:
    drawn = draw.drawn()
    return len(set(drawn)) < len(drawn)


def _draw_table(theirs: list[Draw], ours: list[Draw]) -> str:
    """Both sides' draws side by side, one row per draw (``#i/j`` where a draw of one side has
    no counterpart, ``-``), ``!`` where the two differ (in their masks too, unless a draw is
    missing)."""

    def cell(draw: Draw | None) -> str:
        if draw is None:
            return "-"
        p = "" if draw.p is None else f" p={draw.p:.6g}"
        where = "" if draw.module is None else f" {draw.where()}"
        site = f" {draw.site}" if draw.site else ""
        return f"{draw.op} {draw.shape}{p}{where}{site}"

    rows = []
    pairs = _aligned(theirs, ours)
    # With a draw missing on one side, the masks after it come from elsewhere in the stream.
    masks = all(i is not None and j is not None for i, j in pairs)
    for i, j in pairs:
        t = None if i is None else theirs[i]
        o = None if j is None else ours[j]
        same = t is not None and o is not None and _differs_in(t, o, masks) is None
        number = (
            f"#{i + 1}"
            if i == j
            else f"#{'-' if i is None else i + 1}/{'-' if j is None else j + 1}"
        )
        rows.append((f"{'' if same else '!'}{number}", cell(t), cell(o)))
    rows.insert(0, ("", "torch", "port"))
    widths = [max(len(row[k]) for row in rows) for k in range(2)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}} | {c}" for a, b, c in rows)


def _aligned(theirs: list[Draw], ours: list[Draw]) -> list[tuple[int | None, int | None]]:
    """Pairs of indices, torch's and the port's, with ``None`` against a draw of one side that
    has no counterpart on the other (when one side's draws are the other's with some left out),
    else draw against draw in order."""
    n = max(len(theirs), len(ours))
    if len(theirs) != len(ours):
        longer, shorter = (theirs, ours) if len(theirs) > len(ours) else (ours, theirs)
        left = _unmatched(longer, shorter)
        if left is not None:
            pairs, k = [], 0
            for i in range(len(longer)):
                pair = (i, None) if i in left else (i, k)
                k += i not in left
                pairs.append(pair if longer is theirs else pair[::-1])
            return pairs
    return [(i if i < len(theirs) else None, i if i < len(ours) else None) for i in range(n)]


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


def _mask_statistics(keep: np.ndarray, drawn: tuple[int, ...]) -> dict[str, float]:
    """One call's statistics of one draw's mask, laid out as ``drawn`` (the same keys for
    equal shapes)."""
    keep = keep.reshape(drawn)
    stats = {"keep rate": float(keep.mean()) if keep.size else 0.0}
    for dim, size in enumerate(drawn):
        if size > 1:
            alike = np.take(keep, range(size - 1), dim) == np.take(keep, range(1, size), dim)
            stats[f"neighbours along drawn dim {dim} kept alike"] = float(alike.mean())
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
