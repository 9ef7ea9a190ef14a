"""Both sides' draws side by side: the table under a failed helper (the pytest plugin shows it)."""

from __future__ import annotations

from flashdrop._recording import Draw
from flashdrop.testing._verdicts import aligned, differs_in

__all__ = ["draw_table"]


def draw_table(theirs: list[Draw], ours: list[Draw], masks: bool) -> str:
    """Both sides' draws side by side, one row per draw (``#i/j`` where a draw of one side has
    no counterpart, ``-``), ``!`` where the two differ: in kind, shape or p, and with ``masks``
    (torch mode) in their masks too, unless a draw is missing (the masks after it come from
    elsewhere in the stream)."""

    def cell(draw: Draw | None) -> str:
        if draw is None:
            return "-"
        p = "" if draw.p is None else f" p={draw.p:.6g}"
        where = "" if draw.module is None else f" {draw.where()}"
        site = f" {draw.site}" if draw.site else ""
        return f"{draw.op} {draw.shape}{p}{where}{site}"

    rows = []
    pairs = aligned(theirs, ours)
    masks = masks and all(i is not None and j is not None for i, j in pairs)
    for i, j in pairs:
        t = None if i is None else theirs[i]
        o = None if j is None else ours[j]
        same = t is not None and o is not None and differs_in(t, o, masks) is None
        number = (
            f"#{i + 1}"
            if i == j
            else f"#{'-' if i is None else i + 1}/{'-' if j is None else j + 1}"
        )
        rows.append((f"{'' if same else '!'}{number}", cell(t), cell(o)))
    rows.insert(0, ("", "torch", "port"))
    widths = [max(len(row[k]) for row in rows) for k in range(2)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}} | {c}" for a, b, c in rows)
