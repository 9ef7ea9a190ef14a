"""flashdrop's pytest plugin, run inside pytest runs of its own (pytester, in process).

The inner runs load the plugin the way users get it, through the installed ``pytest11`` entry
point, with ``filterwarnings = error`` and ``--strict-markers``. The example test file users are
told to copy (examples/test_port_in_ci.py) is run here too, and must pass.
"""

from importlib.metadata import entry_points
from pathlib import Path

import pytest

# torch, flashdrop.compat and flashdrop.testing are imported here so that the inner runs find them
# loaded: pytester's in-process runs drop the modules they imported themselves, and torch cannot
# be imported twice in one process.
import torch  # noqa: F401

import flashdrop.compat
import flashdrop.testing  # noqa: F401
from flashdrop._builds import Builds

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_port_in_ci.py"

# Hypothesis' plugin is left out: it would import hypothesis anew in every inner run.
INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest
filterwarnings = error
"""

# Tests run in file order: the first leaves states behind, the second changes them through the
# fixtures, the third checks the fixtures put them back.
TESTS = """
import mlx.core as mx
import numpy as np
import pytest
import torch

from flashdrop import compat
import flashdrop
import flashdrop.nn.functional as F

SEED = {seed}
left = {{}}


def is_seeded(seed):
    torch_state, flashdrop_state = torch.get_rng_state(), np.array(flashdrop.get_rng_state())
    torch.manual_seed(seed)
    flashdrop.manual_seed(seed)
    same = torch.equal(torch_state, torch.get_rng_state()) and np.array_equal(
        flashdrop_state, np.array(flashdrop.get_rng_state())
    )
    torch.set_rng_state(torch_state)
    flashdrop.set_rng_state(mx.array(flashdrop_state))
    return same


def test_states_before():
    torch.manual_seed(99)
    flashdrop.manual_seed(98)
    left["torch"] = torch.get_rng_state()
    left["flashdrop"] = np.array(flashdrop.get_rng_state())


def test_torch_mode(torch_mode, flashdrop_seed):
    assert torch_mode == flashdrop_seed == SEED
    assert flashdrop.get_rng_mode() == "torch"
    assert is_seeded(SEED)
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))  # not from the stream
    expected = torch.nn.functional.dropout(x, 0.5)
    got = compat.to_torch(F.dropout(compat.to_mlx(x), 0.5))
    assert torch.equal(got, expected)


def test_states_after():
    assert flashdrop.get_rng_mode() == "mlx"
    assert torch.equal(torch.get_rng_state(), left["torch"])
    assert np.array_equal(np.array(flashdrop.get_rng_state()), left["flashdrop"])


def test_flashdrop_seed(flashdrop_seed):
    assert flashdrop_seed == SEED
    assert flashdrop.get_rng_mode() == "mlx"
    assert is_seeded(SEED)


@pytest.mark.flashdrop_seed(7)
def test_marker(flashdrop_seed, torch_mode):
    assert flashdrop_seed == torch_mode == 7
    assert is_seeded(7)
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def test_registered_as_an_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("flashdrop") == "flashdrop.pytest_plugin"


@pytest.mark.parametrize("args", [(), ("--flashdrop-seed", "5"), ("--flashdrop-seed=-3",)])
def test_fixtures_seed_switch_and_restore(inner, args):
    seed = int(args[-1].rpartition("=")[2]) if args else 0
    inner.makepyfile(TESTS.format(seed=seed))
    inner.runpytest(*args).assert_outcomes(passed=5)


def test_a_bad_marker_says_how_to_use_it(inner):
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.flashdrop_seed("7")
        def test_it(flashdrop_seed):
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*TypeError: the flashdrop_seed marker takes one int, as in *flashdrop_seed(7), but*"]
    )


def test_the_option_and_marker_are_documented(inner):
    inner.runpytest("--help").stdout.fnmatch_lines(
        ["*--flashdrop-seed=N*seed of the flashdrop_seed*"]
    )
    inner.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.flashdrop_seed(n):*"])


def test_can_be_switched_off(inner):
    inner.makepyfile("def test_it(flashdrop_seed):\n    pass\n")
    result = inner.runpytest("-p", "no:flashdrop")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'flashdrop_seed' not found*"])


def test_the_example_users_copy_passes(inner):
    inner.runpytest(str(EXAMPLE)).assert_outcomes(passed=8)


def test_a_failing_helper_shows_both_draw_tables(inner):
    inner.makepyfile(
        """
        import torch

        from flashdrop import nn
        from flashdrop.testing import assert_same_as_torch

        def test_it():
            model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Dropout(0.4))
            port = nn.Dropout(0.2)
            assert_same_as_torch(model, port, torch.ones(4, 8))

        def test_passing():
            assert_same_as_torch(torch.nn.Dropout(0.2), nn.Dropout(0.2), torch.ones(4, 8))
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- flashdrop: dropout draws (torch | port) -*",
            "*torch*| port",
            "*#1  dropout (4, 8) p=0.2 '0' (Dropout) | dropout (4, 8) p=0.2 (Dropout)",
            "*!#2/-  dropout (4, 8) p=0.4 '1' (Dropout) | -",
        ]
    )
    assert result.stdout.str().count("flashdrop: dropout draws") == 1


def test_a_run_that_used_the_fixtures_ends_naming_the_builds(inner):
    inner.makepyfile("def test_it(torch_mode):\n    pass\n")
    result = inner.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*-- flashdrop --*", Builds.now().line()])


def test_a_failed_helper_ends_the_run_naming_the_builds(inner):
    inner.makepyfile(
        """
        import torch

        from flashdrop import nn
        from flashdrop.testing import assert_same_as_torch

        def test_it():
            assert_same_as_torch(torch.nn.Dropout(0.2), nn.Dropout(0.3), torch.ones(4, 8))
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*-- flashdrop --*", Builds.now().line()])


def test_a_run_without_flashdrop_names_no_builds(inner):
    inner.makepyfile("def test_it():\n    pass\n")
    result = inner.runpytest()
    result.assert_outcomes(passed=1)
    assert "the torch compared" not in result.stdout.str()


def test_a_failure_shows_the_message_not_the_helpers_source(inner):
    inner.makepyfile(
        """
        import torch

        from flashdrop import nn
        from flashdrop.testing import assert_same_as_torch, assert_statistically_equivalent

        def test_same(torch_mode):
            assert_same_as_torch(torch.nn.Dropout(0.2), nn.Dropout(0.3), torch.ones(4, 8))

        def test_statistics(flashdrop_seed):
            assert_statistically_equivalent(
                torch.nn.Dropout(0.2), nn.Dropout(0.3), torch.ones(4, 8), trials=5
            )
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    # The helpers' docstrings and bodies are not printed; each message follows its test's line.
    assert "Seeds torch and flashdrop" not in out and "__tracebackhide__" not in out
    assert 'In ``"mlx"`` mode' not in out and "def paired" not in out
    result.stdout.fnmatch_lines(
        [
            ">*assert_same_as_torch(torch.nn.Dropout(0.2), nn.Dropout(0.3), torch.ones(4, 8))",
            "E*AssertionError: the port differs from torch at call 1 of 3 (seed 0): torch and the "
            "port drew once each; draw #1 differs in p (torch 0.2, port 0.3):",
        ]
    )
