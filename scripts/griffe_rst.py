"""A Griffe extension for the API reference: our docstrings are written as torch's and MLX's are
(reStructuredText roles, ``literals``, ``Example::`` blocks), which the Google-style parser of
mkdocstrings would show raw. Each docstring is rewritten to Markdown before it is parsed;
the source keeps torch's style. Used by mkdocs.yml.
"""

import re
import textwrap
from typing import Any

import griffe

# :func:`name`, :class:`~pkg.Name`, :math:`(N, C)`, ...: the text as inline code.
_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|math):`~?([^`]+)`")
# ``literal`` -> `literal`
_LITERAL = re.compile(r"``([^`]+)``")
# A paragraph ending in "::" introduces an indented literal block.
_LITERAL_BLOCK = re.compile(r"^( *)(\S[^\n]*?):?:\n\n((?:\1 {4}[^\n]*\n|\n)+)", re.M)


def _fence(match: re.Match) -> str:
    indent, lead, body = match.group(1), match.group(2), match.group(3)
    code = textwrap.dedent(body).strip("\n")
    if code.startswith(">>>"):  # a doctest: Griffe's Examples section shows it as code
        return f"{indent}{lead}:\n\n{textwrap.indent(code, indent + '    ')}\n\n"
    # Other code is fenced, after a title that is no section of the Google style.
    fenced = textwrap.indent("```python\n" + code + "\n```", indent)
    return f"{indent}**{lead}:**\n\n{fenced}\n\n"


def to_markdown(text: str) -> str:
    """A docstring in torch's reStructuredText style, as Markdown."""
    text = _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", text)) + "\n"
    return _LITERAL_BLOCK.sub(_fence, text).rstrip("\n")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring to Markdown as Griffe loads it."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
