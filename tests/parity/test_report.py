"""The parity report, ``python -m flashdrop.parity``: it runs, it passes, and it can fail."""

import contextlib
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import _dropout, compat, nn, parity
from flashdrop._builds import Builds
from flashdrop.parity import grid, plot, report
from tests._support.names import LAYERS

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(
    r"^(PASS|FAIL): (\d+) rows: (\d+) bit-exact, (\d+) statistically equivalent, (\d+) failed$"
)


def run_module(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_quick_report_passes_and_covers_every_op_and_both_modes():
    result = run_module("-m", "flashdrop.parity", "--quick", "--all")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    verdict = VERDICT.match(lines[0])  # the verdict comes first
    assert verdict, lines[:3]
    word, rows, exact, equivalent, failed = verdict.groups()
    rows, exact, equivalent, failed = map(int, (rows, exact, equivalent, failed))
    assert word == "PASS" and failed == 0
    assert rows == exact + equivalent > 0
    assert lines[1].startswith(f"flashdrop {flashdrop.__version__} parity report, on mlx ")
    assert f": {Builds.now().line()}; machine: " in lines[1]  # both builds, named
    # The per-op summary, then (--all) the table of every row, both starting with an op's label.
    labelled = [line for line in lines if line.startswith(("F.", "nn."))]
    summary, table = labelled[: len(grid.OPS)], labelled[len(grid.OPS) :]
    assert [line.split()[0] for line in summary] == [op.label for op in grid.OPS]
    assert sum(int(line.split()[1]) for line in summary) == rows
    assert len(table) == rows
    modes = {re.search(r"\s(torch|mlx)\s", line).group(1) for line in table}
    assert modes == {"torch", "mlx"}
    ops = {line.split()[0] for line in table}
    for name in F.__all__:  # the report covers torch.nn's dropout twins (not yet attention)
        if hasattr(torch.nn.functional, name) and name != "scaled_dot_product_attention":
            assert f"F.{name}" in ops
    for name in nn.__all__:
        if name != "functional" and hasattr(torch.nn, name) and name not in LAYERS:
            assert f"nn.{name}" in ops
    assert "false-failure rate" in result.stdout
    assert "--all" not in result.stdout  # the hint is for the short form
    assert f"[{rows}/{rows}]" in result.stderr  # progress, as plain lines when not a terminal


def report_of(monkeypatch, rows, *args):
    """``main(args)``'s exit status and printed lines, the grid's rows replaced by ``rows``."""
    monkeypatch.setattr(report, "_run_grid", lambda *_: rows)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = report.main(["--quick", *args])
    return status, out.getvalue().splitlines()


def made_row(label, mode, problems=()):
    done = report.Row(label, "float32", "(64, 256)", 0.5, mode, time_theirs=1e-3, time_ours=2e-3)
    done.bit_exact = (not problems) if mode == "torch" else None
    done.p_value = None if mode == "torch" else 0.5
    done.problems = list(problems)
    return done


def test_the_short_form_is_the_verdict_and_one_line_per_op(monkeypatch):
    rows = [made_row(label, mode) for label in ("F.dropout", "nn.Dropout") for mode in grid.MODES]
    status, lines = report_of(monkeypatch, rows)
    assert status == 0
    assert lines[0] == "PASS: 4 rows: 2 bit-exact, 2 statistically equivalent, 0 failed"
    labelled = [line.split() for line in lines if line.startswith(("F.", "nn."))]
    # op, rows, bit-exact, equivalent, failed, lowest p-value, median ms of torch and flashdrop
    assert labelled == [
        ["F.dropout", "2", "1/1", "1/1", "0", "0.50", "1.000", "2.000"],
        ["nn.Dropout", "2", "1/1", "1/1", "0", "0.50", "1.000", "2.000"],
    ]
    assert lines[-1] == "Every row, with its shape, dtype and p: python -m flashdrop.parity --all"
    assert "Failures:" not in lines


def test_a_failed_row_makes_the_verdict_fail_and_is_listed(monkeypatch):
    rows = [
        made_row("F.dropout", "torch"),
        made_row("F.dropout", "mlx", ["keep rates differ (p-value < 1e-06)"]),
    ]
    status, lines = report_of(monkeypatch, rows)
    assert status == 1
    assert lines[0] == "FAIL: 2 rows: 1 bit-exact, 0 statistically equivalent, 1 failed"
    assert lines[lines.index("Failures:") + 1] == (
        "  F.dropout float32 (64, 256) p=0.5 mlx: keep rates differ (p-value < 1e-06)"
    )
    assert [line.split()[:5] for line in lines if line.startswith("F.")] == [
        ["F.dropout", "2", "1/1", "0/1", "1"]
    ]


def test_plot_without_matplotlib_exits_2_with_the_install_hint(tmp_path):
    png = tmp_path / "keep.png"
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"  # as if not installed
        "from flashdrop.parity import main\n"
        f"sys.exit(main(['--quick', '--plot', {str(png)!r}]))\n"
    )
    result = run_module("-c", code)
    assert result.returncode == 2
    assert "pip install '.[plot]' in flashdrop's clone" in result.stderr
    assert "[1/" not in result.stderr  # nothing ran
    assert not png.exists()


def test_plot_draws_a_png_titled_with_the_torch_compared(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    png = tmp_path / "keep.png"
    plt, figures = plot.import_pyplot(), []
    monkeypatch.setattr(plt, "close", figures.append)  # the figure, kept open to read its title
    compared = Builds.now().compared
    plot.draw_plot(plt, compat.import_torch(), str(png), 20, 0, compared)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (
        figures[0]
        .get_suptitle()
        .startswith(
            f"Per-call keep rates: {compared} (this machine) vs flashdrop {flashdrop.__version__} "
            "(mlx mode, which emulates no torch)"
        )
    )
    monkeypatch.undo()
    plt.close(figures[0])


def test_p_value_of_equal_proportions_is_one():
    assert parity.two_proportion_p_value(500, 1000, 500, 1000) == 1.0
    assert parity.two_proportion_p_value(5000, 10000, 500, 1000) == 1.0
    # p = 0 and p = 1: every draw went the same way on both sides.
    assert parity.two_proportion_p_value(0, 1000, 0, 50) == 1.0
    assert parity.two_proportion_p_value(1000, 1000, 50, 50) == 1.0


def test_p_value_known_values():
    # 60/100 vs 40/100: pooled 0.5, z = 0.2 / sqrt(0.25 * 0.02) = 2*sqrt(2), p = erfc(2).
    assert parity.two_proportion_p_value(60, 100, 40, 100) == pytest.approx(math.erfc(2))
    assert parity.two_proportion_p_value(60, 100, 40, 100) == pytest.approx(0.0046777, rel=1e-4)
    assert parity.two_proportion_p_value(40, 100, 60, 100) == pytest.approx(math.erfc(2))
    # A small difference over few draws is no evidence.
    assert parity.two_proportion_p_value(51, 100, 49, 100) > 0.7


def test_p_value_of_a_huge_difference_is_tiny():
    assert parity.two_proportion_p_value(50_000, 100_000, 52_000, 100_000) < 1e-15
    assert parity.two_proportion_p_value(9000, 10_000, 1000, 10_000) < 1e-300


def test_p_value_needs_draws():
    with pytest.raises(ValueError):
        parity.two_proportion_p_value(0, 0, 1, 2)


def row(label, mode, dtype="float32", p=0.5):
    op = next(op for op in grid.OPS if op.label == label)
    return report.run_row(compat.import_torch(), grid.QUICK, op, op.cases[0], dtype, p, mode, 7)


@pytest.mark.parametrize("label", ["F.dropout", "nn.FeatureAlphaDropout"])
@pytest.mark.parametrize("mode", grid.MODES)
def test_a_correct_row_passes(label, mode):
    result = row(label, mode)
    assert not result.failed, result.problems
    assert result.ours.draws >= (grid.QUICK.draws if mode == "mlx" else 1)


def test_a_wrong_keep_probability_fails_the_statistical_row(monkeypatch):
    import mlx.core as mx

    monkeypatch.setattr(_dropout, "_keep_probability", lambda p: mx.array(1 - p + 0.03))
    result = row("nn.Dropout2d", "mlx")
    assert result.ours.clean  # the values are right, the rate is not
    assert result.p_value < parity.P_VALUE_THRESHOLD
    assert result.failed


def test_wrong_values_fail_both_modes(monkeypatch):
    import mlx.core as mx

    scale = _dropout._scale
    monkeypatch.setattr(_dropout, "_scale", lambda *args: scale(*args) * mx.array(1.001))
    torch_row, mlx_row = row("F.dropout", "torch"), row("F.dropout", "mlx")
    assert torch_row.bit_exact is False and torch_row.failed
    assert not mlx_row.ours.clean and mlx_row.failed


def test_a_mask_per_element_fails_feature_dropout(monkeypatch):
    monkeypatch.setattr(_dropout, "_feature_noise_shape", lambda input, *_: input.shape)
    result = row("F.dropout3d", "mlx")
    assert result.ours.split > 0 and result.failed
