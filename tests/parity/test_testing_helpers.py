"""flashdrop.testing against real torch: correct ports pass, broken ports fail and say why.

The broken ports are the mistakes a port makes: a wrong p, a missing dropout layer, two layers
swapped, a channels-last port without ``channel_dim=-1``, MLX's own dropout, a wrong scale. Each
must fail both helpers where the statistics can see it, with the message the issue asks for.
"""

import dataclasses
import functools
import inspect
import math
import re
import subprocess
import sys
from typing import Any

import mlx.core as mx
import mlx.nn
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import flashdrop
import flashdrop.nn.functional as F
from flashdrop import compat, nn
from flashdrop._comparison import default_tolerances
from flashdrop.testing import (
    assert_same_as_torch,
    assert_statistically_equivalent,
    seeded,
)
from flashdrop.testing._statistics import z_test_p_value
from tests._support.checks import failure, randn
from tests._support.names import FUNCTION_OF

NAMES = list(FUNCTION_OF)
SHAPES = {
    "Dropout": (8, 16),
    "AlphaDropout": (8, 16),
    "Dropout1d": (8, 6, 5),
    "Dropout2d": (8, 6, 4, 5),
    "Dropout3d": (4, 6, 2, 3, 3),
    "FeatureAlphaDropout": (8, 6, 4, 5),
}
ATOL = 1e-5  # MLX's and torch's matrix products round differently
TRIALS = 400  # calls per side of the statistical checks here
# A line of the statistical report: "  <where> <statistic>: torch m ± se, port m ± se, p = P",
# where is "output" or "draw #i (op shape)".
ROW = re.compile(
    r"^  ((?:output|draw #\d+ \(.+?\)) .+): torch \S+ ± \S+, port \S+ ± \S+, p = (\S+)"
    r"(  <- differs)?$"
)


def mlp(*layers: str) -> tuple[torch.nn.Module, mlx.nn.Module]:
    """A torch MLP and its port with the same weights, from a layer spec ("L" linear, "R" relu,
    "D0.2" dropout); the port's spec is the same unless given after a "|"."""
    torch_spec, _, port_spec = " ".join(layers).partition("|")
    port_spec = port_spec or torch_spec

    def build(spec, linear, relu, dropout):
        return [
            linear(16, 16) if s == "L" else relu() if s == "R" else dropout(float(s[1:]))
            for s in spec.split()
        ]

    with seeded(0):
        model = torch.nn.Sequential(
            *build(torch_spec, torch.nn.Linear, torch.nn.ReLU, torch.nn.Dropout)
        )
    port = mlx.nn.Sequential(*build(port_spec, mlx.nn.Linear, mlx.nn.ReLU, nn.Dropout))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    port_linears = [m for m in port.layers if isinstance(m, mlx.nn.Linear)]
    for theirs, ours in zip(linears, port_linears, strict=True):
        ours.weight, ours.bias = compat.to_mlx(theirs.weight), compat.to_mlx(theirs.bias)
    return model, port


class ChannelsLast(mlx.nn.Module):
    """A port that runs its layers on the channels-last layout, taking and giving torch's."""

    def __init__(self, *layers: mlx.nn.Module) -> None:
        super().__init__()
        self.layers = list(layers)

    def __call__(self, x: mx.array) -> mx.array:
        x = mx.moveaxis(x, 1, -1)
        for layer in self.layers:
            x = layer(x)
        return mx.moveaxis(x, -1, 1)


def report_rows(message: str) -> list[tuple[str, float, bool]]:
    """(statistic, p-value, marked as differing) for each row of a statistical report."""
    rows = [ROW.match(line) for line in message.splitlines()[1:]]
    assert all(rows), message
    return [(row[1], float(row[2]), bool(row[3])) for row in rows]


# --- assert_same_as_torch: correct ports pass ---------------------------------------------------


# A lone dropout layer or function involves no matrix product: its outputs are torch's bit for bit.
BIT_FOR_BIT = {"rtol": 0, "atol": 0}


@pytest.mark.parametrize("name", NAMES)
def test_the_six_modules_and_functions_pass_bit_for_bit(name):
    x = randn(*SHAPES[name])
    module, port = getattr(torch.nn, name)(0.3), getattr(nn, name)(0.3)
    assert_same_as_torch(module, port, x, calls=4, **BIT_FOR_BIT)
    fn = FUNCTION_OF[name]
    assert_same_as_torch(
        functools.partial(getattr(TF, fn), p=0.3, training=True),
        functools.partial(getattr(F, fn), p=0.3, training=True),
        x,
        seed=7,
        **BIT_FOR_BIT,
    )


def test_inputs_may_be_arrays_and_other_arguments_pass_through():
    x = randn(8, 16)
    assert_same_as_torch(TF.dropout, F.dropout, compat.to_mlx(x), 0.4, **BIT_FOR_BIT)
    assert_same_as_torch(TF.dropout, F.dropout, x, 0.4, True, False, **BIT_FOR_BIT)
    # Keyword inputs go to both sides.
    assert_same_as_torch(TF.dropout, F.dropout, x, p=0.4, training=True, **BIT_FOR_BIT)


def test_a_model_within_tolerance():
    model, port = mlp("L R D0.2 L D0.3")
    assert_same_as_torch(model, port, randn(8, 16), atol=ATOL)


def test_modules_run_in_their_own_training_state():
    model, port = mlp("L R D0.2 L D0.3")
    model.eval()
    port.eval()
    assert_same_as_torch(model, port, randn(8, 16), atol=ATOL)
    assert not model.training and not port.training
    port.train()
    message = failure(assert_same_as_torch, model, port, randn(8, 16), atol=ATOL)
    assert message.splitlines()[0].endswith(
        "torch drew 0 times, the port twice; the port's draw #1 has no counterpart in torch "
        "(nor have the port's #2):"
    )
    assert message.splitlines()[-2:] == [
        "torch's Dropout at '2' is in eval mode",
        "torch's Dropout at '4' is in eval mode",
    ]


def test_every_call_gets_fresh_inputs():
    x = randn(8, 16)
    xm = compat.to_mlx(x)
    kept = x.clone()
    assert_same_as_torch(torch.nn.Dropout(0.5, inplace=True), nn.Dropout(0.5, inplace=True), x)
    assert_same_as_torch(torch.nn.Dropout(0.5, inplace=True), nn.Dropout(0.5, inplace=True), xm)
    assert torch.equal(x, kept)
    assert np.array_equal(np.array(xm), kept.numpy())


def test_outputs_in_tuples_and_dicts():
    def theirs(x):
        return TF.dropout(x, 0.3), {"y": TF.dropout(x, 0.6)}

    def ours(x):
        return F.dropout(x, 0.3), {"y": F.dropout(x, 0.6)}

    assert_same_as_torch(theirs, ours, randn(8, 16))
    message = failure(assert_same_as_torch, theirs, lambda x: ours(x)[::-1], randn(8, 16))
    assert message == (
        "the port differs from torch at call 1 of 3 (seed 0): output[0] is a torch.Tensor from "
        "torch, but a builtins.dict from the port, where an mlx.core.array was expected"
    )
    message = failure(assert_same_as_torch, theirs, lambda x: (ours(x)[0], {"z": 1}), randn(8, 16))
    assert message.endswith(
        "output[1] is a builtins.dict with the fields ['y'] from torch, but a builtins.dict "
        "with the fields ['z'] from the port"
    )

    message = failure(assert_same_as_torch, theirs, lambda x: ours(x)[0], randn(8, 16))
    assert message == (
        "the port differs from torch at call 1 of 3 (seed 0): output is a builtins.tuple of 2 "
        "from torch, but a mlx.core.array from the port"
    )


def test_mappings_and_dataclasses_are_compared_field_by_field():
    @dataclasses.dataclass
    class Output:
        logits: Any
        loss: Any = None  # None counts as absent

    def theirs(x):
        return {"logits": TF.dropout(x, 0.3)}

    assert_same_as_torch(theirs, lambda x: Output(F.dropout(x, 0.3)), randn(8, 16))
    message = failure(
        assert_same_as_torch, theirs, lambda x: Output(F.dropout(x, 0.3) * 2), randn(8, 16)
    )
    assert "elements of output['logits'] differ" in message
    message = failure(
        assert_same_as_torch, theirs, lambda x: Output(F.dropout(x, 0.3), x), randn(8, 16)
    )
    assert message.endswith(
        "output is a builtins.dict with the fields ['logits'] from torch, but a "
        f"{__name__}.test_mappings_and_dataclasses_are_compared_field_by_field.<locals>.Output "
        "with the fields ['logits', 'loss'] from the port"
    )


def test_dtype_and_shape_must_match():
    message = failure(
        assert_same_as_torch,
        torch.nn.Dropout(0.3),
        lambda x: nn.Dropout(0.3)(x).astype(mx.float16),
        randn(8, 16),
    )
    assert message.endswith(
        "output is float32 of shape (8, 16) from torch, but float16 of shape (8, 16) from the port"
    )


@pytest.mark.parametrize("mode", ["mlx", "torch"])
@pytest.mark.parametrize("port", [nn.Dropout(0.3), nn.Dropout(0.5)], ids=["passing", "failing"])
@pytest.mark.parametrize("check", [assert_same_as_torch, assert_statistically_equivalent])
def test_random_states_and_mode_are_restored(mode, port, check):
    torch.manual_seed(11)
    flashdrop.manual_seed(12)
    torch.rand(3)
    with flashdrop.rng_mode("torch"):
        F.dropout(mx.ones(5))
    before = torch.get_rng_state(), np.array(flashdrop.get_rng_state())
    flashdrop.set_rng_mode(mode)
    try:
        try:
            kwargs = {"trials": 20} if check is assert_statistically_equivalent else {}
            check(torch.nn.Dropout(0.3), port, randn(8, 16), **kwargs)
        except AssertionError:
            pass
        assert flashdrop.get_rng_mode() == mode
    finally:
        flashdrop.set_rng_mode("mlx")
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.array(flashdrop.get_rng_state()), before[1])


def test_tolerances():
    def slightly_off(x):
        return F.dropout(x, 0.3) * (1 + 2**-20)

    # By default, within torch.testing.assert_close's tolerances for float32 (rtol 1.3e-6).
    assert_same_as_torch(torch.nn.Dropout(0.3), slightly_off, randn(8, 16))
    message = failure(
        assert_same_as_torch, torch.nn.Dropout(0.3), slightly_off, randn(8, 16), rtol=0, atol=0
    )
    assert "(compared bit for bit)" in message
    assert_same_as_torch(torch.nn.Dropout(0.3), slightly_off, randn(8, 16), rtol=1e-5)
    message = failure(
        assert_same_as_torch, torch.nn.Dropout(0.3), slightly_off, randn(8, 16), atol=1e-8
    )
    assert "(compared within rtol=0, atol=1e-08)" in message


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64]
)
def test_default_tolerances_are_torch_testing_s(dtype):
    from torch.testing._comparison import default_tolerances as torch_s

    assert default_tolerances(dtype) == torch_s(dtype)
    rtol, atol = torch_s(dtype)
    x = torch.tensor([1.0, 100.0]).to(dtype)
    step = torch.tensor([atol, 100 * rtol], dtype=torch.float64)
    just_within = (x.double() + 0.9 * step).to(dtype)
    if dtype.is_floating_point and not torch.equal(just_within, x):  # representable apart
        assert_same_as_torch(lambda v: v, lambda v: compat.to_mlx(just_within), x)
    beyond = (x.double() + 4 * step + (0 if dtype.is_floating_point else 1)).to(dtype)
    message = failure(assert_same_as_torch, lambda v: v, lambda v: compat.to_mlx(beyond), x)
    how = "bit for bit" if dtype == torch.int64 else f"within rtol={rtol:g}, atol={atol:g}"
    assert f"(compared {how}" in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"calls": 0}, "calls must be a positive int, but got 0"),
        ({"calls": 1.5}, "calls must be a positive int, but got 1.5"),
        ({"rtol": -1e-3}, "rtol and atol must be >= 0, but got rtol=-0.001, atol=0"),
        ({"atol": math.nan}, "rtol and atol must be >= 0, but got rtol=0.0, atol=nan"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(f"assert_same_as_torch: {match}")):
        assert_same_as_torch(torch.nn.Dropout(0.3), nn.Dropout(0.3), randn(2), **kwargs)


# --- assert_same_as_torch: broken ports fail, and say how ---------------------------------------


def test_outputs_differing_after_the_same_draws():
    x = randn(8, 16)

    def scaled(v):
        return F.dropout(v, 0.3) * 1.5

    message = failure(assert_same_as_torch, torch.nn.Dropout(0.3), scaled, x)
    lines = message.splitlines()
    # The outputs the message is about, computed here.
    with seeded(0, mode="torch"):
        theirs = torch.nn.Dropout(0.3)(x)
        ours = compat.to_torch(scaled(compat.to_mlx(x)))
    differ = (theirs != ours).nonzero().tolist()
    assert lines[0] == (
        f"the port differs from torch at call 1 of 3 (seed 0): {len(differ)} of 128 elements "
        "of output differ (compared within rtol=1.3e-06, atol=1e-05, "
        "torch.testing.assert_close's for float32); first at"
    )
    for line, (i, j) in zip(lines[1:6], differ[:5], strict=True):
        match = re.fullmatch(r"  \((\d+), (\d+)\): torch (\S+), port (\S+)", line)
        assert match, line
        assert (int(match[1]), int(match[2])) == (i, j)
        assert np.float32(match[3]) == theirs[i, j].item()
        assert np.float32(match[4]) == ours[i, j].item()
    assert lines[6].startswith("same masks, the math differs: the port made torch's 1 draw ")
    assert len(lines) == 7


def test_missing_dropout():
    model, port = mlp("L R D0.2 L D0.4 | L R D0.2 L")
    message = failure(assert_same_as_torch, model, port, randn(8, 16), atol=ATOL)
    assert message.splitlines() == [
        "the port differs from torch at call 1 of 3 (seed 0): torch drew twice, the port once; "
        "torch's draw #2 has no counterpart in the port:",
        "  torch #2: dropout, shape (8, 16), p=0.4, in '4' (Dropout), called by the helper",
    ]


def test_swapped_dropout_layers():
    model, port = mlp("D0.1 L R D0.5 L | D0.5 L R D0.1 L")
    message = failure(assert_same_as_torch, model, port, randn(8, 16), atol=ATOL)
    assert "draw #1 differs in p (torch 0.1, port 0.5):" in message
    assert message.endswith("\nthe port makes torch's draws in another order")


def test_channels_last_port_without_channel_dim():
    x = randn(*SHAPES["Dropout2d"])
    assert_same_as_torch(
        torch.nn.Dropout2d(0.3), ChannelsLast(nn.Dropout2d(0.3, channel_dim=-1)), x
    )
    message = failure(
        assert_same_as_torch, torch.nn.Dropout2d(0.3), ChannelsLast(nn.Dropout2d(0.3)), x
    )
    assert "draw #1 differs in shape ((8, 6, 1, 1), that is (8, 6) drawn by torch, " in message


def test_channels_last_model_without_channel_dim():
    with seeded(0):
        conv = torch.nn.Conv2d(3, 6, 3, padding=1)
    model = torch.nn.Sequential(conv, torch.nn.Dropout2d(0.3))

    def port_with(drop):
        port = ChannelsLast(mlx.nn.Conv2d(3, 6, 3, padding=1), drop)
        port.layers[0].weight = compat.to_mlx(conv.weight.permute(0, 2, 3, 1))
        port.layers[0].bias = compat.to_mlx(conv.bias)
        return port

    x = randn(4, 3, 5, 5)
    assert_same_as_torch(model, port_with(nn.Dropout2d(0.3, channel_dim=-1)), x, atol=ATOL)
    message = failure(assert_same_as_torch, model, port_with(nn.Dropout2d(0.3)), x, atol=ATOL)
    assert message.splitlines()[1:] == [
        "  torch #1: dropout2d, shape (4, 6, 1, 1), p=0.3, in '1' (Dropout2d), called by the "
        "helper",
        "  port  #1: dropout2d, shape (4, 5, 1, 1), p=0.3, in 'layers.1' (Dropout2d), at "
        f"test_testing_helpers.py:{inspect.getsourcelines(ChannelsLast.__call__)[1] + 3} in "
        "__call__",
        "a channels-last port's channel dropout (dropout1d/2d/3d, feature_alpha_dropout) needs "
        "channel_dim=-1",
    ]


def test_a_port_that_goes_wrong_on_a_later_call():
    def reseeding(x):  # the first call is right, the next ones repeat its mask
        flashdrop.manual_seed(0)
        return F.dropout(x, 0.3)

    message = failure(assert_same_as_torch, torch.nn.Dropout(0.3), reseeding, randn(8, 16))
    assert message.startswith("the port differs from torch at call 2 of 3 (seed 0): ")


def test_mlx_own_dropout_is_pointed_out():
    model, _ = mlp("L R D0.2")
    port = mlx.nn.Sequential(mlx.nn.Linear(16, 16), mlx.nn.ReLU(), mlx.nn.Dropout(0.2))
    port.layers[0].weight, port.layers[0].bias = (
        compat.to_mlx(model[0].weight),
        compat.to_mlx(model[0].bias),
    )
    message = failure(assert_same_as_torch, model, port, randn(8, 16), atol=ATOL)
    assert "torch drew once, the port 0 times; torch's draw #1 has no counterpart" in message
    assert message.endswith(
        "\nthe port's Dropout at 'layers.2' is mlx.nn's: it draws from MLX's stream, which "
        "flashdrop neither records nor keeps in step with torch's; use flashdrop.nn's "
        "(flashdrop.compat.port_dropout)"
    )


# --- assert_statistically_equivalent ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_statistics_pass_for_the_six(name):
    x = randn(*SHAPES[name])
    assert_statistically_equivalent(
        getattr(torch.nn, name)(0.3), getattr(nn, name)(0.3), x, trials=TRIALS
    )


def test_statistics_pass_for_a_model_and_for_channels_last():
    model, port = mlp("L R D0.2 L D0.3")
    assert_statistically_equivalent(model, port, randn(8, 16), trials=TRIALS)
    x = randn(*SHAPES["Dropout2d"])
    port = ChannelsLast(nn.Dropout2d(0.3, channel_dim=-1))
    assert_statistically_equivalent(torch.nn.Dropout2d(0.3), port, x, trials=TRIALS, seed=3)


def test_statistics_run_in_mlx_mode():
    def port(x):
        assert flashdrop.get_rng_mode() == "mlx"
        return F.dropout(x, 0.3)

    with flashdrop.rng_mode("torch"):
        assert_statistically_equivalent(torch.nn.Dropout(0.3), port, randn(4), trials=TRIALS)


def differing(torch_obj, port, x, **kwargs) -> set[str]:
    """The statistics the report marks as differing; checks the report's own consistency."""
    rate = kwargs.get("false_failure_rate", 1e-6)
    message = failure(assert_statistically_equivalent, torch_obj, port, x, trials=TRIALS, **kwargs)
    rows = report_rows(message)
    threshold = rate / len(rows)
    header = message.splitlines()[0]
    marked = {name for name, _, differs in rows if differs}
    assert header.startswith(
        f"the port is not statistically equivalent to torch: {len(marked)} of {len(rows)} "
        f"statistics differ ({TRIALS} calls per side, seed {kwargs.get('seed', 0)}, flashdrop "
        f"in mlx mode). Each is a two-sample z-test failing below p = {threshold:.3g}, so that "
        f"together they fail a port equivalent to torch with probability at most {rate:g} "
        "(Bonferroni, normal approximation). Mean ± standard error over the calls:"
    ), header
    for name, p_value, differs in rows:
        assert differs == (p_value < threshold), name
    return marked


def test_statistics_check_the_plan_first():
    message = failure(
        assert_statistically_equivalent, torch.nn.Dropout(0.3), nn.Dropout(0.4), randn(8, 16)
    )
    assert message.splitlines()[0] == (
        "the port differs from torch at call 1 (seed 0, flashdrop in mlx mode): torch and the "
        "port drew once each; draw #1 differs in p (torch 0.3, port 0.4):"
    )
    model, port = mlp("L R D0.2 L D0.4 | L R D0.2 L")
    message = failure(assert_statistically_equivalent, model, port, randn(8, 16))
    assert "torch drew twice, the port once; torch's draw #2 has no counterpart" in message


def test_statistics_on_each_draw_s_mask():
    model, port = mlp("L R D0.2 L D0.3")
    message = failure(assert_statistically_equivalent, model, lambda x: port(x) * 1.3, randn(8, 16))
    names = {name for name, _, _ in report_rows(message)}
    assert {
        "draw #1 (dropout (8, 16)) keep rate",
        "draw #1 (dropout (8, 16)) neighbours along drawn dim 1 kept alike",
        "draw #2 (dropout (8, 16)) keep rate",
        "output drop rate",
        "output variance",
    } <= names


def test_statistics_catch_a_channels_last_port_without_channel_dim_where_h_is_c():
    # H == C: the same noise shape is drawn, along another axis: the plan and the masks agree,
    # only the output's statistics of a lone layer show it.
    port = ChannelsLast(nn.Dropout2d(0.3))
    marked = differing(torch.nn.Dropout2d(0.3), port, randn(8, 6, 6, 5), seed=3)
    # torch drops whole (H, W) planes; the mix-up drops whole (W, C) slices.
    assert marked >= {
        "output neighbours along dim 1 dropped alike",
        "output neighbours along dim 2 dropped alike",
    }
    assert not any(name.startswith("draw ") for name in marked)


def test_statistics_catch_a_wrong_scale():
    port = functools.partial(F.dropout, p=0.3, training=True)
    marked = differing(torch.nn.Dropout(0.3), lambda x: port(x) * 1.2, randn(8, 16), seed=4)
    assert marked == {"output variance"} or marked == {"output mean", "output variance"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"trials": 1}, "trials must be an int >= 2, but got 1"),
        ({"false_failure_rate": 0}, "false_failure_rate must be in (0, 1), but got 0"),
        ({"false_failure_rate": 1.5}, "false_failure_rate must be in (0, 1), but got 1.5"),
    ],
)
def test_statistics_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(f"assert_statistically_equivalent: {match}")):
        assert_statistically_equivalent(torch.nn.Dropout(0.3), nn.Dropout(0.3), randn(2), **kwargs)


def testz_test_p_value():
    # |difference| / sqrt(0.6^2 + 0.8^2) = 1.96: the two-sided p-value of z = 1.96 is 0.05.
    assert z_test_p_value(0.0, 0.6, 1.96, 0.8) == pytest.approx(0.0499958, abs=1e-6)
    assert z_test_p_value(0.25, 0.0, 0.25, 0.0) == 1.0  # constant and equal
    assert z_test_p_value(0.25, 0.0, 0.5, 0.0) == 0.0  # constant and different


# --- no torch at import -------------------------------------------------------------------------


def test_importing_the_helpers_and_the_plugin_does_not_import_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import flashdrop.testing, flashdrop.pytest_plugin\n"
        "assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
        "try:\n"
        "    flashdrop.testing.assert_same_as_torch(None, None)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith(
        "flashdrop.compat needs torch; install it with `pip install '.[torch]'` in "
        "flashdrop's clone"
    )
    assert "--index-url https://download.pytorch.org/whl/cpu" in done.stdout  # CPU-only torch
