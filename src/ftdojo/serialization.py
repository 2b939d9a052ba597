"""JSON for every core type, through one cattrs converter.

Unknown keys are rejected when structuring, so a plan written by an LLM with a
misspelt field fails loudly (with the field named) instead of being silently ignored.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter

from ftdojo.errors import SchemaError

__all__ = ["converter", "from_json", "structure", "to_json", "unstructure"]

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=True)


def _format_exception(exc: BaseException, type_: type | None) -> str:
    # A validator's SchemaError already says what is wrong; keep its words.
    if isinstance(exc, SchemaError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def unstructure(obj: Any) -> Any:
    """The object as plain JSON-compatible data (dicts, lists, str, numbers)."""
    return converter.unstructure(obj)


def _error_class(cls: type) -> type[SchemaError]:
    """The error a class raises when data does not fit it: its ``schema_error`` (plans and
    their parts declare :class:`PlanError`), else :class:`SchemaError`.

    Agents catch ``PlanError`` for the plans they write; a malformed worker result or
    journal record is not a plan's fault and must not read as one.
    """
    error = getattr(cls, "schema_error", SchemaError)
    return error if isinstance(error, type) and issubclass(error, SchemaError) else SchemaError


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from plain data; raises :class:`SchemaError` naming the bad field
    (:class:`PlanError` when ``cls`` is a plan or a part of one)."""
    try:
        return converter.structure(data, cls)
    except SchemaError:
        raise
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, format_exception=_format_exception)
        raise _error_class(cls)("; ".join(messages) or str(exc)) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _error_class(cls)(f"cannot build {cls.__name__}: {exc}") from exc


def to_json(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(unstructure(obj), indent=indent, sort_keys=True, allow_nan=True)


def from_json(text: str | bytes, cls: type[T]) -> T:
    """Build ``cls`` from JSON text; raises as :func:`structure` does, for the JSON itself too."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error_class(cls)(f"not valid JSON: {exc}") from exc
    return structure(data, cls)
