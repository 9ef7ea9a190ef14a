"""The command line of ``scripts/bench.py``."""

import argparse
import datetime
import json
import sys
import time

import flashdrop

from .layers import layer_rows
from .machine import machine_info
from .markdown import markdown_slot, write_markdown
from .measure import measure_copies, run_many_shapes, run_workload
from .memory import many_shapes_memory_worker, measure_many_shapes_memory
from .targets import evaluate_targets
from .terminal import print_report
from .workloads import MANY_SHAPES, WORKLOADS, P


def parse(
    argv: list[str] | None, description: str | None
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, no 16M workloads")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument(
        "--only", metavar="TEXT", nargs="+", help="only the workloads whose name has a TEXT"
    )
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the results as Markdown tables between the bench.py markers of FILE",
    )
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="run nothing: report the results of an earlier --json FILE (and write --markdown)",
    )
    parser.add_argument(
        "--many-shapes-memory", nargs=2, metavar=("IMPL", "COUNT"), help=argparse.SUPPRESS
    )
    return parser, parser.parse_args(argv)


def run(quick: bool, only: list[str] | None) -> dict:
    """Measure everything ``only`` names (everything where None) and judge the targets."""
    machine = machine_info()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flashdrop.set_rng_mode("mlx")
    flashdrop.manual_seed(0)
    started = time.perf_counter()
    copies = measure_copies(quick)
    reference = max(copies, key=copies.get)
    rows: list[dict] = []
    for w in WORKLOADS:
        rounds = w.rounds_for(quick)
        if rounds == 0 or (only and not any(text in w.name for text in only)):
            continue
        t0 = time.perf_counter()
        rows += run_workload(w, quick, copies[reference])
        print(f"  {w.name}: {rounds} rounds, {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    layers = layer_rows(quick, only)
    rows += layers
    if layers:
        print(f"  layers: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    memory = None
    if not only or any(text in MANY_SHAPES for text in only):
        t0 = time.perf_counter()
        rows += run_many_shapes(quick, copies[reference])
        memory = measure_many_shapes_memory(quick)
        print(f"  {MANY_SHAPES}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return {
        "date": date,
        "machine": machine,
        "quick": quick,
        "p": P,
        "copy_gbps": copies,
        "copy_reference": reference,
        "rows": rows,
        "targets": evaluate_targets(rows, memory),
        "many_shapes_memory": memory,
        "total_s": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None, description: str | None = None) -> int:
    parser, args = parse(argv, description)
    if args.many_shapes_memory:  # the worker measure_many_shapes_memory starts
        impl, count = args.many_shapes_memory
        print(json.dumps(many_shapes_memory_worker(impl, int(count))))
        return 0
    if args.markdown:
        try:
            markdown_slot(args.markdown)  # refused now, not after the run
        except ValueError as error:
            parser.error(str(error))
    if args.from_json:
        with open(args.from_json) as f:
            report = json.load(f)
        # judged anew, so that an earlier run's figures get today's targets and reasons
        report["targets"] = evaluate_targets(report["rows"], report.get("many_shapes_memory"))
    else:
        report = run(args.quick, args.only)
    print_report(report)
    if args.json and not args.from_json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        write_markdown(args.markdown, report)
    return 0
