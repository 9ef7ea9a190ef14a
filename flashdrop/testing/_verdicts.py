"""The verdict on two sides' draws: the first that differs, how, and what may have caused it."""

from __future__ import annotations

from typing import Any

import mlx.nn
import numpy as np
from mlx.utils import tree_flatten

from flashdrop import compat
from flashdrop import nn as fnn
from flashdrop._family import MEMBERS, named
from flashdrop._recording import Draw
from flashdrop.testing._outputs import SHOWN

__all__ = ["differs_in", "draws_verdict", "same_masks", "unmatched"]

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


def unmatched(longer: list[Draw], shorter: list[Draw]) -> list[int] | None:
    """The draws of ``longer`` (0-based) left over when ``shorter`` is matched to it in order,
    each draw to the first that agrees with it (shape and p); ``None`` if it cannot be."""
    left, j = [], 0
    for i, draw in enumerate(longer):
        if j < len(shorter) and differs_in(draw, shorter[j], False) is None:
            j += 1
        else:
            left.append(i)
    return left if j == len(shorter) else None


def draws_verdict(
    theirs: list[Draw], ours: list[Draw], torch_obj: Any, port: Any, masks: bool
) -> list[str]:
    """Empty when the port made torch's draws; else the first line (after the header) and the
    lines naming the first draw that differs, with hints."""
    counts = f"torch drew {_times(len(theirs))}, the port {_times(len(ours))}"
    if len(theirs) != len(ours):
        longer, shorter = (theirs, ours) if len(theirs) > len(ours) else (ours, theirs)
        left = unmatched(longer, shorter)
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
            if (how := differs_in(t, o, masks)) is not None
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
    at = [tuple(int(k) for k in np.unravel_index(j, t.shape)) for j in differ[:SHOWN]]
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


def same_masks(port_draws: list[Draw]) -> str:
    """The verdict on the masks when every draw agreed and an output differs."""
    if not port_draws:
        return "no dropout draws on either side, so the math differs"
    n = len(port_draws)
    line = (
        f"same masks, the math differs: the port made torch's {n} draw{'s' * (n > 1)} (shape, p "
        "and mask of each), and computes something else with them"
    )
    if any(_drops_channels(d.op) for d in port_draws):
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


def _is_module(value: Any) -> bool:
    return isinstance(value, mlx.nn.Module)


def _flashdrop_layers(model: mlx.nn.Module) -> list[tuple[str, mlx.nn.Module]]:
    """The dropout-like modules of an MLX model, in registration order, with their names: MLX's,
    and flashdrop's twins of the originals compat.port_dropout ports (and their subclasses)."""
    twins = tuple(getattr(fnn, m.module) for m in MEMBERS if m.original is not None)
    found = []

    def visit(name: str, module: mlx.nn.Module) -> None:
        if isinstance(module, twins) or _is_mlx_dropout(module):
            found.append((name, module))
        for child_name, child in tree_flatten(module.children(), is_leaf=_is_module):
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return found


def _drops_channels(op: str) -> bool:
    """Whether a draw's ``op`` (flashdrop's function) drops whole channels, found at channel_dim."""
    member = named(op)
    return member is not None and member.channel


def _is_mlx_dropout(module: Any) -> bool:
    """MLX's own dropout layers, which draw from MLX's stream even in flashdrop's torch mode."""
    cls = type(module)
    return cls.__module__.startswith("mlx.nn") and cls.__name__.startswith("Dropout")
