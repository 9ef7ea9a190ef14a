"""scripts/bench.py runs to the end in --quick mode and writes the report it promises.

Only the shape of the report is checked: speed is never asserted in tests.
"""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"

QUICK_WORKLOADS = [
    "dropout 4K f32",
    "dropout 64K f32",
    "dropout 1M f32",
    "dropout2d (32,256,64,64) f32",
    "dropout2d, MLX cache 1 GiB",
    "alpha_dropout 1M f32",
    "per call (32,128) f32",
    "dropout 4M f32",
    "rand 1M",
    "randn 1M",
    "normal 1M",
    "randint 1M",
    "randperm 1M",
    "bernoulli 1M",
    "sdpa p=0.1 (8,8,256,64) f32",
    "sdpa p=0 (8,8,256,64) f32",
    "many shapes f32",
]
DRAWS = {"rand 1M", "randn 1M", "normal 1M", "randint 1M", "randperm 1M", "bernoulli 1M"}
NO_MLX_LAYER = {"alpha_dropout 1M f32", *DRAWS}  # MLX has no alpha dropout, no such layers
IMPLS = {"flashdrop-mlx", "flashdrop-mlx-compiled", "torch", "flashdrop-torch-mode"}
ROW_KEYS = {
    "workload",
    "kind",
    "shape",
    "dtype",
    "impl",
    "label",
    "rounds",
    "median_s",
    "q1_s",
    "q3_s",
    "ratio_vs_mlx_nn",
    "ratio_vs_torch",
    "ratios",
    "gbps",
    "fraction_of_copy",
}


PAGE = """# Performance

Text before the table.

<!-- bench.py --markdown: begin -->
the table of an earlier run
<!-- bench.py --markdown: end -->

Text after it.
"""


def test_quick_run_writes_the_json_report_and_the_markdown_table(tmp_path):
    out = tmp_path / "bench.json"
    page = tmp_path / "performance.md"
    page.write_text(PAGE)
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out), "--markdown", str(page)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout

    report = json.loads(out.read_text())
    assert {
        "date",
        "machine",
        "quick",
        "p",
        "copy_gbps",
        "copy_reference",
        "rows",
        "many_shapes_memory",
    } <= set(report)
    assert report["quick"] is True
    assert {"platform", "cpu_count", "mlx", "torch"} <= set(report["machine"])
    assert report["copy_reference"] in report["copy_gbps"]

    rows = report["rows"]
    assert all(set(row) == ROW_KEYS for row in rows)
    assert all(isinstance(row["median_s"], float) for row in rows)
    # --quick skips the 16M workloads and keeps the others, in order.
    assert list(dict.fromkeys(row["workload"] for row in rows)) == QUICK_WORKLOADS
    impls = {w: {r["impl"] for r in rows if r["workload"] == w} for w in QUICK_WORKLOADS}
    for workload, found in impls.items():
        expected = set(IMPLS)
        if workload == "many shapes f32":  # every call a new shape: nothing to compile
            expected.discard("flashdrop-mlx-compiled")
        if workload not in NO_MLX_LAYER:
            expected.add("mlx.nn")
        if workload.startswith("dropout2d"):
            expected |= {"flashdrop-mlx-element", "mlx-times-2"}
        assert found == expected, workload
    for row in rows:
        assert (row["ratio_vs_mlx_nn"] is None) == (row["workload"] in NO_MLX_LAYER)

    targets = report["targets"]
    assert len(targets) == 21
    assert all({"text", "limit", "measured", "met"} <= set(t) for t in targets)
    # The 16M targets are not measured with --quick; the others are.
    assert [t["met"] is None for t in targets] == ["16M" in t["workload"] for t in targets]

    memory = report["many_shapes_memory"]
    assert memory["shapes"] == 2000
    assert set(memory["rss_growth_bytes"]) == {"flashdrop-mlx", "mlx.nn"}
    assert isinstance(memory["met"], bool)

    # The Markdown table replaced the earlier one and nothing else: one row per workload, one
    # per target, the machine and the date, and a warning that --quick figures are not for quoting.
    text = page.read_text()
    before, rest = text.split("<!-- bench.py --markdown: begin -->\n")
    table, after = rest.split("<!-- bench.py --markdown: end -->")
    assert before == PAGE.split("<!-- bench.py --markdown: begin -->")[0]
    assert after == PAGE.split("<!-- bench.py --markdown: end -->")[1]
    assert "earlier run" not in table
    assert report["date"] in table and report["machine"]["platform"] in table
    assert "--quick run" in table
    for workload in QUICK_WORKLOADS:
        assert sum(line.startswith(f"| {workload} |") for line in table.splitlines()) == 1
    assert sum(line.startswith("| mlx eager") for line in table.splitlines()) == 6
    assert table.count("not measured") == 4  # the 16M targets
    assert sum(line.startswith("| many shapes: RSS growth") for line in table.splitlines()) == 1


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600
    )


def test_markdown_from_an_earlier_json_and_a_page_without_markers(tmp_path):
    report = {
        "date": "2026-01-02 03:04 UTC",
        "machine": {
            "platform": "Linux-test",
            "machine": "x86_64",
            "cpu_count": 2,
            "python": "3.11.7",
            "mlx": "0.32.4",
            "mlx_device": "Device(cpu, 0)",
            "mlx_cache_limit_bytes": 2**25,
            "torch": "2.13.0+cpu",
            "torch_threads": 2,
            "omp_wait_policy": "PASSIVE",
            "numpy": "2.4.6",
            "flashdrop": "0.1.0",
        },
        "quick": False,
        "total_s": 77.0,
        "p": 0.5,
        "copy_gbps": {"numpy np.copyto": 10.0},
        "rows": [
            {"workload": "dropout 4K f32", "impl": impl, "median_s": s, "ratios": ratios}
            for impl, s, ratios in [
                ("flashdrop-mlx", 2e-4, {"mlx.nn": 0.97, "torch": 1.4}),
                ("mlx.nn", 2.06e-4, {}),
                ("torch", 1.42e-4, {}),
                ("flashdrop-torch-mode", 2.93e-4, {"torch": 2.05}),
            ]
        ],
        "targets": [
            {"text": "mlx eager <= 1.0x mlx.nn.Dropout, 4K f32", "limit": 1.0, "measured": 0.97,
             "met": True},
        ],
    }  # fmt: skip
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(report))
    page = tmp_path / "new.md"
    done = run_bench("--from-json", str(source), "--markdown", str(page))
    assert done.returncode == 0, done.stderr
    lines = page.read_text().splitlines()
    assert lines[0] == "<!-- bench.py --markdown: begin -->"
    assert lines[-1] == "<!-- bench.py --markdown: end -->"
    assert "Measured 2026-01-02 03:04 UTC" in lines[1] and "a full run, 77 s" in lines[1]
    assert "| dropout 4K f32 | 200 us (0.97x) | 206 us | 142 us | 293 us (2.05x) |" in lines
    assert "| mlx eager <= 1.0x mlx.nn.Dropout, 4K f32 | 1.00x | 0.97x | yes |" in lines

    unmarked = tmp_path / "unmarked.md"
    unmarked.write_text("# a page without the markers\n")
    done = run_bench("--quick", "--markdown", str(unmarked))  # refused before anything runs
    assert done.returncode == 2
    assert "has no '<!-- bench.py --markdown: begin -->'" in done.stderr
    assert unmarked.read_text() == "# a page without the markers\n"
