"""A Griffe extension for the API reference: our docstrings are written as torch's and MLX's are
(reStructuredText roles, ``literals``, ``Example::`` blocks), which the Google-style parser of
mkdocstrings would show raw. Each docstring is rewritten to Markdown before it is parsed;
the source keeps torch's style. Used by mkdocs.yml.

- ``:math:`x``` becomes ``$x$``, which pymdownx.arithmatex hands to KaTeX;
- ``:class:`name``` (and the other roles) becomes a link when ``name`` is flashdrop's (written
  in full, or relative to the docstring's object, as Sphinx resolves it), else inline code;
  ``~`` shows the last part of the name only;
- a ``docs/page.md`` path becomes a link to that page, titled by its heading;
- ``rtol, atol: text`` in an ``Args:`` section becomes one entry per name, so that each is
  matched with its parameter (and its default) in the signature;
- ``Example::`` followed by a doctest becomes Google style's ``Examples:`` section (shown as a
  highlighted Python session), any other literal block a fenced Python block.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import griffe

DOCS = Path(__file__).resolve().parents[1] / "docs"

# :func:`name`, :class:`~pkg.Name`, :math:`(N, C)`, ...
_ROLE = re.compile(r":(func|class|mod|meth|attr|data|exc|obj|math):`(~?)([^`]+)`")
# ``literal`` -> `literal`
_LITERAL = re.compile(r"``([^`]+)``")
# docs/page.md or docs/page.md#anchor, as a path in the text.
_DOCS_PATH = re.compile(r"(?<![\w/.])docs/([\w-]+)\.md(#[\w-]+)?")
# An Args: section, and in it an entry documenting several parameters: "    rtol, atol: text",
# with the lines indented below it.
_ARGS = re.compile(r"^( *)(?:Args|Arguments|Parameters):\n(?:\1 +[^\n]*\n)+", re.M)
_SHARED_ENTRY = re.compile(r"^( +)(\w+(?:, \w+)+): ([^\n]*\n(?:\1 +[^\n]*\n)*)", re.M)
# A paragraph ending in "::" introduces an indented literal block.
_LITERAL_BLOCK = re.compile(r"^( *)(\S[^\n]*?):?:\n\n((?:\1 {4}[^\n]*\n|\n)+)", re.M)

# Resolves a name written in a docstring to the path of a documented flashdrop object, or None.
Resolver = Callable[[str], "str | None"]


def _no_links(name: str) -> str | None:
    return name if name.startswith("flashdrop.") else None


def _fence(match: re.Match) -> str:
    indent, lead, body = match.group(1), match.group(2), match.group(3)
    code = textwrap.dedent(body).strip("\n")
    if code.startswith(">>>"):
        # A doctest: Google style's Examples section (a highlighted Python session). Its title
        # is "Examples" ("Example" makes an admonition) and its indented body follows it
        # directly (a blank line between them makes it plain text).
        title = "" if lead in ("Example", "Examples") else f"{indent}{lead}:\n\n"
        return f"{title}{indent}Examples:\n{textwrap.indent(code, indent + '    ')}\n\n"
    # Other code is fenced, after a title that is no section of the Google style.
    fenced = textwrap.indent("```python\n" + code + "\n```", indent)
    return f"{indent}**{lead}:**\n\n{fenced}\n\n"


def _role(match: re.Match, resolve: Resolver) -> str:
    kind, short, name = match.groups()
    if kind == "math":
        return f"${name}$"
    shown = name.rsplit(".", 1)[-1] if short else name
    # A relative :attr: or :data: is a parameter or a constant, which have no entry of their own.
    named = kind not in ("attr", "data") or name.startswith("flashdrop.")
    path = resolve(name) if named else None
    return f"[`{shown}`][{path}]" if path else f"`{shown}`"


def _literal(match: re.Match) -> str:
    text = match.group(1)
    if re.fullmatch(r"flashdrop(\.[A-Za-z]\w*)+", text):  # a public name in full: a link
        return f"[`{text}`][{text}]"
    return f"`{text}`"


def _page_link(match: re.Match) -> str:
    """``docs/page.md`` as a link from the reference pages (docs/reference/*.md)."""
    page, anchor = match.group(1), match.group(2) or ""
    heading = (DOCS / f"{page}.md").read_text().splitlines()[0].lstrip("# ")
    return f"[{heading}](../{page}.md{anchor})"


def _split_shared(match: re.Match) -> str:
    indent, names, text = match.groups()
    return "".join(f"{indent}{name}: {text}" for name in names.split(", "))


def to_markdown(text: str, resolve: Resolver = _no_links) -> str:
    """A docstring in torch's reStructuredText style, as Markdown; ``resolve`` finds the target
    of a role (``:class:`Draw```), or ``None`` to show it as code."""
    text = _ROLE.sub(lambda match: _role(match, resolve), text)
    text = _LITERAL.sub(_literal, text)
    text = _DOCS_PATH.sub(_page_link, text)
    text = _ARGS.sub(lambda args: _SHARED_ENTRY.sub(_split_shared, args.group(0)), text + "\n")
    return _LITERAL_BLOCK.sub(_fence, text).rstrip("\n")


def resolver_for(obj: griffe.Object) -> Resolver:
    """Sphinx's lookup of a role's target: a name in full, or the first of ``obj``, its parents
    and their modules that has the name's first part as a member; only flashdrop's public
    names are linked."""

    def resolve(name: str) -> str | None:
        first = name.split(".", 1)[0]
        path = name
        if first != "flashdrop":
            scope: Any = obj
            while scope is not None and first not in scope.members:
                scope = scope.parent
            if scope is None:
                return None
            member = scope.members[first]
            path = f"{scope.path}.{name}"
            if member.is_alias and not _private(member.target_path):  # documented where defined
                path = f"{member.target_path}{name[len(first) :]}"
        return path if path.startswith("flashdrop.") and not _private(path) else None

    return resolve


def _private(path: str) -> bool:
    return any(part.startswith("_") for part in path.split("."))


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined under it (aliases are documented where they point)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring to Markdown once the whole package is loaded (a role may name
    an object defined further down its module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj.docstring.value, resolver_for(obj))
