"""The documentation site builds with ``mkdocs build --strict``: every page in the nav, every
link between pages and every API reference entry resolves, with no warning.

The code blocks of README.md and docs/ run as tests of their own (conftest.py, through Sybil).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    for page in ["index", "getting-started", "porting", "verifying", "differences", "performance"]:
        assert (tmp_path / ("" if page == "index" else page) / "index.html").exists()
    compat = (tmp_path / "reference" / "compat" / "index.html").read_text()
    assert 'id="flashdrop.compat.tensors.to_mlx"' in compat  # the API reference was generated
    # The docstrings are in torch's reST style: scripts/griffe_rst.py renders them as Markdown.
    for page in (tmp_path / "reference").glob("*/index.html"):
        text = page.read_text()
        for raw in (":func:`", ":class:`", ":math:`", "``", "Example::"):
            assert raw not in text, f"{raw} shown raw in {page.parent.name}"


def test_docstrings_become_markdown():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from griffe_rst import to_markdown
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    text = "See :class:`~flashdrop.nn.Dropout`, ``p``.\n\nExample::\n\n    y = f(x)\n"
    assert to_markdown(text) == (
        "See `flashdrop.nn.Dropout`, `p`.\n\n**Example:**\n\n```python\ny = f(x)\n```"
    )
    doctest = "Example::\n\n    >>> f(x)\n    1\n"
    assert to_markdown(doctest) == "Example:\n\n    >>> f(x)\n    1"


FENCE = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
# What may start a command in a shell block of the README or docs/: the project's own script,
# the environment's programs, or making and entering an environment.
IN_THE_ENVIRONMENT = ("bash scripts/dev.sh", ".venv/bin/", "python3 -m venv", "source .venv/")


def shell_commands(text: str) -> list[tuple[str, bool]]:
    """Each command of each shell block, and whether the environment was activated before it."""
    commands = []
    for block in FENCE.findall(text):
        active = False
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if not command:
                continue
            commands.append((command, active))
            active = active or "source .venv/bin/activate" in command
    return commands


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_command_can_be_pasted_into_a_fresh_shell(page):
    # A bare `python`, `pip` or `pytest` would run the system's, which lacks mlx and flashdrop.
    for command, active in shell_commands(page.read_text()):
        assert active or command.startswith(IN_THE_ENVIRONMENT), (
            f"{page.name}: {command!r} runs outside the environment: call .venv/bin/python, "
            "or `source .venv/bin/activate` earlier in the same block"
        )


def test_the_command_check_can_fail():
    text = "```bash\npython -m flashdrop.parity\nsource .venv/bin/activate\npip install .\n```\n"
    assert shell_commands(text) == [
        ("python -m flashdrop.parity", False),
        ("source .venv/bin/activate", False),
        ("pip install .", True),
    ]
