"""A MkDocs hook (mkdocs.yml's ``hooks``): inline code in a table may wrap after a dot, a slash
or an opening parenthesis, as a long dotted name wraps in print.

Material lets inline code break anywhere, which splits names mid-word in a narrow column
(``torch.nn.Dropout1d/2d/3`` | ``d``); docs/assets/stylesheets/reference.css forbids that, and
this hook gives the browser the places where a name may wrap instead: a ``<wbr>`` after each
``.``, ``/`` or ``(`` followed by a name. Copying the code copies no ``<wbr>``.
"""

from __future__ import annotations

import re
from typing import Any

_TABLE = re.compile(r"<table>.*?</table>", re.S)
_CODE = re.compile(r"(<code>)(.*?)(</code>)", re.S)
_BREAK = re.compile(r"(?:(?<=\w\.)|(?<=[/(]))(?=[A-Za-z_])")  # not after a leading dot (.p)
_TAG = re.compile(r"(<[^>]*>)")  # a tag inside the code (a cross-reference): left as it is


def _code(match: re.Match) -> str:
    parts = _TAG.split(match.group(2))
    text = "".join(part if _TAG.fullmatch(part) else _BREAK.sub("<wbr>", part) for part in parts)
    return match.group(1) + text + match.group(3)


def with_breaks(html: str) -> str:
    """``html`` with break opportunities in the inline code of its tables."""
    return _TABLE.sub(lambda table: _CODE.sub(_code, table.group(0)), html)


def on_page_content(html: str, **kwargs: Any) -> str:
    return with_breaks(html)
