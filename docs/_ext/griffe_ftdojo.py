"""A Griffe extension for ftdojo's API reference: read its docstrings as they are written.

ftdojo's docstrings are prose with reST roles (``:class:`Plan```), and its attrs fields
are documented with ``#:`` comments, as Sphinx reads them. mkdocstrings knows neither:
a role would show as literal text and a field would show undocumented. This turns a role
into inline code and a ``#:`` comment into the field's docstring, so the source stays
as it is (it also reads well in an editor and in ``help()``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const):`~?([^`]+)`")
# reST's literal-block marker ("...as follows::"); Markdown needs only the indentation.
_LITERAL_MARKER = re.compile(r"(\S)::$", re.MULTILINE)


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL_MARKER.sub(r"\1:", text)


class FtdojoDocstrings(griffe.Extension):
    """Rewrites reST roles and adopts ``#:`` comments (see the module docstring)."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.is_attribute and obj.docstring is None and obj.lineno is not None and obj.filepath:
            comment = self._field_comment(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _markdown(obj.docstring.value)

    @staticmethod
    def _field_comment(obj: griffe.Object) -> str:
        """The ``#:`` comment lines right above the attribute, or the one that ends its line."""
        try:
            lines = obj.lines_collection[obj.filepath]  # type: ignore[index]
        except (KeyError, TypeError):
            return ""
        found: list[str] = []
        index = (obj.lineno or 1) - 2  # the line above, 0-based
        while index >= 0 and lines[index].strip().startswith("#:"):
            found.insert(0, lines[index].strip()[2:].strip())
            index -= 1
        if not found and "#:" in lines[(obj.lineno or 1) - 1]:
            # A trailing comment, as on enum members: ``OOM = "OOM"  #: out of memory``.
            found.append(lines[(obj.lineno or 1) - 1].split("#:", 1)[1].strip())
        return " ".join(found)
