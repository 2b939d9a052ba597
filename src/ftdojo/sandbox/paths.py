"""The one rule for "this path lies under one of these folders", shared by the sandbox's
views, the worker's audit hook and the chart scorer's.

Standard library only: the worker's guard imports it before the job's limits apply.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["is_under"]


def is_under(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies inside one (plain string comparison:
    both sides must already be absolute and, where it matters, resolved)."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
