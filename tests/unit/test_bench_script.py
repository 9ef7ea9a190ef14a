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


def test_quick_run_writes_the_json_report(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "targets" in done.stdout

    report = json.loads(out.read_text())
    assert {"machine", "quick", "p", "copy_gbps", "copy_reference", "rows", "targets"} <= set(
        report
    )
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
        if workload not in NO_MLX_LAYER:
            expected.add("mlx.nn")
        if workload.startswith("dropout2d"):
            expected |= {"flashdrop-mlx-element", "mlx-times-2"}
        assert found == expected, workload
    for row in rows:
        assert (row["ratio_vs_mlx_nn"] is None) == (row["workload"] in NO_MLX_LAYER)

    targets = report["targets"]
    assert len(targets) == 18
    assert all({"text", "limit", "measured", "met"} <= set(t) for t in targets)
    # The 16M targets are not measured with --quick; the others are.
    assert [t["met"] is None for t in targets] == ["16M" in t["workload"] for t in targets]
