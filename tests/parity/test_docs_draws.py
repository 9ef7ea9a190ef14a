"""docs/verifying-a-port-draws.md and docs/verifying.md say what is printed.

Every ``python`` block of the page runs: a doctest session as a doctest, a script (its first line
``# <name>.py``) saved under that name and run, its output compared with the ``text`` block that
follows it. Every ``text`` block starting with ``AssertionError:`` in either file must be, word
for word, the message of one of the planted mistakes below, made in the CI example users copy
(examples/test_port_in_ci.py). A value the docs quote through a model's matrix products ends in
``...``: its last digits vary with the CPU (``-0.557669461`` on one x86-64, ``-0.557669342`` on
another), so the docs elide them, and ``...`` stands for digits only. Every message ends with
the torch builds compared, which the docs show as printed where they were written (torch 2.13.0's
CPU wheel on an AMD x86-64 CPU): this machine's lines are read as those.
"""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import mlx.nn
import pytest

from flashdrop import nn
from flashdrop._builds import Builds

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "verifying-a-port-draws.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(path: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(path.read_text())


# The builds lines of the docs' messages, in torch mode and in mlx mode.
DOCUMENTED = {
    "torch": "torch mode's target: torch 2.13.0 on an AMD x86-64 CPU; the torch compared: torch "
    "2.13.0+cpu on an AMD x86-64 CPU (this machine)",
    "mlx": "the torch compared: torch 2.13.0+cpu on an AMD x86-64 CPU (this machine)",
}


def as_documented(text: str) -> str:
    """``text`` with this machine's builds lines read as those the docs show."""
    for mode, line in DOCUMENTED.items():
        text = re.sub(f"^{re.escape(Builds.now(mode).line())}$", line, text, flags=re.M)
    return text


def example():
    """The CI example, imported as a module (its fixtures' functions unwrapped)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import test_port_in_ci
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return test_port_in_ci


def planted_messages() -> list[str]:
    """The messages the example's tests print for each mistake planted in its port."""
    ex = example()
    build = getattr(ex.models, "__wrapped__", None) or ex.models.__pytest_wrapped__.obj

    def message(test, plant, *args) -> str:
        torch_model, port = build()
        plant(port)
        with pytest.raises(AssertionError) as error:
            test((torch_model, port), *args)
        return as_documented(f"AssertionError: {error.value}")

    def forgot_channel_dim(port):
        port.drop2d = nn.Dropout2d(0.2)

    def mlx_dropout(port):
        port.drop = mlx.nn.Dropout(0.5)

    def wrong_p(port):
        port.drop = nn.Dropout(0.3)

    def left_in_eval(models):  # as test_port_gives_torchs_outputs, with the port in eval
        torch_model, port = models
        ex.assert_same_as_torch(torch_model.train(), port.eval(), ex.batch())

    same = ex.test_port_gives_torchs_outputs
    return [
        message(same, forgot_channel_dim, True),
        message(ex.test_dropout2d_alone_bit_for_bit, forgot_channel_dim),
        message(same, mlx_dropout, True),
        message(same, wrong_p, True),
        message(left_in_eval, lambda port: None),
        message(ex.test_same_distribution_in_mlx_mode, wrong_p, 0),
    ]


def shown_as(text: str) -> re.Pattern[str]:
    """What a message shown in the docs matches: itself, with each ``...`` for elided digits."""
    return re.compile(r"\d*".join(map(re.escape, text.split("..."))))


def test_every_message_shown_is_printed():
    printed = planted_messages()
    shown = [
        text.rstrip("\n")
        for path in (PAGE, ROOT / "docs" / "verifying.md")
        for kind, text in blocks(path)
        if kind == "text" and text.startswith("AssertionError:")
    ]
    assert len(shown) >= 4
    for text in shown:
        assert any(shown_as(text).fullmatch(message) for message in printed), text


def test_the_page_s_python_blocks_run_as_shown(tmp_path):
    found = blocks(PAGE)
    for n, (kind, text) in enumerate(found):
        if kind != "python":
            continue
        if text.startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(text, {}, f"block {n}", str(PAGE), 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            runner.run(test)
            assert runner.failures == 0, f"block {n} of {PAGE.name}"
            continue
        name = text.splitlines()[0].removeprefix("# ").strip()
        assert name.endswith(".py"), f"a script block starts with its file name: {text[:40]}"
        (tmp_path / name).write_text(text)
        done = subprocess.run(
            [sys.executable, name], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        expected = found[n + 1]
        assert expected[0] == "text"
        assert as_documented(done.stdout) == expected[1], name
