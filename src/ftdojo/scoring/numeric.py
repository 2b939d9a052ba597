"""Numbers and short labels in answers: canonical forms, and scoring within a relative tolerance.

Used by the table tasks (to put extracted answers in canonical form) and by the
``tolerance_accuracy`` metric. Arithmetic is done in :class:`~decimal.Decimal`, so that a
bound like "within 10 % of 2.5" is exact and never decided by binary rounding.

The tolerance rule (:func:`tolerance_match`):

- A reference that reads as a number is matched by a prediction that reads as a number
  ``p`` with ``|p - r| <= 0.10 * |r|``. The band is relative to the reference's
  magnitude, so it is symmetric around negative references too (``-20`` accepts
  ``-22`` to ``-18``) and never crosses zero: a prediction with the wrong sign is
  always wrong. A reference of ``0`` has a band of width zero, so only a prediction
  equal to zero (``"0"``, ``"0.0"``, ``"-0"``) matches it; a relative tolerance has
  nothing to be relative to there, and any absolute allowance would be arbitrary.
- Any other reference is a label, matched by a prediction equal to it after
  :func:`normalize_label` (case-insensitive, spacing and end punctuation ignored).
- A ``None`` prediction (the answer format was not met) never matches.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_EXPONENT",
    "RELATIVE_TOLERANCE",
    "canonical_literal",
    "canonical_number",
    "format_decimal",
    "normalize_label",
    "parse_literal",
    "parse_number",
    "tolerance_match",
    "tolerance_scores",
]

#: How far (relative to the reference's magnitude) a numeric answer may be off and still count.
RELATIVE_TOLERANCE = Decimal("0.10")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
#: Beyond this many digits a "number" is noise (and Decimal arithmetic on it would be slow).
MAX_EXPONENT = 100


def parse_literal(text: str) -> Decimal | None:
    """``text`` as a bare number literal, or ``None`` when it is not exactly one.

    A literal is an optional sign, digits with an optional point (``"8"``, ``"2.50"``,
    ``".5"``, ``"8."``), an optional exponent, and optionally thousands separators
    (``"1,250"``). Nothing may surround it, and its size is not bounded here.
    """
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        return None


def parse_number(text: str) -> Decimal | None:
    """``text`` as a number, or ``None`` when it is not one.

    Surrounding spaces, a leading ``$``, a trailing ``%`` and thousands separators
    (``"1,250"``) are allowed: they are how people write a number, not a different
    answer. Anything else around the number (words, a second number) makes it not one.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if cleaned.startswith("$"):
        cleaned = cleaned[1:].lstrip()
    if cleaned.endswith("%"):
        cleaned = cleaned[:-1].rstrip()
    value = parse_literal(cleaned)
    if value is None or (value and abs(value.adjusted()) > MAX_EXPONENT):
        return None
    return value


def format_decimal(value: Decimal) -> str:
    """``value`` in canonical form: no exponent, no trailing zeros, ``"-0"`` folded into ``"0"``."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def canonical_number(text: str) -> str | None:
    """``text`` as a canonical number string (``"8.0"`` -> ``"8"``, ``"2.50"`` -> ``"2.5"``), or ``None``."""
    value = parse_number(text)
    return None if value is None else format_decimal(value)


def canonical_literal(text: str) -> str | None:
    """:func:`parse_literal` of ``text`` in canonical form, or ``None``: the strict :func:`canonical_number`.

    Math answers use it (:func:`ftdojo.scoring.answers.normalize_math_answer`), where the
    text must be the number itself: unlike :func:`canonical_number` it takes no surrounding
    spaces, ``$`` or ``%`` and no NFKC folding (``"10%"`` and ``"2\u00b2"`` stay non-numbers).
    A literal beyond :data:`MAX_EXPONENT` in either direction is not a number here, a zero
    included (``"0e-200"``), where :func:`parse_number` admits any zero.
    """
    value = parse_literal(text)
    if value is None or abs(value.adjusted()) > MAX_EXPONENT:
        return None
    return format_decimal(value)


def normalize_label(text: str) -> str:
    """``text`` folded for label comparison: NFKC, case-folded, spaces collapsed, end punctuation dropped."""
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return folded.rstrip(".!").strip().strip("'\"`").strip()


def tolerance_match(
    prediction: str | None, reference: str, *, relative_tolerance: Decimal = RELATIVE_TOLERANCE
) -> bool:
    """Whether ``prediction`` answers ``reference`` under the rule in the module docstring."""
    if prediction is None:
        return False
    expected = parse_number(reference)
    if expected is None:
        label = normalize_label(reference)
        return bool(label) and normalize_label(prediction) == label
    got = parse_number(prediction)
    if got is None:
        return False
    return abs(got - expected) <= relative_tolerance * abs(expected)


def tolerance_scores(
    predictions: Sequence[str | None],
    references: Sequence[str],
    *,
    relative_tolerance: Decimal = RELATIVE_TOLERANCE,
) -> list[float]:
    """1.0 for each prediction that matches its reference (:func:`tolerance_match`), else 0.0."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    return [
        1.0 if tolerance_match(p, r, relative_tolerance=relative_tolerance) else 0.0
        for p, r in zip(predictions, references, strict=True)
    ]
