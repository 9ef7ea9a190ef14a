"""The verdicts name the torch builds compared: torch mode's target and the torch compared.

Against the real torch 2.13 of the test environment: a target of another release (torch 2.6 on
x86-64, whose dropout masks come from Intel MKL) fails a correct port from its very first mask,
and the message names both builds and how to set the target (and setting it as told passes); a
port going wrong at a later draw gets no such hint. Inside models: an MLP and a two-layer
Transformer encoder (whose first draw is the attention's).
"""

import re

import flashdrop
from flashdrop import _random, compat
from flashdrop._builds import Builds
from flashdrop.parity import grid, report
from flashdrop.testing import assert_same_as_torch, assert_statistically_equivalent
from tests._support.checks import randn
from tests.parity.test_testing_helpers import ATOL, mlp
from tests.parity.test_verdicts_on_models import encoder

HINT = "the very first mask differs"
TORCH = compat.import_torch()
HERE = _random.this_cpu()
# What torch 2.13 compared here is, as the messages name it.
COMPARED = f"{_random.TorchTarget(TORCH.__version__, HERE)}"


def message_of(check, *args, **kwargs) -> list[str]:
    """The lines of the message of the AssertionError ``check(*args, **kwargs)`` raises."""
    try:
        check(*args, **kwargs)
    except AssertionError as error:
        return str(error).splitlines()
    raise AssertionError(f"{check.__name__} passed")


def models():
    """(name, torch model, port, input, tolerances) of the models checked here."""
    model, port = mlp("L R D0.3 L R D0.1 L")
    yield "mlp", model, port, randn(8, 16), {"atol": ATOL}
    model, port, x = encoder()
    yield "encoder", model, port, x, {}


def test_the_torch_of_these_tests_is_2_13():
    assert TORCH.__version__.split("+")[0] == "2.13.0"  # the scenario below needs it


def test_another_release_as_target_fails_from_the_first_mask_naming_both_and_the_fix():
    for name, model, port, x, tolerances in models():
        with flashdrop.torch_target("2.6", cpu="amd") as target:  # MKL's masks, not mt19937's
            lines = message_of(assert_same_as_torch, model, port, x, **tolerances)
        assert lines[0].startswith("the port differs from torch at call 1 of 3 (seed 0): "), name
        assert "draw #1 differs in its mask" in lines[0], name
        # The hint names both builds, says it as a possibility, and how to set the target.
        setting = f'version="2.13", cpu="{HERE}"'
        assert lines[-2] == (
            f"{HINT}, and the torch compared ({COMPARED}) is another build than torch mode's "
            f"target (torch 2.6 on an AMD x86-64 CPU): the two may draw differently. To emulate "
            f"the torch compared, set the target: flashdrop.set_torch_target({setting}), or "
            f"flashdrop.torch_target({setting}) as a context manager around the check (see "
            "docs/torch-versions.md)"
        ), name
        assert lines[-1] == (
            f"torch mode's target: {target}; the torch compared: {COMPARED} (this machine)"
        )
        # The existing hint on a mask from elsewhere in the stream stays.
        assert lines[-3].startswith("the same draw from another place in the stream"), name
        # Done as told, the check passes.
        told = re.search(r"flashdrop\.torch_target\((.*?)\) as a context manager", lines[-2])
        with flashdrop.torch_target(**eval(f"dict({told[1]})")):
            assert_same_as_torch(model, port, x, **tolerances)


def test_the_matching_target_passes_and_names_the_builds_of_a_failure():
    model, port = mlp("L R D0.3 L")
    with flashdrop.torch_target("2.13", cpu=HERE):
        assert_same_as_torch(model, port, randn(8, 16), atol=ATOL)
    wrong_p, _ = mlp("L R D0.4 L")
    with flashdrop.torch_target("2.10", cpu="intel"):  # read at the check, in this thread
        lines = message_of(assert_same_as_torch, wrong_p, port, randn(8, 16), atol=ATOL)
    assert "draw #1 differs in p" in lines[0]
    assert not any(HINT in line for line in lines)
    assert lines[-1] == (
        "torch mode's target: torch 2.10 on an Intel x86-64 CPU; "
        f"the torch compared: {COMPARED} (this machine)"
    )


def test_a_mask_that_differs_at_a_later_call_gets_no_target_hint():
    model, port = mlp("L R D0.3 L R D0.1 L")

    def reseeding(x):  # right at the first call, then out of step with torch's stream
        flashdrop.manual_seed(0)
        return port(x)

    lines = message_of(assert_same_as_torch, model, reseeding, randn(8, 16), atol=ATOL)
    assert lines[0].startswith("the port differs from torch at call 2 of 3 (seed 0): ")
    assert "draw #1 differs in its mask" in lines[0]
    assert lines[-2] == (
        "the same draw from another place in the stream: something before it drew from torch's "
        "generator on one side only, or reseeded"
    )
    assert not any(HINT in line or "set_torch_target" in line for line in lines)
    assert lines[-1] == Builds.now().line()


def test_a_mask_that_differs_at_a_later_draw_of_the_first_call_gets_no_target_hint():
    model, port = mlp("L R D0.3 L R D0.1 L")

    def reseeding_midway(x):  # the first mask is torch's, the second from elsewhere
        for k, layer in enumerate(port.layers):
            if k == 5:
                flashdrop.manual_seed(0)
            x = layer(x)
        return x

    lines = message_of(assert_same_as_torch, model, reseeding_midway, randn(8, 16), atol=ATOL)
    assert lines[0].startswith("the port differs from torch at call 1 of 3 (seed 0): ")
    assert "draw #2 differs in its mask" in lines[0]
    assert lines[-2].startswith("the same draw from another place in the stream")
    assert not any(HINT in line for line in lines)


def test_the_first_mask_of_the_same_build_gets_the_hint_as_a_possibility():
    model, port = mlp("L R D0.3 L")

    def reseeded(x):  # a port that reseeds with its own seed: its first mask is another
        flashdrop.manual_seed(1)
        return port(x)

    lines = message_of(assert_same_as_torch, model, reseeded, randn(8, 16), atol=ATOL)
    target = flashdrop.get_torch_target()
    assert (target.release, target.cpu) == ((2, 13), HERE)  # automatic: the torch compared
    assert lines[-2] == (
        f"{HINT}: if the torch compared ({COMPARED}) draws otherwise than torch mode's target "
        f"({target}), though it has that release and CPU (a build of its own, say), set the "
        "target it draws as: flashdrop.set_torch_target(version=..., cpu=...), or "
        "flashdrop.torch_target(version=..., cpu=...) as a context manager around the check "
        "(see docs/torch-versions.md)"
    )
    assert "may draw differently" not in "\n".join(lines)


def test_mlx_mode_names_the_torch_compared_alone():
    model, port = mlp("L R D0.3 L | L R D0.2 L")
    with flashdrop.torch_target("2.6", cpu="amd"):  # no matter in mlx mode
        lines = message_of(assert_statistically_equivalent, model, port, randn(8, 16), trials=5)
    assert lines[-1] == f"the torch compared: {COMPARED} (this machine)"


def test_the_parity_report_names_both_builds_and_hints_at_rows_failing_from_the_first_call():
    op = next(op for op in grid.OPS if op.label == "F.dropout")
    with flashdrop.torch_target("2.6", cpu="amd"):
        builds = Builds.now()
        rows = [
            report.run_row(TORCH, grid.QUICK, op, op.cases[0], "float32", 0.5, mode, 7)
            for mode in grid.MODES
        ]
    assert builds.line() in report.header(builds)
    torch_row, mlx_row = rows
    assert torch_row.problems == ["not bit-exact from call 1 on"] and not mlx_row.failed
    lines = report.failures(rows, builds)
    assert lines[-1] == builds.hint("1 of the 1 torch-mode rows differ from their first call on")
    assert "torch 2.6 on an AMD x86-64 CPU" in lines[-1] and COMPARED in lines[-1]
    # Rows that agree at first and differ later get no hint.
    torch_row.inexact_from = 2
    assert not any("torch_target" in line for line in report.failures(rows, builds))
