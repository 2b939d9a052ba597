"""The public answer helpers: the last ``\\boxed{...}``, math answer normal form, number literals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftdojo.scoring.answers import last_boxed, normalize_math_answer
from ftdojo.scoring.numeric import canonical_literal, canonical_number, parse_literal


@pytest.mark.parametrize(
    ("output", "content"),
    [
        ("The answer is \\boxed{8}.", "8"),
        ("\\boxed{3} then \\boxed{4}", "4"),
        ("\\boxed {x}", "x"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\boxed{5}}", "5"),
        ("\\boxed{}", ""),
        ("no box here", None),
        ("\\boxed{5", None),  # cut off: never closed
        ("\\boxed{3} and \\boxed{4", "3"),  # an unterminated box ends the scan
        ("\\boxed{5 \\boxed{6", None),  # the first box swallows the rest and never closes
    ],
)
def test_last_boxed(output: str, content: str | None) -> None:
    assert last_boxed(output) == content


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("8", "8"),
        (" 8.0 ", "8"),
        ("2.50", "2.5"),
        ("-0", "0"),
        ("+3", "3"),
        ("$5$", "5"),
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        ("1 000", "1000"),
        ("1e3", "1000"),
        (".5", "0.5"),
        ("12,34", "12,34"),  # not a thousands grouping: stays text
        ("10%", "10%"),  # a box must hold the number itself
        ("\\frac{1}{2}", "\\frac{1}{2}"),
        ("1e200", "1e200"),  # beyond the bound: kept as text, never a huge integer
        ("0e-200", "0e-200"),
        ("seven", "seven"),
    ],
)
def test_normalize_math_answer(text: str, normal: str) -> None:
    assert normalize_math_answer(text) == normal


def test_parse_literal_admits_the_literal_alone() -> None:
    assert parse_literal("1,250.5") == Decimal("1250.5")
    assert parse_literal("8.") == Decimal(8)
    for text in (" 8", "$8", "8%", "8 apples", "", "1,2345", "e5"):
        assert parse_literal(text) is None, text


@pytest.mark.parametrize(
    ("text", "strict", "lenient"),
    [
        ("8.0", "8", "8"),
        ("10%", None, "10"),
        ("$5", None, "5"),
        (" 5 ", None, "5"),
        ("2\u00b2", None, "22"),  # NFKC reads "2 squared" as "22": why math answers skip it
        ("\u00b2", None, "2"),  # NFKC folds a superscript two into "2"
        ("0e-200", None, "0"),
        ("1e200", None, None),
    ],
)
def test_canonical_literal_is_the_strict_canonical_number(
    text: str, strict: str | None, lenient: str | None
) -> None:
    assert canonical_literal(text) == strict
    assert canonical_number(text) == lenient


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12))
def test_canonical_literal_agrees_with_canonical_number_on_bare_literals(value: Decimal) -> None:
    text = str(value)
    assert canonical_literal(text) == canonical_number(text)
    assert canonical_literal(text) is not None
    assert Decimal(canonical_literal(text) or "nan") == value
