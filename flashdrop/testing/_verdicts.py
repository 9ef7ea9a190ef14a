"""The verdict on two sides' draws: the first that differs, how, and what may have caused it."""

from __future__ import annotations

from typing import Any

import numpy as np

from flashdrop._builds import Builds
from flashdrop._family import named
from flashdrop._recording import Draw
from flashdrop.testing._models import Models, is_mlx_dropout
from flashdrop.testing._outputs import SHOWN

__all__ = ["aligned", "differs_in", "draws_verdict", "same_masks"]

# What a port missing torch's draw of one of these ops must do: torch's dropouts that no
# dropout module makes.
_INNER_DROPOUTS = {
    "scaled_dot_product_attention": (
        "torch's scaled_dot_product_attention drops the attention weights (its "
        "dropout_p={p}): pass dropout_p={p} to flashdrop.nn.functional.scaled_dot_product_attention"
    ),
    "multi_head_attention_forward": (
        "torch's MultiheadAttention drops the attention weights (its dropout={p}): pass it as "
        "dropout_p to flashdrop.nn.functional.scaled_dot_product_attention, or drop the weights "
        "with flashdrop.nn.functional.dropout"
    ),
    **{
        rnn: f"torch's {rnn} drops the output of each layer but the last (its dropout={{p}}): "
        "drop it with flashdrop's dropout, in torch's (L, N, H) order"
        for rnn in ("rnn_tanh", "rnn_relu", "lstm", "gru")
    },
}
# Two draws' p agree within this: torch's kernel sees 1 - (1 - p), flashdrop's mlx mode 1 - p
# rounded to float32.
_P_TOLERANCE = 1e-6


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def differs_in(t: Draw, o: Draw, masks: bool) -> str | None:
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


def aligned(theirs: list[Draw], ours: list[Draw]) -> list[tuple[int | None, int | None]]:
    """Both sides' draws paired, as ``(torch's index, the port's)`` (0-based), in call order.

    With as many draws on each side, draw against draw. Else, when the shorter side's draws are
    the longer side's with some left out, each is paired with a draw that agrees with it (shape
    and p), preferring the pairing in which the most pairs were made in the same module path
    (so that the draw left out is the one of the module that made no draw, not a neighbour of
    the same shape and p), then the earliest; the draws left over get ``None`` against them.
    Otherwise draw against draw, ``None`` past the shorter side's end.
    """
    n = max(len(theirs), len(ours))
    in_order = [(i if i < len(theirs) else None, i if i < len(ours) else None) for i in range(n)]
    if len(theirs) == len(ours):
        return in_order
    longer, shorter = (theirs, ours) if len(theirs) > len(ours) else (ours, theirs)
    counterparts = _subsequence(longer, shorter)
    if counterparts is None:
        return in_order
    pairs = [(i, j) for i, j in enumerate(counterparts)]
    return pairs if longer is theirs else [(j, i) for i, j in pairs]


def _subsequence(longer: list[Draw], shorter: list[Draw]) -> list[int | None] | None:
    """For each draw of ``longer``, the index of its counterpart in ``shorter`` (``None``: left
    over), when every draw of ``shorter`` finds one; else ``None``. See :func:`aligned`."""
    n, m = len(longer), len(shorter)
    # best[i][j]: (pairs, pairs in the same module) pairing longer[i:] with shorter[j:].
    best = [[(0, 0)] * (m + 1) for _ in range(n + 1)]

    def paired_score(i: int, j: int) -> tuple[int, int] | None:
        if differs_in(longer[i], shorter[j], False) is not None:
            return None
        pairs, same = best[i + 1][j + 1]
        return pairs + 1, same + (longer[i].module == shorter[j].module)

    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            pair = paired_score(i, j)
            best[i][j] = max(best[i + 1][j], best[i][j + 1], *([pair] if pair else []))
    if best[0][0][0] < m:
        return None
    counterparts: list[int | None] = []
    j = 0
    for i in range(n):
        if j < m and paired_score(i, j) == best[i][j]:
            counterparts.append(j)
            j += 1
        else:
            counterparts.append(None)
    return counterparts


def draws_verdict(
    theirs: list[Draw],
    ours: list[Draw],
    models: Models,
    masks: bool,
    first_call: Builds | None = None,
) -> list[str]:
    """Empty when the port made torch's draws; else the first line (after the header) and the
    lines naming the first draw that differs, with the hints its evidence supports.
    ``first_call``: the builds compared, given at a check's first call in torch mode, where the
    very first mask differing may be the torch compared drawing otherwise than the target."""
    counts = f"torch drew {_times(len(theirs))}, the port {_times(len(ours))}"
    if len(theirs) != len(ours):
        longer_is_torch = len(theirs) > len(ours)
        longer, shorter = (theirs, ours) if longer_is_torch else (ours, theirs)
        counterparts = _subsequence(longer, shorter)
        if counterparts is not None:
            left = [k for k, counterpart in enumerate(counterparts) if counterpart is None]
            side, other = ("torch", "the port") if longer_is_torch else ("the port", "torch")
            label = "torch" if longer_is_torch else "port "
            others = ", ".join(f"#{k + 1}" for k in left[1:])
            also = f" (nor have {side}'s {others})" if others else ""
            first = f"{counts}; {side}'s draw #{left[0] + 1} has no counterpart in {other}{also}:"
            draw = longer[left[0]]
            hints = (_missing_hints if longer_is_torch else _extra_hints)(draw, left[0], models)
            return [first, f"  {label} #{left[0] + 1}: {draw.describe()}", *hints]
    if len(theirs) == len(ours):
        counts = f"torch and the port drew {_times(len(theirs))} each"
    # With counts unequal, the shorter side is no subsequence of the longer: a draw differs.
    i, how = next(
        (
            (i, how)
            for i, (t, o) in enumerate(zip(theirs, ours, strict=False))
            if (how := differs_in(t, o, masks)) is not None
        ),
        (None, None),
    )
    if i is None or how is None:
        return []
    t, o = theirs[i], ours[i]
    first = f"{counts}; draw #{i + 1} differs in {_difference(t, o, how)}:"
    lines = [f"  torch #{i + 1}: {t.describe()}", f"  port  #{i + 1}: {o.describe()}"]
    hints = _difference_hints(theirs, ours, how, i)
    if how == "mask" and first_call is not None and all(d.mask is None for d in theirs[:i]):
        hints.append(first_call.hint("the very first mask differs"))
    return [first, *lines, *hints]


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
    at = [tuple(int(k) for k in np.unravel_index(j, t.shape)) for j in differ[:SHOWN]]
    return (
        f"its mask, with the same shape and p: {differ.size} of {theirs.size} values differ, "
        f"first at {', '.join(map(str, at))} of torch's"
    )


def _shape(draw: Draw) -> str:
    drawn = draw.drawn()
    shape = f"{draw.shape}{draw.of_view()}"
    return shape if drawn == draw.shape else f"{shape}, that is {drawn}"


def _difference_hints(theirs: list[Draw], ours: list[Draw], how: str, i: int) -> list[str]:
    """What may have made draw ``i`` differ, where both sides made it."""
    hints = []
    if how == "shape" and _drops_channels(ours[i].op):
        hints.append(
            "a channels-last port's channel dropout (dropout1d/2d/3d, feature_alpha_dropout) "
            "needs channel_dim=-1"
        )
    if how == "mask":
        hints.append(
            "the same draw from another place in the stream: something before it drew from "
            "torch's generator on one side only, or reseeded"
        )
    if how == "p" and sorted(_plan(theirs)) == sorted(_plan(ours)):
        hints.append("the port makes torch's draws in another order")
    return hints


def _missing_hints(draw: Draw, i: int, models: Models) -> list[str]:
    """What may have left out torch's draw ``i`` on the port's side: the port's module of that
    path in eval mode while torch's trains (or, where the paths differ, the port's dropout
    layers in eval mode); else a dropout made inside a torch function, or by a functional call,
    that the port does not make. And MLX's own dropout layers in the port, which flashdrop does
    not see."""
    hints = []
    torch_module = models.torch_module(draw.module)
    if torch_module is None or torch_module.training:
        layers = [(n, m) for n, m in models.port_layers() if not is_mlx_dropout(m)]
        resting = _in_eval(draw.module, models.port_module(draw.module), layers)
        hints += [f"the port's {_named(m, n)} is in eval mode" for n, m in resting]
    p = "" if draw.p is None else f"{draw.p:.6g}"
    explained = bool(hints)  # by the flags: then the port does make this dropout
    if not explained and draw.op in _INNER_DROPOUTS:
        hints.append(_INNER_DROPOUTS[draw.op].format(p=p))
    elif not explained and named(draw.op) and not _is_layer(models.torch_layers(), draw.module):
        where = "" if draw.module is None else f" inside {draw.where()}"
        at = f" at {draw.site}" if draw.site else ""
        hints.append(
            f"torch's draw #{i + 1} is a call of torch.nn.functional.{draw.op} (p={p}){at}"
            f"{where}, not a dropout module's: the port needs "
            f"flashdrop.nn.functional.{draw.op}(..., p={p}) at that point"
        )
    hints += [
        f"the port's {_named(m, n)} is mlx.nn's: it draws from MLX's stream, which flashdrop "
        "neither records nor keeps in step with torch's; use flashdrop.nn's "
        "(flashdrop.compat.port_dropout)"
        for n, m in models.port_layers()
        if is_mlx_dropout(m)
    ]
    return hints


def _named(module: Any, path: str | None) -> str:
    """``Dropout at 'h.0.drop'``; ``GPT (the model)`` for the outermost module."""
    return (
        f"{type(module).__name__} (the model)"
        if not path
        else f"{type(module).__name__} at {path!r}"
    )


def _extra_hints(draw: Draw, i: int, models: Models) -> list[str]:
    """What may have made the port's draw ``i`` that torch does not make: the port's module
    drawing in eval mode; else torch's module of that path in eval mode (or, where the paths
    differ, torch's dropout layers in eval mode), the port's drawing in training."""
    port_module = models.port_module(draw.module)
    if port_module is not None and not port_module.training:
        return [
            f"the port's {_named(port_module, draw.module)} is in eval mode and drew: it drops "
            "without checking self.training (flashdrop.nn's layers do; "
            "its functions take training=)"
        ]
    resting = _in_eval(draw.module, models.torch_module(draw.module), models.torch_layers())
    return [f"torch's {_named(m, n)} is in eval mode" for n, m in resting]


def _in_eval(path: str | None, same: Any, layers: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The modules of one side whose eval mode explains a draw the other side made at ``path``:
    ``same``, its module at that path, if it is in eval mode; where it has no module at that
    path (its modules are named otherwise), its dropout ``layers`` in eval mode."""
    if same is not None:
        return [] if same.training else [(path, same)]
    return [(name, module) for name, module in layers if not module.training]


def _is_layer(layers: list[tuple[str, Any]], name: str | None) -> bool:
    """Whether ``name`` is one of the dropout ``layers``' (a draw made by a dropout module)."""
    return any(layer_name == name for layer_name, _ in layers)


def _plan(draws: list[Draw]) -> list[tuple]:
    """Each draw's shape (as drawn) and p, rounded: what must match in both modes."""
    return [(d.drawn(), None if d.p is None else round(d.p, 6)) for d in draws]


def same_masks(port_draws: list[Draw], transposed: tuple[list[int], tuple[int, int]] | None) -> str:
    """The verdict on the masks when every draw agreed and an output differs; ``transposed``:
    the draws and the axes of their drawn shape which, swapped in torch's masks, give the port's
    outputs (:func:`flashdrop.testing._axis_order.transposed_draw`), if any."""
    if not port_draws:
        return "no dropout draws on either side, so the math differs"
    n = len(port_draws)
    line = (
        f"same masks, the math differs: the port made torch's {n} draw{'s' * (n > 1)} (shape, p "
        "and mask of each), and computes something else with them"
    )
    if transposed is not None:
        (index, *others), (a, b) = transposed
        draw = port_draws[index]
        also = ", ".join(f"#{i + 1}" for i in others)
        also = f", and of {also} made at the same line," if others else ""
        masks = "those masks'" if others else "that mask's"
        module = "" if draw.module is None else f", in {draw.where()}"
        line += (
            f"; it applies the mask of draw #{index + 1} ({draw.op}, shape {draw.drawn()}"
            f"{module}){also} in another order of its axes: torch's outputs with {masks} "
            f"axes {a} and {b} swapped are the port's (a mask drawn on (N, L, E) where torch "
            "draws it on (L, N, E) draws torch's numbers when N == L, and puts them elsewhere)"
        )
    elif any(_drops_channels(d.op) for d in port_draws):
        line += (
            "; a channels-last port whose channel dropout lacks channel_dim=-1 draws torch's "
            "masks when H == C, and applies them along the wrong axis"
        )
    return line


def _drops_channels(op: str) -> bool:
    """Whether a draw's ``op`` (flashdrop's function) drops whole channels, found at channel_dim."""
    member = named(op)
    return member is not None and member.channel
