"""The documentation site builds with ``mkdocs build --strict``: every page in the nav, every
link between pages and every API reference entry resolves, with no warning.

The code blocks of README.md and docs/ run as tests of their own (conftest.py, through Sybil).
"""

import ast
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site, built once with ``mkdocs build --strict``, and the build's log."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return out, done.stderr


def reference_pages(root: Path) -> list[Path]:
    return sorted((root / "reference").glob("*/index.html"))


def test_the_site_builds_strict(site):
    root, log = site
    assert "WARNING" not in log, log[-5000:]
    for page in ["index", "getting-started", "porting", "verifying", "differences", "performance"]:
        assert (root / ("" if page == "index" else page) / "index.html").exists()
    compat = (root / "reference" / "compat" / "index.html").read_text()
    assert 'id="flashdrop.compat.tensors.to_mlx"' in compat  # the API reference was generated
    # The docstrings are in torch's reST style: scripts/griffe_rst.py renders them as Markdown.
    for page in reference_pages(root):
        text = page.read_text()
        for raw in (":func:`", ":class:`", ":math:`", "``", "Example::"):
            assert raw not in text, f"{raw} shown raw in {page.parent.name}"


# What a reader sees as text: the page without its scripts, code blocks and the maths KaTeX
# typesets (inline code stays: a formula shown as code is raw LaTeX too).
HIDDEN = re.compile(
    r"<(script|style|pre)\b.*?</\1>|<(span|div) class=\"arithmatex\">.*?</\2>", re.S
)
RAW_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$\s][^$]*\$")


def test_no_raw_latex_and_the_maths_is_typeset(site):
    root, _ = site
    for page in root.rglob("*.html"):
        html = page.read_text()
        text = re.sub(r"<[^>]+>", "", HIDDEN.sub("", html))
        assert not RAW_LATEX.findall(text), f"raw LaTeX in {page.relative_to(root)}"
        assert "assets/katex/katex.min.js" in html  # every page loads the typesetter
    functional = (root / "reference" / "functional" / "index.html").read_text()
    assert '<span class="arithmatex">\\(\\frac{1}{1-p}\\)</span>' in functional
    # KaTeX ships with the site: the maths renders offline.
    katex = root / "assets" / "katex"
    for asset in ["katex.min.js", "auto-render.min.js", "katex.min.css"]:
        assert (katex / asset).stat().st_size > 1000
    fonts = re.findall(r"url\((fonts/[\w-]+\.woff2)\)", (katex / "katex.min.css").read_text())
    assert fonts and all((katex / font).exists() for font in fonts)


def objects(html: str) -> Iterator[tuple[str, str]]:
    """Each documented object of a reference page: its id (its import path) and its part of
    the page, up to the next object's heading."""
    heads = list(re.finditer(r'<h\d id="(flashdrop[\w.]*)"', html))
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        yield head.group(1), html[head.start() : after.start() if after else len(html)]


PARAMETERS = re.compile(r'doc-section-title">Parameters:</span>.*?</table>', re.S)
PARAMETER = re.compile(
    r'<tr class="doc-section-item">\s*<td>\s*<code>([^<]+)</code>.*?'
    r'<div class="doc-md-description">(.*?)</div>.*?<td>(.*?)</td>\s*</tr>',
    re.S,
)
STATED_DEFAULT = re.compile(r"Default: (?:<code>)?([^<,\s]+?)(?:</code>)?[.,]?(?:\s|<|$)")


def plain(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html)).strip()


def literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return NOT_A_LITERAL


NOT_A_LITERAL = object()


def test_every_documented_parameter_shows_its_default(site):
    # A parameter is "required" exactly when it has no default, its Default column is the
    # signature's, and a "Default: x" in its description says the same.
    root, _ = site
    checked = 0
    for page in reference_pages(root):
        for path, part in objects(page.read_text()):
            table = PARAMETERS.search(part)
            if table is None:
                continue
            signature = inspect.signature(pkgutil.resolve_name(path)).parameters
            for shown_name, description, shown in PARAMETER.findall(table.group(0)):
                name = shown_name.lstrip("*")  # *size, **kwargs
                where = f"{path}({name}) in {page.parent.name}"
                assert name in signature, f"{where}: no such parameter"
                parameter = signature[name]
                variadic = parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                default = parameter.default
                if plain(shown) == "required":
                    assert default is parameter.empty and not variadic, f"{where}: defaults"
                elif not variadic:
                    assert default is not parameter.empty, f"{where}: shown {plain(shown)}"
                    assert literal(plain(shown)) in (default, NOT_A_LITERAL), where
                stated = STATED_DEFAULT.search(description)
                if stated and not variadic:
                    assert literal(unescape(stated.group(1))) in (default, NOT_A_LITERAL), (
                        f"{where}: the description says Default: {stated.group(1)}"
                    )
                checked += 1
    assert checked > 100


def test_cross_references_to_documented_names_are_links(site):
    root, _ = site
    pages = {page: page.read_text() for page in reference_pages(root)}
    documented = {path for html in pages.values() for path, _ in objects(html)}
    for page, html in pages.items():
        # Outside links and code blocks, a documented name in full is a link.
        unlinked = re.sub(r"<a\b.*?</a>|<pre\b.*?</pre>", "", html, flags=re.S)
        for code in re.findall(r"<code>([^<]*(?:<wbr>[^<]*)*)</code>", unlinked):
            name = code.replace("<wbr>", "")
            assert name not in documented, f"{name} is not a link in {page.parent.name}"
        assert not re.search(r"docs/[\w-]+\.md", plain(unlinked)), page.parent.name
    functional = pages[root / "reference" / "functional" / "index.html"]
    assert 'href="../nn/#flashdrop.nn.Dropout"><code>flashdrop.<wbr>nn.<wbr>Dropout' not in (
        functional  # no <wbr> outside tables
    )
    assert 'href="../nn/#flashdrop.nn.Dropout"><code>flashdrop.nn.Dropout</code></a>' in functional
    assert 'href="../../argument-contract/">The argument contract' in functional


def test_the_testing_page_leads_with_the_checks_and_hides_pytest_hooks(site):
    root, _ = site
    html = (root / "reference" / "testing" / "index.html").read_text()
    order = [path for path, _ in objects(html)]
    assert order[:4] == [
        "flashdrop.testing",
        "flashdrop.testing.assert_same_as_torch",
        "flashdrop.testing.assert_statistically_equivalent",
        "flashdrop.testing.seeded",
    ]
    assert "flashdrop.pytest_plugin.torch_mode" in order
    assert not [path for path in order if ".pytest_" in path.replace("pytest_plugin", "")]


def test_doctests_are_highlighted(site):
    root, _ = site
    sessions = 0
    for page in reference_pages(root):
        html = page.read_text()
        assert "<code>&gt;&gt;&gt;" not in html, f"a doctest shown as plain text in {page}"
        sessions += html.count('<span class="gp">&gt;&gt;&gt; </span>')
    assert sessions > 10


def test_docstrings_become_markdown():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from griffe_rst import to_markdown
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    text = "See :class:`~flashdrop.nn.Dropout`, ``p``.\n\nExample::\n\n    y = f(x)\n"
    assert to_markdown(text) == (
        "See [`Dropout`][flashdrop.nn.Dropout], `p`.\n\n**Example:**\n\n```python\ny = f(x)\n```"
    )
    # A doctest is Google style's Examples section: its body right below its title.
    doctest = "Example::\n\n    >>> f(x)\n    1\n"
    assert to_markdown(doctest) == "Examples:\n    >>> f(x)\n    1"
    assert to_markdown(":math:`\\frac{1}{1-p}` (see docs/differences.md)") == (
        "$\\frac{1}{1-p}$ (see [Differences from torch](../differences.md))"
    )
    # Not flashdrop's, or a parameter: code, not a link.
    assert to_markdown(":class:`torch.nn.Dropout`, :attr:`p`") == "`torch.nn.Dropout`, `p`"
    shared = "Args:\n    rtol, atol: tolerances,\n        both. Default: 0\n    seed: a seed.\n"
    assert to_markdown(shared) == (
        "Args:\n    rtol: tolerances,\n        both. Default: 0\n"
        "    atol: tolerances,\n        both. Default: 0\n    seed: a seed."
    )


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
