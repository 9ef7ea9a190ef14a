"""The examples/ scripts: each runs with ``--quick``, passes its checks, and exits 0."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The example scripts: not the shared helpers (_common.py) nor pytest files (test_*.py).
SCRIPTS = sorted(
    path.name for path in EXAMPLES.glob("[!_]*.py") if not path.name.startswith("test_")
)

PARITY = re.compile(
    r"^PASS: (.+): training-mode output equals torch's: max abs diff (\S+), tolerance (\S+) ",
    re.M,
)


def run(*args: str) -> subprocess.CompletedProcess:
    """``python *args`` in the repository root, as the README tells users to run the examples."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_example_models_are_there():
    assert SCRIPTS == [
        "cnn_dropout2d.py",
        "lstm_dropout.py",
        "mlp_dropout.py",
        "nanogpt_attention.py",
        "nanogpt_training_loop.py",
        "snn_alpha_dropout.py",
        "torch_attention_layers.py",
        "transformer_encoder.py",
        "video_dropout3d.py",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_quick_and_every_check_passes(script):
    result = run(f"examples/{script}", "--quick")
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "FAIL" not in out
    assert out.rstrip().splitlines()[-1] == "all checks passed"

    parity = PARITY.findall(out)
    assert parity, out
    for _, diff, tol in parity:
        assert float(diff) <= float(tol) <= 1e-4
    # Every model (the CNN has two ports) also trained and was checked in both modes.
    for name, _, _ in parity:
        assert re.search(rf"^PASS: {name}: loss goes down, eval loss \S+ -> \S+$", out, re.M)
        assert f"PASS: {name}: eval mode is deterministic\n" in out
        assert f"PASS: {name}: training mode is random\n" in out


def test_a_failed_check_makes_the_exit_status_nonzero():
    code = (
        "import sys; sys.path.insert(0, 'examples'); import _common; "
        "_common.check(False, 'forced'); raise SystemExit(_common.report())"
    )
    result = run("-c", code)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["FAIL: forced", "FAILED: 1 check(s)"]


def test_nanogpt_loop_matches_torch_step_by_step():
    """The whole training loop (batches, dropout, LayerDrop) in torch mode: torch's losses."""
    result = run("examples/nanogpt_training_loop.py", "--quick", "--steps", "8")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(
        r"^PASS: nanoGPT loop: 8 steps of batches, dropout and LayerDrop give torch's losses",
        result.stdout,
        re.M,
    )
