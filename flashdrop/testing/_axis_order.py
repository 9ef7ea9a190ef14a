"""Evidence for "the port applies torch's mask in another order of its axes".

A port that draws a mask on ``(N, L, E)`` where torch draws it on ``(L, N, E)`` draws the very
numbers torch draws when ``N == L``, and puts them at other positions: every draw agrees and
only the outputs differ. Before the helpers say so, they check it: torch is run again from the
same random state with that draw's mask transposed (:func:`compat.recording.transposing_draws`),
and the hint is given only when this gives the port's outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

from flashdrop import compat
from flashdrop._recording import Draw
from flashdrop.compat.recording import transposing_draws
from flashdrop.testing._outputs import Inputs, call_args

__all__ = ["transposed_draw"]


def transposed_draw(
    torch_obj: Callable[..., Any],
    originals: Inputs,
    state: Any,
    draws: list[Draw],
    agrees: Callable[[Any], bool],
) -> tuple[list[int], tuple[int, int]] | None:
    """The draws (0-based) and the two axes of their drawn shape (:meth:`Draw.drawn`) which,
    swapped in torch's masks, make torch's output one that ``agrees`` (with the port's);
    ``None`` when no swap of two axes of equal size does.

    A draw is tried with the port's other draws of the same op and shape made at the same call
    site (a layer class used in every block draws at one line of code), then alone. ``state`` is
    torch's random state at the start of the call; the random state is restored afterwards.
    """
    torch = compat.import_torch()
    tried: set[tuple[tuple[int, ...], tuple[int, int]]] = set()
    for index, draw in enumerate(draws):
        drawn = draw.drawn()
        if draw.mask is None:
            continue
        alike = [i for i, d in enumerate(draws) if _same_place(d, draw)]
        for axes in combinations(range(len(drawn)), 2):
            if drawn[axes[0]] != drawn[axes[1]]:
                continue
            for group in (alike, [index]):
                if (tuple(group), axes) in tried:
                    continue
                tried.add((tuple(group), axes))
                with (
                    torch.random.fork_rng(devices=[]),
                    torch.no_grad(),
                    transposing_draws(set(group), axes),
                ):
                    torch.set_rng_state(state)
                    args, kwargs = call_args(originals)[0]
                    replayed = torch_obj(*args, **kwargs)
                if agrees(replayed):
                    return group, axes
    return None


def _same_place(a: Draw, b: Draw) -> bool:
    """Whether two draws were made by one line of code, with the same op and shape."""
    return (a.op, a.site, a.shape) == (b.op, b.site, b.shape)
