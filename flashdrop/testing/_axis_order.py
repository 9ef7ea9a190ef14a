"""Evidence for "the port applies torch's mask in another order of its axes".

A port that draws a mask on ``(N, L, E)`` where torch draws it on ``(L, N, E)`` draws the very
numbers torch draws when ``N == L``, and puts them at other positions: every draw agrees and
only the outputs differ. Before the helpers say so, they check it: torch is run again from the
same random state with that draw's mask transposed (:func:`compat.recording.transposing_draw`),
and the hint is given only when this gives the port's outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

from flashdrop import compat
from flashdrop._recording import Draw
from flashdrop.compat.recording import transposing_draw
from flashdrop.testing._outputs import Inputs, call_args

__all__ = ["transposed_draw"]


def transposed_draw(
    torch_obj: Callable[..., Any],
    originals: Inputs,
    state: Any,
    draws: list[Draw],
    agrees: Callable[[Any], bool],
) -> tuple[int, tuple[int, int]] | None:
    """The draw (0-based) and the two axes of its drawn shape (:meth:`Draw.drawn`) which, swapped
    in torch's mask, make torch's output one that ``agrees`` (with the port's); ``None`` when no
    swap of two axes of equal size does.

    ``state`` is torch's random state at the start of the call; the random state is restored
    afterwards.
    """
    torch = compat.import_torch()
    for index, draw in enumerate(draws):
        drawn = draw.drawn()
        for axes in combinations(range(len(drawn)), 2):
            if draw.mask is None or drawn[axes[0]] != drawn[axes[1]]:
                continue
            with torch.random.fork_rng(devices=[]), torch.no_grad(), transposing_draw(index, axes):
                torch.set_rng_state(state)
                args, kwargs = call_args(originals)[0]
                replayed = torch_obj(*args, **kwargs)
            if agrees(replayed):
                return index, axes
    return None
