"""The helpers' checks: a port against torch, draw by draw, in either random mode."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flashdrop import compat
from flashdrop._builds import Builds
from flashdrop._comparison import default_tolerances, differing, tolerances
from flashdrop._recording import Draw, record_draws
from flashdrop.compat import record_torch_draws
from flashdrop.testing._axis_order import transposed_draw
from flashdrop.testing._draw_table import draw_table
from flashdrop.testing._models import Models
from flashdrop.testing._outputs import (
    Inputs,
    as_tensors,
    call_args,
    end_with,
    failure,
    paired,
    positions,
    value_text,
)
from flashdrop.testing._seeding import seeded
from flashdrop.testing._statistics import (
    is_alpha,
    mask_statistics,
    mean_and_error,
    output_statistics,
    z_test_p_value,
)
from flashdrop.testing._verdicts import draws_verdict, same_masks

__all__ = ["assert_same_as_torch", "assert_statistically_equivalent", "dropout_sites"]


def assert_same_as_torch(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    *inputs: Any,
    seed: int = 0,
    calls: int = 3,
    rtol: float | None = None,
    atol: float | None = None,
    **keyword_inputs: Any,
) -> None:
    """Assert that a port makes the torch original's draws and gives its outputs, from one seed.

    Seeds torch and flashdrop with ``seed`` (see :func:`seeded`), then calls ``torch_obj`` and
    ``flashdrop_obj`` ``calls`` times each, in flashdrop's ``"torch"`` random mode, recording
    every draw on both sides (:func:`record_torch_draws`, :func:`record_draws`). Each call's
    draws are compared first: their number, then for each draw in order its shape, as what it
    draws (a channels-last ``(N, 1, 1, C)`` is torch's ``(N, C, 1, 1)``: the sizes other than
    1 must be equal; torch's in its memory order, so that the dropout of a transposed view is
    drawn in the order of the memory under it), its ``p`` (within rounding) and its mask.
    Only when every draw agrees are the outputs compared, as ``torch.testing.assert_close``
    compares them: ``|port - torch| <= atol + rtol * |torch|`` (NaN equals NaN), by default
    with its tolerances for the dtype (float32: ``rtol=1.3e-6, atol=1e-5``; float64:
    ``1e-7, 1e-7``; float16: ``1e-3, 1e-5``; bfloat16: ``1.6e-2, 1e-5``; integers and bool:
    equal), so that a port whose matrix products round differently from torch's passes;
    ``rtol=0, atol=0`` asks for torch's bits. Every call gets fresh copies of the inputs, so
    in-place layers do not feed one call's output into the next. Modules run in whatever
    training or evaluation state they are in. The random states and mode are restored afterwards.

    The hints read the models' training flags and dropout layers: a module given as it is, or
    inside a lambda, a ``functools.partial`` or a bound method (its closure, arguments or
    ``self``; the first module found is taken), as Hugging Face models are often called.

    Args:
        torch_obj: a torch callable on CPU tensors: a dropout function or module, or a model.
        flashdrop_obj: its port, called on ``mlx.core.array`` inputs.
        inputs, keyword_inputs: the positional and keyword arguments of both (keywords other
            than this function's own). ``torch.Tensor`` and ``mx.array`` values are given to
            torch as tensors and to the port as arrays (converted with :mod:`flashdrop.compat`,
            bit for bit); anything else is passed to both as it is.
        seed: the seed of both sides. Default: 0
        calls: how many consecutive calls to compare (each draws new masks). Default: 3
        rtol, atol: tolerances of the outputs; one given alone makes the other 0.
            Default: ``torch.testing.assert_close``'s for each output's dtype.

    Outputs may be a tensor (an array for the port), tuples and lists of them (matched by
    position), or mappings and dataclasses of them, such as Hugging Face's ``ModelOutput``
    (matched by field name against the port's dict or dataclass; a field holding ``None``
    counts as absent); dtypes and shapes must be equal.

    Raises:
        AssertionError: a draw or an output differs. A draw: the message names the call and
            the first draw that differs, with both sides' op, shape, p, module and call site
            (or the draw of one side that has no counterpart on the other, found by shape, p
            and module path), and the hints the models' flags and layers support. An output:
            the message names the call and the output, the first differing positions with both
            values, and says that the masks were the same ("same masks, the math differs");
            when torch, rerun with one mask's axes swapped, gives the port's outputs, it names
            that draw. Every message ends with the torch builds compared: torch mode's target
            (:func:`flashdrop.get_torch_target`, read when the check starts) and the torch
            compared (its version, on this machine's CPU). Where the very first mask compared
            differs, it adds that the torch compared may draw otherwise than the target, and
            how to set the target. The error's ``flashdrop_draws`` attribute holds both sides'
            draws as a table, which the pytest plugin shows.
        ValueError: ``calls`` is not a positive int, or a tolerance is negative.

    Example::

        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.2))
        >>> port = mlx.nn.Sequential(mlx.nn.Linear(8, 8), flashdrop.nn.Dropout(0.2))
        >>> port.load_weights([(f"layers.{k}", compat.to_mlx(v))
        ...                    for k, v in model.state_dict().items()])
        >>> assert_same_as_torch(model, port, torch.randn(4, 8))
    """
    __tracebackhide__ = True
    if not isinstance(calls, int) or calls < 1:
        raise ValueError(f"assert_same_as_torch: calls must be a positive int, but got {calls!r}")
    given = tolerances(rtol, atol, "assert_same_as_torch")
    originals = as_tensors(inputs, keyword_inputs)
    models = Models.of(torch_obj, flashdrop_obj)
    builds = Builds.now("torch")
    try:
        with seeded(seed, mode="torch"):
            for call in range(1, calls + 1):
                header = f"the port differs from torch at call {call} of {calls} (seed {seed})"
                first_call = builds if call == 1 else None
                _same_call(torch_obj, flashdrop_obj, originals, models, given, header, first_call)
    except AssertionError as error:
        end_with(error, builds.line())
        raise


def _same_call(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    originals: Inputs,
    models: Models,
    given: tuple[float, float] | None,
    header: str,
    first_call: Builds | None,
) -> None:
    """One call of :func:`assert_same_as_torch`: the draws, then the outputs; an
    AssertionError starting with ``header`` where they differ (``first_call``: as for
    :func:`draws_verdict`)."""
    __tracebackhide__ = True
    state = compat.import_torch().get_rng_state()
    theirs, ours, torch_draws, port_draws = run_both(torch_obj, flashdrop_obj, originals)
    table = draw_table(torch_draws, port_draws, masks=True)
    verdict = draws_verdict(torch_draws, port_draws, models, masks=True, first_call=first_call)
    if verdict:
        raise failure(f"{header}: {verdict[0]}", verdict[1:], table)
    difference = _first_difference(theirs, ours, given, header, table)
    if difference is not None:
        where, t, o, differ = difference
        first = (
            f"{header}: {int(differ.sum())} of {differ.numel()} elements of {where} "
            f"differ (compared {_tolerances_text(given, t.dtype)}); first at"
        )
        values = [
            f"  {pos}: torch {value_text(t, pos)}, port {value_text(o, pos)}"
            for pos in positions(differ)
        ]
        agrees = functools.partial(_agrees, ours=ours, given=given)
        transposed = transposed_draw(torch_obj, originals, state, port_draws, agrees)
        raise failure(first, [*values, same_masks(port_draws, transposed)], table)


def _agrees(theirs: Any, ours: Any, given: tuple[float, float] | None) -> bool:
    """Whether torch's outputs ``theirs`` and the port's ``ours`` agree (their structure does)."""
    return _first_difference(theirs, ours, given, "", "") is None


def _first_difference(
    theirs: Any, ours: Any, given: tuple[float, float] | None, header: str, table: str
) -> tuple[str, Any, Any, Any] | None:
    """The first output that differs: ``(where, torch's, the port's as a tensor, where they
    differ)``, each compared within ``given`` tolerances or its dtype's defaults; ``None`` if
    none does. Outputs of different structure, dtype or shape raise (:func:`paired`)."""
    __tracebackhide__ = True
    for where, t, o in paired(theirs, ours, header, table=table):
        differ = differing(t, o, *(given or default_tolerances(t.dtype)))
        if differ.any():
            return where, t, o, differ
    return None


def _tolerances_text(given: tuple[float, float] | None, dtype: Any) -> str:
    """How an output was compared: ``bit for bit``, ``within rtol=1.3e-06, atol=1e-05,
    torch.testing.assert_close's for float32`` and the like."""
    rtol, atol = given or default_tolerances(dtype)
    if rtol == atol == 0:
        return "bit for bit"
    defaults = "" if given else f", torch.testing.assert_close's for {str(dtype)[6:]}"
    return f"within rtol={rtol:g}, atol={atol:g}{defaults}"


def assert_statistically_equivalent(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    *inputs: Any,
    trials: int = 1000,
    false_failure_rate: float = 1e-6,
    seed: int = 0,
    **keyword_inputs: Any,
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
        inputs, keyword_inputs: as for :func:`assert_same_as_torch`.
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
            dtype or shape fail at once. Every message ends with the torch compared (its
            version, on this machine's CPU); mlx mode emulates no torch target.
        ValueError: ``trials`` is below 2, or ``false_failure_rate`` is not in (0, 1).

    Example::

        >>> assert_statistically_equivalent(torch.nn.Dropout(0.3), flashdrop.nn.Dropout(0.3),
        ...                                 torch.randn(64, 32))
    """
    __tracebackhide__ = True
    if not isinstance(trials, int) or trials < 2:
        raise ValueError(
            f"assert_statistically_equivalent: trials must be an int >= 2, but got {trials!r}"
        )
    if not 0 < false_failure_rate < 1:
        raise ValueError(
            "assert_statistically_equivalent: false_failure_rate must be in (0, 1), "
            f"but got {false_failure_rate!r}"
        )
    originals = as_tensors(inputs, keyword_inputs)
    models = Models.of(torch_obj, flashdrop_obj)
    builds = Builds.now("mlx")
    try:
        samples = _samples(torch_obj, flashdrop_obj, originals, models, trials, seed)
    except AssertionError as error:  # the plan, or the outputs' structure, differs
        end_with(error, builds.line())
        raise

    threshold = false_failure_rate / max(len(samples), 1)
    rows, failed = [], 0
    for (where, name), (torch_values, port_values) in samples.items():
        (m1, se1), (m2, se2) = mean_and_error(torch_values), mean_and_error(port_values)
        p_value = z_test_p_value(m1, se1, m2, se2)
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
        raise AssertionError("\n".join([header, *rows, builds.line()]))


def _samples(
    torch_obj: Callable[..., Any],
    flashdrop_obj: Callable[..., Any],
    originals: Inputs,
    models: Models,
    trials: int,
    seed: int,
) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """The calls of :func:`assert_statistically_equivalent`: each statistic's values,
    ``samples[(where, statistic)] = (torch's, the port's)``, one per call; an AssertionError
    where a call's plan of draws, or its outputs' structure, differs."""
    __tracebackhide__ = True
    alpha = is_alpha(models.torch or torch_obj)
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
            theirs, ours, torch_draws, port_draws = run_both(torch_obj, flashdrop_obj, originals)
            table = draw_table(torch_draws, port_draws, masks=False)
            verdict = draws_verdict(torch_draws, port_draws, models, masks=False)
            if verdict:
                raise failure(f"{header}: {verdict[0]}", verdict[1:], table)
            for i, (t, o) in enumerate(zip(torch_draws, port_draws, strict=True), 1):
                if t.mask is not None:
                    where = f"draw #{i} ({t.op} {t.shape})"
                    drawn = t.drawn()
                    add(where, mask_statistics(t.keep(), drawn), mask_statistics(o.keep(), drawn))
            for where, t, o in paired(theirs, ours, header, table=table):
                add(where, output_statistics(t, alpha), output_statistics(o, alpha))
    return samples


def dropout_sites(
    torch_model: Callable[..., Any], *inputs: Any, **keyword_inputs: Any
) -> list[Draw]:
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
        args, kwargs = as_tensors(inputs, keyword_inputs)
        torch_model(*args, **kwargs)
    return draws


def run_both(
    torch_obj: Callable[..., Any], flashdrop_obj: Callable[..., Any], originals: Inputs
) -> tuple[Any, Any, list[Draw], list[Draw]]:
    """One call of each side on fresh inputs: (torch's output, the port's, their draws)."""
    torch = compat.import_torch()
    (torch_args, torch_kwargs), (port_args, port_kwargs) = call_args(originals)
    with torch.no_grad(), record_torch_draws() as torch_draws:
        theirs = torch_obj(*torch_args, **torch_kwargs)
    with record_draws() as port_draws:
        ours = flashdrop_obj(*port_args, **port_kwargs)
    return theirs, ours, torch_draws, port_draws
