"""The report as Markdown, written between two marker lines of a page (the docs' table)."""

import os

from .figures import duration
from .machine import describe
from .memory import describe_growth
from .targets import figure, verdict
from .workloads import (
    FD_COMPILED,
    FD_ELEMENT,
    FD_MLX,
    FD_TORCH_MODE,
    MLX_NN,
    MLX_TIMES_2,
    THROUGH_TORCH,
    TORCH,
)

BEGIN = "<!-- bench.py --markdown: begin -->"
END = "<!-- bench.py --markdown: end -->"

# The table's columns: implementation key, title, and the key its ratio in parentheses is to.
COLUMNS = (
    (FD_MLX, "flashdrop mlx eager", MLX_NN),
    (FD_COMPILED, "flashdrop compiled", MLX_NN),
    (MLX_NN, "`mlx.nn`", None),
    (TORCH, "torch CPU", None),
    (FD_TORCH_MODE, "flashdrop torch mode", TORCH),
    (THROUGH_TORCH, "torch's kernel, state in and out, copy to MLX", TORCH),
    (FD_ELEMENT, "element dropout, same input", None),
    (MLX_TIMES_2, "`x * 2`, same input", None),
)


def markdown_report(report: dict) -> str:
    """The report as Markdown: how and where it was measured, the times, the targets."""
    where, versions = describe(report["machine"])
    run = (
        "a --quick run: few rounds, no 16M workloads, not a measurement to quote"
        if report["quick"]
        else f"a full run, {report['total_s']:.0f} s"
    )
    lines = [
        f"Measured {report['date']} by `python scripts/bench.py --markdown` ({run}), p = "
        f"{report['p']}, on {where}, {versions}, flashdrop {report['machine']['flashdrop']}. "
        "Memory copy of 16M float32: "
        + ", ".join(f"{name} {gbps:.1f} GB/s" for name, gbps in report["copy_gbps"].items())
        + ".",
        "",
        "Median time per call; in parentheses, the median of per-round ratios to the column "
        "named: flashdrop's mlx mode to `mlx.nn`, its torch mode and the draws through torch's "
        "own kernel to torch.",
        "",
    ]
    by_workload: dict[str, dict[str, dict]] = {}
    for row in report["rows"]:
        by_workload.setdefault(row["workload"], {})[row["impl"]] = row
    columns = [c for c in COLUMNS if any(c[0] in w for w in by_workload.values())]
    lines.append("| workload | " + " | ".join(title for _, title, _ in columns) + " |")
    lines.append("| --- " * (len(columns) + 1) + "|")
    for workload, rows in by_workload.items():
        cells = []
        for key, _, reference in columns:
            row = rows.get(key)
            if row is None:
                cells.append("-")
                continue
            cell = duration(row["median_s"])
            if reference is not None and reference in row["ratios"]:
                cell += f" ({row['ratios'][reference]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    lines += ["", "| target | limit | measured | result |", "| --- | --- | --- | --- |"]
    for t in report["targets"]:
        unit = t.get("unit", "x")
        measured = "-" if t["measured"] is None else figure(t["measured"], unit)
        result = verdict(t)
        if t["met"] is False:
            result = f"**{result}**" + (f": {t['why']}" if t.get("why") else "")
        lines.append(f"| {t['text']} | {figure(t['limit'], unit)} | {measured} | {result} |")
    if report.get("many_shapes_memory") is not None:
        lines += ["", describe_growth(report["many_shapes_memory"]) + "."]
    return "\n".join(lines) + "\n"


def markdown_slot(path: str) -> tuple[str, str]:
    """What ``path`` holds before and after its markers ("" and "\\n" for a missing file).

    Raises:
        ValueError: ``path`` exists but lacks the two marker lines, in that order.
    """
    if not os.path.exists(path):
        return "", "\n"
    with open(path) as f:
        text = f.read()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"{path} has no {BEGIN!r} ... {END!r} lines to write between")
    return text[:begin], text[end + len(END) :]


def write_markdown(path: str, report: dict) -> None:
    """Put the Markdown report between the markers of ``path``, or create ``path`` with them."""
    before, after = markdown_slot(path)
    with open(path, "w") as f:
        f.write(f"{before}{BEGIN}\n{markdown_report(report)}{END}{after}")
