"""The report as the terminal shows it: the header, one line per result row, the targets."""

import textwrap

from .figures import duration, ratio
from .machine import describe
from .memory import describe_growth
from .targets import figure, verdict

WIDTH = 100  # a reason wraps at this width


def print_report(report: dict) -> None:
    where, versions = describe(report["machine"])
    quick = " --quick" * report["quick"]
    print(f"flashdrop {report['machine']['flashdrop']} dropout benchmark{quick}, p = {report['p']}"
          " but where named")  # fmt: skip
    print(f"machine: {where}")
    print(versions)
    copies = report["copy_gbps"]
    print("memory copy, 16M float32 (64 MiB read + 64 MiB written): " + ", ".join(
        f"{name} {gbps:.1f} GB/s" for name, gbps in copies.items()
    ))  # fmt: skip
    print(f"'% copy' is relative to the fastest, {report['copy_reference']}.")
    print("time: median over rounds; ratios: median of per-round ratios (the lower, the faster)")
    print()

    header = (
        f"{'workload':<30} {'implementation':<36} {'median':>9} {'vs mlx.nn':>9} "
        f"{'vs torch':>8} {'GB/s':>7} {'% copy':>6} {'IQR%':>5}"
    )
    print(header)
    print("-" * len(header))
    previous = None
    for r in report["rows"]:
        if previous is not None and r["workload"] != previous:
            print()
        name = r["workload"] if r["workload"] != previous else ""
        previous = r["workload"]
        spread = 100 * (r["q3_s"] - r["q1_s"]) / r["median_s"]
        bandwidth = "      -      -"  # a layer's rows: its time is not memory traffic
        if r["gbps"] is not None:
            bandwidth = f"{r['gbps']:7.2f} {100 * r['fraction_of_copy']:5.0f}%"
        print(
            f"{name:<30} {r['label']:<36} {duration(r['median_s']):>9} "
            f"{ratio(r['ratio_vs_mlx_nn']):>9} {ratio(r['ratio_vs_torch']):>8} "
            f"{bandwidth} {spread:4.0f}%"
        )
    if report["many_shapes_memory"] is not None:
        print()
        print(describe_growth(report["many_shapes_memory"]))
    print()
    print("targets: flashdrop's time over the reference's (median of per-round ratios), at most")
    print("the limit; memory: flashdrop's resident-set growth beyond mlx.nn.Dropout's")
    for line in target_lines(report["targets"]):
        print(line)


def target_lines(targets: list[dict]) -> list[str]:
    """Each target with its figure, its limit and met or not met; under a miss, why."""
    lines = []
    width = max(len(t["text"]) for t in targets)
    for t in targets:
        unit = t.get("unit", "x")
        measured = "-" if t["measured"] is None else figure(t["measured"], unit)
        head = f"  {t['text']:<{width}} {measured:>9}  limit {figure(t['limit'], unit):<10}"
        lines.append(f"{head} {verdict(t)}")
        if t["met"] is False and t.get("why"):
            lines += textwrap.wrap(f"why: {t['why']}", WIDTH, initial_indent=" " * 6,
                                   subsequent_indent=" " * 11)  # fmt: skip
    return lines
