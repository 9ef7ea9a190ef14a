"""The plot: histograms of per-call keep rates, torch next to flashdrop (``--plot``)."""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx

import flashdrop
import flashdrop.nn.functional as F
from flashdrop.parity._types import Torch

__all__ = ["PLOT_HINT", "draw_plot", "import_pyplot"]


PLOT_HINT = (
    "--plot needs matplotlib, an optional extra of flashdrop: pip install '.[plot]' in "
    "flashdrop's clone"
    " (or pip install matplotlib)"
)


def import_pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend; ImportError when not installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Per plot row: label, torch op, flashdrop op, input shape, leading dims of one draw.
_PLOT_OPS = (
    ("F.dropout", "dropout", (64, 64), 2),
    ("F.dropout2d", "dropout2d", (16, 64, 2, 2), 2),
)
_PLOT_PS = (0.1, 0.5, 0.9)


def _per_call_keep_rates(
    torch: Torch, name: str, shape: tuple[int, ...], unit_dims: int, p: float, calls: int
) -> tuple[list[float], list[float]]:
    """Keep rate of each of ``calls`` calls on an all-ones input: torch's, then flashdrop's."""
    x = torch.ones(shape)
    xm = mx.ones(shape)
    draw_index = (slice(None),) * unit_dims + (0,) * (len(shape) - unit_dims)
    torch_fn, our_fn = getattr(torch.nn.functional, name), getattr(F, name)
    theirs = [float((torch_fn(x, p, True)[draw_index] != 0).double().mean()) for _ in range(calls)]
    with flashdrop.rng_mode("mlx"):
        ours = [(our_fn(xm, p, True)[draw_index] != 0).mean().item() for _ in range(calls)]
    return theirs, ours


def _count_bins(mean: float, sd: float, draws: int, count: int = 30) -> list[float]:
    """About ``count`` histogram bins over mean +- 4.5 sd of a keep rate of ``draws`` draws.

    A keep rate is a multiple of ``1/draws``: each bin holds the same number of those values
    (its edges fall half-way between them), so that no bin looks taller for holding more.
    """
    step = max(1, round(9 * sd * draws / count))  # kept draws per bin
    first = math.floor((mean - 4.5 * sd) * draws)
    return [(first + step * i - 0.5) / draws for i in range(count + 1)]


def draw_plot(
    plt: Any, torch: Torch, path: str, calls: int, seed: int, compared: flashdrop.TorchTarget
) -> None:
    """Histograms of per-call keep rates, torch and flashdrop (mlx mode) side by side.

    One panel per op and p, with the binomial distribution's normal density for reference;
    ``compared``, the torch build compared, named in the title. flashdrop draws in mlx mode
    here, so no torch target is emulated.
    """
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    fig, axes = plt.subplots(
        len(_PLOT_OPS),
        len(_PLOT_PS),
        figsize=(5 * len(_PLOT_PS), 4 * len(_PLOT_OPS)),
        squeeze=False,
    )
    for (label, name, shape, unit_dims), panel_row in zip(_PLOT_OPS, axes, strict=True):
        draws = math.prod(shape[:unit_dims])
        for p, ax in zip(_PLOT_PS, panel_row, strict=True):
            theirs, ours = _per_call_keep_rates(torch, name, shape, unit_dims, p, calls)
            sd = math.sqrt(p * (1 - p) / draws)
            bins = _count_bins(1 - p, sd, draws)
            low, high = bins[0], bins[-1]
            ax.hist(
                [theirs, ours],
                bins=bins,
                label=["torch", "flashdrop (mlx mode)"],
                color=["tab:orange", "tab:blue"],
            )
            grid_x = [low + (high - low) * i / 200 for i in range(201)]
            scale = calls * (bins[1] - bins[0]) / (sd * math.sqrt(2 * math.pi))
            ax.plot(
                grid_x,
                [scale * math.exp(-(((v - (1 - p)) / sd) ** 2) / 2) for v in grid_x],
                color="black",
                linewidth=1,
                label="binomial (normal approx.)",
            )
            ax.axvline(1 - p, color="gray", linestyle=":")
            unit = "channels" if unit_dims < len(shape) else "elements"
            ax.set_title(f"{label}, p={p:g}: {draws} {unit} per call", fontsize=10)
            ax.set_xlabel("keep rate of one call")
            ax.set_ylabel(f"calls (of {calls})")
            # A fixed corner: "best" searches the data, and warns where that takes a second.
            ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"Per-call keep rates: {compared} (this machine) vs flashdrop {flashdrop.__version__}"
        f" (mlx mode, which emulates no torch), {calls} calls each"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
