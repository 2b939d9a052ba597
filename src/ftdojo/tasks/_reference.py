"""Reference data and question templates shared by the generated table and finance tasks.

Country names come from pycountry's ISO 3166 list; question templates are rendered with
:meth:`str.format` and read back with :func:`template_regex`, so that a task can re-read
a question from a record's text and recompute its answer.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping

__all__ = ["country_names", "normalize_question", "template_regex"]

# Countries, territories or places whose figures no table of economic data would hold.
_NOT_ECONOMIES = frozenset({"Antarctica"})


@functools.cache
def country_names() -> tuple[str, ...]:
    """Short country names from pycountry (common name where ISO's is long), sorted.

    Only names of letters and spaces up to 12 characters are kept: they fit a compact
    table cell and cannot be mistaken for Markdown or CSV syntax.
    """
    import pycountry

    names = {getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    return tuple(
        sorted(
            n
            for n in names
            if len(n) <= 12 and n.replace(" ", "").isalpha() and n.isascii() and n not in _NOT_ECONOMIES
        )
    )


def normalize_question(text: str) -> str:
    """``text`` with runs of whitespace made one space and end punctuation dropped."""
    return " ".join(text.split()).rstrip(".?!").rstrip()


def template_regex(template: str, patterns: Mapping[str, str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching :func:`normalize_question` of the template's renderings.

    Each ``{field}`` becomes a named group with the pattern ``patterns[field]`` (a field
    used again must repeat the same text); the literal text must match exactly (up to case).
    """
    parts: list[str] = []
    seen: set[str] = set()
    for literal, field, _, _ in string.Formatter().parse(normalize_question(template)):
        parts.append(re.escape(literal))
        if field in seen:
            parts.append(f"(?P={field})")
        elif field:
            parts.append(f"(?P<{field}>{patterns[field]})")
            seen.add(field)
    return re.compile("".join(parts), re.IGNORECASE)
