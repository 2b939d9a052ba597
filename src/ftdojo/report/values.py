"""Reading journal data tolerantly: any field may be missing or hold another type.

A report must show a journal of an older (or newer) ftdojo as far as it can, so it
reads the records as plain JSON data through these helpers instead of building the
typed records, which would refuse the whole record for one odd field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_dict", "as_list", "lookup", "number"]


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """``value`` as a float if it is a number (a bool is not), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def lookup(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]…``, or ``None`` where a step is missing or not a dict."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
