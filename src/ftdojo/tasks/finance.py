"""The ``finance_exam`` task (mirroring FinanceIQ): exam-style multiple choice, answered ``Answer: (X)``.

Each item is a short question with four options A-D, one right and three plausible
wrong ones. Five categories:

- ``interest``: simple interest earned, value of a deposit under annual compounding;
- ``valuation``: NPV of an outlay and two inflows, a bond's coupon payment, a bond's
  current yield;
- ``ratios``: current ratio, quick ratio, debt-to-equity, net profit margin;
- ``currency``: converting an amount at a quoted rate (both directions), and which
  ISO 4217 code names which currency (real codes and names from pycountry);
- ``concepts``: which term a definition describes (ratios, risk types, instruments).

The wrong options of a calculation are the results of the common mistakes (total
instead of interest, no discounting, the inverted ratio, dividing instead of
multiplying, ...), so none can be ruled out by its size alone; options are shuffled, and
in the evaluation splits the right letter is balanced over A-D.

Every calculation question is rendered from a template that :func:`template_regex` turns
back into a pattern, so :meth:`FinanceExam.verify` re-reads the figures from a record's
question, recomputes the right option and checks the record's letter (definitions and
currency codes are checked against the glossary and pycountry's ISO 4217 table).

Disjointness: a calculation is identified by its category and the multiset of figures
in its question, so no raw record asks an evaluation question's figures again, in any
wording. A definition or code question is identified by what it asks and its set of
options: the facts themselves are what an exam prepares for and do recur in training
data (with other options), the exact questions never do.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import attrs

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.scoring.numeric import format_decimal, parse_number
from ftdojo.tasks._reference import country_names, normalize_question, template_regex
from ftdojo.tasks.spec import EvalItem, Example, RawSource, normalize_text
from ftdojo.tasks.synthetic import (
    SourceQuality,
    SyntheticTask,
    balanced_categories,
    corrupt,
    with_duplicates,
)

__all__ = ["INSTRUCTION", "FinanceExam"]

#: Appended to every question's options, for training and evaluation prompts alike.
INSTRUCTION = "End with 'Answer: (X)', X = A, B, C or D."
LETTERS = ("A", "B", "C", "D")
PROMPT_LIMIT = 300
RESPONSE_LIMIT = 120

_CATEGORIES = ("interest", "valuation", "ratios", "currency", "concepts")
_CENT = Decimal("0.01")
_ANSWER = re.compile(r"Answer:\s*\(([A-D])\)")
# How people write a letter answer when not asked for a format: "b", "(B)", "Answer: B",
# "B) 300.00", "option b".
_LOOSE_LETTER = re.compile(
    r"\s*(?:answer\s*[:=]?\s*|option\s+)?\(?([a-d])\)?(?:[).:]?(?:\s.*)?)?", re.IGNORECASE | re.DOTALL
)
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


# -- reference data --------------------------------------------------------------------------

_GLOSSARY: dict[str, tuple[tuple[str, str], ...]] = {
    "ratios": (
        ("current ratio", "current assets divided by current liabilities"),
        ("quick ratio", "current assets minus inventory, over current liabilities"),
        ("debt-to-equity ratio", "total debt divided by shareholders' equity"),
        ("return on equity", "net income divided by shareholders' equity"),
        ("return on assets", "net income divided by total assets"),
        ("gross margin", "gross profit divided by revenue"),
        ("net profit margin", "net income divided by revenue"),
        ("P/E ratio", "share price divided by earnings per share"),
        ("dividend yield", "annual dividend per share divided by share price"),
        ("interest coverage", "operating profit divided by interest expense"),
        ("asset turnover", "revenue divided by total assets"),
        ("inventory turnover", "cost of goods sold divided by average inventory"),
        ("earnings per share", "net income divided by shares outstanding"),
    ),
    "risks": (
        ("credit risk", "the risk that a borrower fails to repay a debt"),
        ("market risk", "the risk of losses from moves in market prices"),
        ("liquidity risk", "the risk of not selling an asset quickly at fair value"),
        ("interest rate risk", "the risk that bond prices fall when rates rise"),
        ("operational risk", "the risk of loss from failed processes, people or systems"),
        ("currency risk", "the risk of loss from exchange rate changes"),
        ("inflation risk", "the risk that rising prices erode real returns"),
        ("reinvestment risk", "the risk of reinvesting cash flows at lower rates"),
        ("counterparty risk", "the risk that the other party to a contract defaults"),
        ("systematic risk", "market-wide risk that diversification cannot remove"),
        ("unsystematic risk", "firm-specific risk that diversification reduces"),
        ("concentration risk", "the risk of a large exposure to a single issuer"),
    ),
    "instruments": (
        ("bond", "a debt security paying fixed interest until maturity"),
        ("common stock", "a share of ownership with voting rights"),
        ("preferred stock", "shares paying fixed dividends ahead of common stock"),
        ("call option", "the right to buy an asset at a set price by a set date"),
        ("put option", "the right to sell an asset at a set price by a set date"),
        ("futures contract", "an exchange-traded obligation to trade an asset later"),
        ("forward contract", "a private agreement to trade an asset later at a set price"),
        ("interest rate swap", "an exchange of fixed for floating interest payments"),
        ("treasury bill", "short-term government debt sold at a discount"),
        ("certificate of deposit", "a bank time deposit with a fixed term and rate"),
        ("exchange-traded fund", "a pooled fund whose shares trade on an exchange"),
        ("convertible bond", "a bond that can be exchanged for the issuer's shares"),
        ("zero-coupon bond", "a bond that pays no interest and sells below face value"),
    ),
}
_TERM_OF: dict[str, str] = {
    normalize_question(d).casefold(): t for group in _GLOSSARY.values() for t, d in group
}


@functools.cache
def _currencies() -> tuple[tuple[str, str], ...]:
    """(ISO 4217 code, name) from pycountry: national currencies with short plain names.

    Codes starting with X (funds, metals, testing codes, supranational units) are left
    out, and so are names too long for an option or holding punctuation.
    """
    import pycountry

    return tuple(
        sorted(
            (c.alpha_3, c.name)
            for c in pycountry.currencies
            if not c.alpha_3.startswith("X") and len(c.name) <= 24 and re.fullmatch(r"[A-Za-z ]+", c.name)
        )
    )


@functools.cache
def _country_alpha3() -> tuple[tuple[str, str], ...]:
    import pycountry

    wanted = set(country_names())
    return tuple(
        sorted(
            (c.alpha_3, getattr(c, "common_name", None) or c.name)
            for c in pycountry.countries
            if (getattr(c, "common_name", None) or c.name) in wanted
        )
    )


def _reference_digest() -> str:
    text = json.dumps([_currencies(), _country_alpha3()])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# -- calculations ----------------------------------------------------------------------------


def _d(text: str) -> Decimal:
    return Decimal(text)


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _percent(value: Decimal) -> str:
    return _money(value * 100) + "%"


def _growth(rate: str) -> str:
    """``"5"`` (percent) -> ``"1.05"``: the growth factor as a worked solution writes it."""
    return format_decimal(1 + _d(rate) / 100)


# A calculation's outcomes: the right one first, then the common mistakes, each as
# (option text, working whose value that text is). Each calculation knows more mistakes
# than a question shows, and a question shows three drawn at random, so that the right
# option does not sit at a fixed rank or in a fixed pattern among the options.
Outcomes = list[tuple[str, str]]


def _simple_interest(f: Mapping[str, str]) -> Outcomes:
    p, r, t = _d(f["P"]), _d(f["r"]), _d(f["t"])
    interest = p * r * t / 100
    g = _growth(f["r"])
    return [
        (_money(interest), f"I = {f['P']}*{f['r']}%*{f['t']}"),
        (_money(p + interest), f"A = {f['P']}+{f['P']}*{f['r']}%*{f['t']}"),
        (_money(p * r / 100), f"I = {f['P']}*{f['r']}%"),
        (_money(p * ((1 + r / 100) ** int(t) - 1)), f"I = {f['P']}*({g}^{f['t']}-1)"),
        (_money(p * r * (t - 1) / 100), f"I = {f['P']}*{f['r']}%*{int(t) - 1}"),
        (_money(p * r * (t + 1) / 100), f"I = {f['P']}*{f['r']}%*{int(t) + 1}"),
        (_money(interest / 10), f"I = {f['P']}*{f['r']}%*{f['t']}/10"),
    ]


def _compound_value(f: Mapping[str, str]) -> Outcomes:
    p, r, t = _d(f["P"]), _d(f["r"]), int(f["t"])
    g = _growth(f["r"])
    factor = 1 + r / 100
    return [
        (_money(p * factor**t), f"FV = {f['P']}*{g}^{t}"),
        (_money(p * (1 + r * t / 100)), f"FV = {f['P']}*(1+{f['r']}%*{t})"),
        (_money(p * (factor**t - 1)), f"I = {f['P']}*({g}^{t}-1)"),
        (_money(p * factor ** (t - 1)), f"FV = {f['P']}*{g}^{t - 1}"),
        (_money(p * factor ** (t + 1)), f"FV = {f['P']}*{g}^{t + 1}"),
        (_money(p * (1 + r / 1200) ** (12 * t)), f"FV = {f['P']}*(1+{f['r']}%/12)^{12 * t}"),
        (_money(p * (r * t / 100).exp()), f"FV = {f['P']}*e^({f['r']}%*{t})"),
    ]


def _npv(f: Mapping[str, str]) -> Outcomes:
    c0, c1, c2 = _d(f["C0"]), _d(f["C1"]), _d(f["C2"])
    g = _growth(f["r"])
    factor = _d(g)
    # Multiplying by (1 - r) instead of dividing by (1 + r): discounting by subtraction.
    s = format_decimal(1 - _d(f["r"]) / 100)
    shrink = _d(s)
    return [
        (_money(-c0 + c1 / factor + c2 / factor**2), f"NPV = -{f['C0']}+{f['C1']}/{g}+{f['C2']}/{g}^2"),
        (_money(-c0 + c1 + c2), f"NPV = -{f['C0']}+{f['C1']}+{f['C2']}"),
        (_money(-c0 + c1 / factor + c2 / factor), f"NPV = -{f['C0']}+{f['C1']}/{g}+{f['C2']}/{g}"),
        (_money(c1 / factor + c2 / factor**2), f"PV = {f['C1']}/{g}+{f['C2']}/{g}^2"),
        (_money(-c0 + c1 / factor**2 + c2 / factor**3), f"NPV = -{f['C0']}+{f['C1']}/{g}^2+{f['C2']}/{g}^3"),
        (_money(-c0 + c1 / factor**2 + c2 / factor**2), f"NPV = -{f['C0']}+{f['C1']}/{g}^2+{f['C2']}/{g}^2"),
        (_money(-c0 + c1 * shrink + c2 * shrink**2), f"NPV = -{f['C0']}+{f['C1']}*{s}+{f['C2']}*{s}^2"),
    ]


def _coupon(f: Mapping[str, str]) -> Outcomes:
    face, c = _d(f["F"]), _d(f["c"])
    return [
        (_money(face * c / 200), f"C = {f['F']}*{f['c']}%/2"),
        (_money(face * c / 100), f"C = {f['F']}*{f['c']}%"),
        (_money(face * c / 400), f"C = {f['F']}*{f['c']}%/4"),
        (_money(face * c / 50), f"C = {f['F']}*{f['c']}%*2"),
        (_money(face * c / 1200), f"C = {f['F']}*{f['c']}%/12"),
        (_money(face * c / 2000), f"C = {f['F']}*{f['c']}%/2/10"),
        (_money(face * c / 20), f"C = {f['F']}*{f['c']}%/2*10"),
    ]


def _current_yield(f: Mapping[str, str]) -> Outcomes:
    face, c, price = _d(f["F"]), _d(f["c"]), _d(f["Pr"])
    coupon = face * c / 100
    shown = format_decimal(coupon)
    return [
        (_percent(coupon / price), f"CY = {shown}/{f['Pr']}"),
        (_percent(coupon / face), f"CY = {shown}/{f['F']}"),
        (_percent(c / 100 * price / face), f"CY = {f['c']}%*{f['Pr']}/{f['F']}"),
        (_percent((coupon + face - price) / price), f"Y = ({shown}+{f['F']}-{f['Pr']})/{f['Pr']}"),
        (_percent(coupon / 2 / price), f"CY = {shown}/2/{f['Pr']}"),
    ]


def _current_ratio(f: Mapping[str, str]) -> Outcomes:
    ca, cl = _d(f["CA"]), _d(f["CL"])
    return [
        (_money(ca / cl), f"CR = {f['CA']}/{f['CL']}"),
        (_money(cl / ca), f"CR = {f['CL']}/{f['CA']}"),
        (_money(ca - cl), f"CR = {f['CA']}-{f['CL']}"),
        (_money((ca - cl) / cl), f"CR = ({f['CA']}-{f['CL']})/{f['CL']}"),
        (_money((ca + cl) / cl), f"CR = ({f['CA']}+{f['CL']})/{f['CL']}"),
        (_money(ca / (ca + cl)), f"CR = {f['CA']}/({f['CA']}+{f['CL']})"),
    ]


def _quick_ratio(f: Mapping[str, str]) -> Outcomes:
    ca, inv, cl = _d(f["CA"]), _d(f["I"]), _d(f["CL"])
    return [
        (_money((ca - inv) / cl), f"QR = ({f['CA']}-{f['I']})/{f['CL']}"),
        (_money(ca / cl), f"QR = {f['CA']}/{f['CL']}"),
        (_money((ca + inv) / cl), f"QR = ({f['CA']}+{f['I']})/{f['CL']}"),
        (_money((ca - inv) / ca), f"QR = ({f['CA']}-{f['I']})/{f['CA']}"),
        (_money(inv / cl), f"QR = {f['I']}/{f['CL']}"),
        (_money(cl / (ca - inv)), f"QR = {f['CL']}/({f['CA']}-{f['I']})"),
    ]


def _debt_to_equity(f: Mapping[str, str]) -> Outcomes:
    debt, equity = _d(f["D"]), _d(f["E"])
    return [
        (_money(debt / equity), f"D/E = {f['D']}/{f['E']}"),
        (_money(equity / debt), f"D/E = {f['E']}/{f['D']}"),
        (_money(debt / (debt + equity)), f"D/E = {f['D']}/({f['D']}+{f['E']})"),
        (_money((debt + equity) / equity), f"D/E = ({f['D']}+{f['E']})/{f['E']}"),
        (_money(equity / (debt + equity)), f"D/E = {f['E']}/({f['D']}+{f['E']})"),
    ]


def _net_margin(f: Mapping[str, str]) -> Outcomes:
    income, revenue = _d(f["NI"]), _d(f["R"])
    return [
        (_percent(income / revenue), f"NPM = {f['NI']}/{f['R']}"),
        (_percent(income / (revenue - income)), f"NPM = {f['NI']}/({f['R']}-{f['NI']})"),
        (_percent((revenue - income) / revenue), f"NPM = ({f['R']}-{f['NI']})/{f['R']}"),
        (_percent(income / revenue / 100), f"NPM = {f['NI']}/{f['R']}/100"),
        (_percent(income / revenue * 10), f"NPM = {f['NI']}/{f['R']}*10"),
        (_percent(income / revenue / 10), f"NPM = {f['NI']}/{f['R']}/10"),
    ]


def _convert(f: Mapping[str, str]) -> Outcomes:
    amount, rate, unit = _d(f["A"]), _d(f["q"]), f["Y"]
    return [
        (f"{_money(amount * rate)} {unit}", f"{f['A']}*{f['q']}"),
        (f"{_money(amount / rate)} {unit}", f"{f['A']}/{f['q']}"),
        (f"{_money(amount * rate * 10)} {unit}", f"{f['A']}*{f['q']}*10"),
        (f"{_money(amount * rate / 10)} {unit}", f"{f['A']}*{f['q']}/10"),
        (f"{_money(amount / rate * 10)} {unit}", f"{f['A']}/{f['q']}*10"),
        (f"{_money(amount * rate / 100)} {unit}", f"{f['A']}*{f['q']}/100"),
    ]


def _convert_back(f: Mapping[str, str]) -> Outcomes:
    amount, rate, unit = _d(f["A"]), _d(f["q"]), f["X"]
    return [
        (f"{_money(amount / rate)} {unit}", f"{f['A']}/{f['q']}"),
        (f"{_money(amount * rate)} {unit}", f"{f['A']}*{f['q']}"),
        (f"{_money(amount / rate * 10)} {unit}", f"{f['A']}/{f['q']}*10"),
        (f"{_money(amount / rate / 10)} {unit}", f"{f['A']}/{f['q']}/10"),
        (f"{_money(amount * rate / 10)} {unit}", f"{f['A']}*{f['q']}/10"),
        (f"{_money(amount / rate / 100)} {unit}", f"{f['A']}/{f['q']}/100"),
    ]


def _code(rng: random.Random) -> str:
    return rng.choice(_currencies())[0]


def _draw_interest(rng: random.Random) -> dict[str, str]:
    return {
        "cur": _code(rng),
        "P": str(500 * rng.randint(1, 20)),
        "r": str(rng.randint(1, 9)),
        "t": str(rng.randint(2, 6)),
    }


def _draw_npv(rng: random.Random) -> dict[str, str]:
    c0 = 100 * rng.randint(10, 50)
    return {
        "C0": str(c0),
        "C1": str(50 * rng.randint(c0 // 200, c0 // 62)),
        "C2": str(50 * rng.randint(c0 // 200, c0 // 62)),
        "r": str(rng.randint(4, 12)),
    }


def _draw_coupon(rng: random.Random) -> dict[str, str]:
    return {"F": str(500 * rng.randint(1, 40)), "c": format_decimal(Decimal(rng.randint(2, 24)) / 2)}


def _draw_yield(rng: random.Random) -> dict[str, str]:
    face = rng.choice((100, 500, 1000, 2000, 5000))
    return {
        "F": str(face),
        "c": str(rng.randint(2, 10)),
        "Pr": format_decimal(Decimal(face * rng.randint(80, 120)) / 100),
    }


def _draw_current(rng: random.Random) -> dict[str, str]:
    return {"CA": str(10 * rng.randint(20, 200)), "CL": str(10 * rng.randint(10, 150))}


def _draw_quick(rng: random.Random) -> dict[str, str]:
    ca = 10 * rng.randint(30, 200)
    return {"CA": str(ca), "I": str(10 * rng.randint(2, ca // 20)), "CL": str(10 * rng.randint(10, 150))}


def _draw_de(rng: random.Random) -> dict[str, str]:
    return {"D": str(100 * rng.randint(2, 90)), "E": str(100 * rng.randint(2, 90))}


def _draw_margin(rng: random.Random) -> dict[str, str]:
    revenue = 100 * rng.randint(10, 100)
    return {"NI": str(10 * rng.randint(1, revenue // 25)), "R": str(revenue)}


def _draw_conversion(rng: random.Random) -> dict[str, str]:
    x, y = rng.sample(_currencies(), 2)
    return {
        "A": str(50 * rng.randint(1, 100)),
        "X": x[0],
        "Y": y[0],
        # Log-uniform over 0.01-999, so the rate is below 1 about as often as above.
        "q": format_decimal(Decimal(rng.randint(100, 999)).scaleb(rng.randint(-4, 0))),
    }


@attrs.frozen
class _Calc:
    """One kind of calculation: its wordings, how its figures are drawn, how it is solved."""

    kind: str
    category: str
    templates: tuple[str, ...]
    draw: Callable[[random.Random], dict[str, str]]
    solve: Callable[[Mapping[str, str]], Outcomes]


_CALCS: tuple[_Calc, ...] = (
    _Calc(
        "simple_interest",
        "interest",
        (
            "{cur} {P} is deposited at {r}% simple interest a year. What interest does it earn in {t} years?",
            "A loan of {cur} {P} charges {r}% simple interest a year. What is the interest after {t} years?",
        ),
        _draw_interest,
        _simple_interest,
    ),
    _Calc(
        "compound_value",
        "interest",
        (
            "{cur} {P} is invested at {r}% a year, compounded annually. What is it worth after {t} years?",
            "A deposit of {cur} {P} earns {r}% a year, compounded yearly. What is its value after {t} years?",
        ),
        _draw_interest,
        _compound_value,
    ),
    _Calc(
        "npv",
        "valuation",
        (
            "A project costs {C0} now and returns {C1} in year 1 and {C2} in year 2. Its NPV at {r}%?",
            "Invest {C0} today to receive {C1} after 1 year and {C2} after 2 years. What is the NPV at {r}%?",
        ),
        _draw_npv,
        _npv,
    ),
    _Calc(
        "coupon",
        "valuation",
        (
            "A bond with face value {F} pays a {c}% annual coupon in two halves. How much is each payment?",
            "A {c}% bond with face value {F} pays coupons semiannually. What is each coupon payment?",
        ),
        _draw_coupon,
        _coupon,
    ),
    _Calc(
        "current_yield",
        "valuation",
        (
            "A bond with face value {F} and a {c}% annual coupon trades at {Pr}. What is its current yield?",
            "A {c}% annual-coupon bond (face {F}) is priced at {Pr}. What is its current yield?",
        ),
        _draw_yield,
        _current_yield,
    ),
    _Calc(
        "current_ratio",
        "ratios",
        (
            "A firm has current assets of {CA} and current liabilities of {CL}. What is its current ratio?",
            "Current assets are {CA} and current liabilities {CL}. What is the current ratio?",
        ),
        _draw_current,
        _current_ratio,
    ),
    _Calc(
        "quick_ratio",
        "ratios",
        (
            "Current assets are {CA}, inventory {I} and current liabilities {CL}. What is the quick ratio?",
            "A firm has current assets {CA} (inventory {I}) and current liabilities {CL}. Quick ratio?",
        ),
        _draw_quick,
        _quick_ratio,
    ),
    _Calc(
        "debt_to_equity",
        "ratios",
        (
            "A firm has total debt of {D} and shareholders' equity of {E}. What is its debt-to-equity ratio?",
            "Total debt is {D} and equity is {E}. What is the debt-to-equity ratio?",
        ),
        _draw_de,
        _debt_to_equity,
    ),
    _Calc(
        "net_margin",
        "ratios",
        (
            "A firm earns net income of {NI} on revenue of {R}. What is its net profit margin?",
            "Revenue is {R} and net income is {NI}. What is the net profit margin?",
        ),
        _draw_margin,
        _net_margin,
    ),
    _Calc(
        "convert",
        "currency",
        (
            "Convert {A} {X} to {Y} at 1 {X} = {q} {Y}.",
            "At a rate of 1 {X} = {q} {Y}, how much is {A} {X} in {Y}?",
        ),
        _draw_conversion,
        _convert,
    ),
    _Calc(
        "convert_back",
        "currency",
        (
            "At 1 {X} = {q} {Y}, how many {X} do you get for {A} {Y}?",
            "The rate is 1 {X} = {q} {Y}. Convert {A} {Y} to {X}.",
        ),
        _draw_conversion,
        _convert_back,
    ),
)
_FIELD_PATTERNS = {
    **{k: r"-?\d+(?:\.\d+)?" for k in ("P", "r", "t", "C0", "C1", "C2", "F", "c", "Pr", "CA", "CL", "I")},
    **{k: r"-?\d+(?:\.\d+)?" for k in ("D", "E", "NI", "R", "A", "q")},
    **{k: r"[A-Z]{3}" for k in ("cur", "X", "Y")},
}
_CALC_PATTERNS: tuple[tuple[_Calc, re.Pattern[str]], ...] = tuple(
    (calc, template_regex(t, _FIELD_PATTERNS)) for calc in _CALCS for t in calc.templates
)
_DEFINITION_TEMPLATE = "Which term means: {definition}?"
_CODE_TO_NAME = "Which currency has the ISO 4217 code {code}?"
_NAME_TO_CODE = "What is the ISO 4217 code of the {name}?"
_FACT_PATTERNS = {
    "definition": template_regex(_DEFINITION_TEMPLATE, {"definition": r".+"}),
    "code": template_regex(_CODE_TO_NAME, {"code": r"[A-Z]{3}"}),
    "name": template_regex(_NAME_TO_CODE, {"name": r".+"}),
}


@attrs.frozen
class _Question:
    """A question with its options (the right one first) and the working for each."""

    stem: str
    category: str
    #: (option text, working shown for it); index 0 is the right option.
    outcomes: tuple[tuple[str, str], ...]
    #: Whether the working is an expression whose value is the option ("I = 2000*5%*3 = 300.00").
    shows_result: bool


@attrs.frozen
class _Posed:
    """A question with its options in the order shown."""

    question: _Question
    options: tuple[str, ...]
    #: Where each of ``question.outcomes`` ended up among ``options``.
    position: tuple[int, ...]

    def letter_of(self, outcome: int) -> str:
        return LETTERS[self.position[outcome]]

    def rationale(self, outcome: int = 0) -> str:
        text, working = self.question.outcomes[outcome]
        head = f"{working} = {text}" if self.question.shows_result else working
        return f"{head}. Answer: ({self.letter_of(outcome)})"


def _option_value(text: str) -> Decimal | None:
    """The number an option states ("6.32%", "40125.00 JPY"), or ``None`` for a word."""
    head = text.split(" ", 1)[0]
    return parse_number(head) if head else None


def _distinct_outcomes(outcomes: Outcomes, rng: random.Random) -> tuple[tuple[str, str], ...] | None:
    """The right outcome and three mistakes, all with distinct texts; ``None`` if too few.

    How many mistakes lie above the right value is drawn uniformly from what the mistakes
    allow, so the right option is the smallest, the largest or in between about equally
    often, and "pick the second largest" is no shortcut.
    """
    right, *mistakes = outcomes
    seen = {right[0]}
    distinct = []
    for text, working in mistakes:
        if text not in seen:
            seen.add(text)
            distinct.append((text, working))
    wanted = len(LETTERS) - 1
    if len(distinct) < wanted:
        return None
    value = _option_value(right[0])
    if value is None:
        return (right, *rng.sample(distinct, wanted))
    above = [m for m in distinct if (v := _option_value(m[0])) is not None and v > value]
    below = [m for m in distinct if m not in above]
    n_above = rng.randint(max(0, wanted - len(below)), min(wanted, len(above)))
    return (right, *rng.sample(above, n_above), *rng.sample(below, wanted - n_above))


def _capitalised(term: str) -> str:
    """``term`` with its first letter upper-cased and the rest kept ("P/E ratio" stays as it is)."""
    return term[:1].upper() + term[1:]


def _fact_question(rng: random.Random, category: str) -> _Question:
    if category == "concepts":
        group = _GLOSSARY[rng.choice(sorted(_GLOSSARY))]
        picked = rng.sample(group, 4)
        definition = picked[0][1]
        return _Question(
            stem=_DEFINITION_TEMPLATE.format(definition=definition),
            category=category,
            outcomes=tuple((t, f"{_capitalised(t)}: {definition}") for t, _ in picked),
            shows_result=False,
        )
    code, name = rng.choice(_currencies())
    # Plausible wrong options share a word ("Dollar") or a first letter with the right one.
    last_word = name.split()[-1]
    similar = [
        c for c in _currencies() if c[0] != code and (c[1].split()[-1] == last_word or c[0][0] == code[0])
    ]
    others = [c for c in _currencies() if c[0] != code and c not in similar]
    pool = rng.sample(similar, min(3, len(similar)))
    pool += rng.sample(others, 3 - len(pool))
    picked_currencies = [(code, name), *pool]
    if rng.random() < 0.5:
        return _Question(
            stem=_CODE_TO_NAME.format(code=code),
            category=category,
            outcomes=tuple((n, f"{code} is the {n}") for _, n in picked_currencies),
            shows_result=False,
        )
    return _Question(
        stem=_NAME_TO_CODE.format(name=name),
        category=category,
        outcomes=tuple((c, f"The {name} is {c}") for c, _ in picked_currencies),
        shows_result=False,
    )


def _calc_question(rng: random.Random, calc: _Calc) -> _Question:
    while True:
        fields = calc.draw(rng)
        outcomes = _distinct_outcomes(calc.solve(fields), rng)
        if outcomes is not None:
            break
    return _Question(
        stem=rng.choice(calc.templates).format(**fields),
        category=calc.category,
        outcomes=outcomes,
        shows_result=True,
    )


def _parse_options(value: Any) -> list[str] | None:
    """Four option texts from a list or its JSON text (how CSV and Markdown store it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, list) and len(value) == len(LETTERS) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None


def loose_letter(text: str) -> str | None:
    """The option letter an answer written any common way names (``"b"``, ``"(B)"``, ``"Answer: B"``)."""
    match = _LOOSE_LETTER.fullmatch(text)
    return None if match is None else match.group(1).upper()


class FinanceExam(SyntheticTask):
    """Exam-style finance multiple choice: calculations and concepts, answered ``Answer: (X)``."""

    name = "finance_exam"
    domain = "finance"
    description = (
        "Exam-style finance multiple choice (4 options A-D): simple and compound interest, NPV, "
        "bond coupons and current yield, liquidity/leverage/profit ratios, currency conversion "
        "with ISO 4217 codes, and definitions of ratios, risk types and instruments. Wrong options "
        "are the results of common mistakes. Responses show one line of working and end with "
        "'Answer: (X)'."
    )
    output_format = "Answer: (X) with X in A-D"
    metric = "accuracy"
    categories = _CATEGORIES
    # Every response this task teaches is one line; generation stops at its end.
    stop_strings = ("\n",)
    max_new_tokens = 128
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "exam_worked": 1500,
        "answer_key": 1500,
        "forum_scrape": 2500,
        "prep_site": 2000,
        "geography_quiz": 600,
        "validation_size": 100,
        "test_size": 100,
    }
    GENERATOR_VERSION: ClassVar[int] = 1
    #: Fraction of ``forum_scrape`` records whose answer is wrong (exactly ``round(rate * n)``).
    SCRAPE_WRONG_RATE: ClassVar[float] = 0.35

    # -- prompts and examples ------------------------------------------------------------

    def format_prompt(self, question: str, options: Sequence[str]) -> str:
        """The prompt: the question, the lettered options, the answer-format instruction."""
        lines = [
            question.strip(),
            *(f"{letter}) {text}" for letter, text in zip(LETTERS, options, strict=True)),
        ]
        return "\n".join([*lines, INSTRUCTION])

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """A training example from a record with ``question``, ``options`` (4), ``answer``, opt. ``solution``.

        ``options`` may be a list or its JSON text (as CSV and Markdown store it). The
        response is the ``solution`` when rationales are wanted and one is present;
        otherwise a bare capital letter becomes ``Answer: (X)``, and any other answer is
        the response as written (the task does not guess what ``"b"`` or ``"option b"``
        meant, so inconsistent formats teach inconsistent outputs unless transformed).
        """
        for field in ("question", "options", "answer"):
            if field not in record:
                raise DataError(f"finance_exam record is missing the {field!r} field (has: {sorted(record)})")
        question, answer = record["question"], record["answer"]
        if not isinstance(question, str):
            raise DataError(f"finance_exam field 'question' must be text, got {type(question).__name__}")
        if not isinstance(answer, str):
            raise DataError(f"finance_exam field 'answer' must be text, got {type(answer).__name__}")
        options = _parse_options(record["options"])
        if options is None:
            raise DataError("finance_exam field 'options' must be a list of 4 strings (or its JSON text)")
        answer_text = answer.strip()
        if not question.strip() or not answer_text:
            return None
        solution = record.get("solution")
        if include_rationale and isinstance(solution, str) and solution.strip():
            response = solution.strip()
        elif answer_text in LETTERS:
            response = f"Answer: ({answer_text})"
        else:
            response = answer_text
        category = record.get("category")
        return Example(
            prompt=self.format_prompt(question, options),
            response=response,
            category=category if isinstance(category, str) else "",
        )

    def extract_answer(self, output: str) -> str | None:
        """The letter of the first ``Answer: (X)`` in ``output`` (X in A-D); ``None`` without one.

        Strict: ``Answer: B`` or ``answer: (b)`` do not meet the format. The first answer
        counts, so text generated after it cannot change a committed answer.
        """
        match = _ANSWER.search(output)
        return None if match is None else match.group(1)

    # -- verification --------------------------------------------------------------------

    def solve(self, question: str, options: Sequence[str]) -> tuple[int, str] | None:
        """The right option's index and the working that leads to it, recomputed from the question.

        ``None`` when the question is not one this task asks; index ``-1`` when it is
        understood but no option is right.
        """
        stem = normalize_question(question)
        for calc, pattern in _CALC_PATTERNS:
            match = pattern.fullmatch(stem)
            if match is not None:
                fields = {k: v.upper() if k in ("cur", "X", "Y") else v for k, v in match.groupdict().items()}
                try:
                    right, working = calc.solve(fields)[0]
                except (ArithmeticError, ValueError):
                    return None
                return (options.index(right) if right in options else -1), f"{working} = {right}"
        if (match := _FACT_PATTERNS["definition"].fullmatch(stem)) is not None:
            definition = normalize_question(match["definition"])
            expected = _TERM_OF.get(definition.casefold())
            working = f"{_capitalised(expected)}: {definition}" if expected else ""
        elif (match := _FACT_PATTERNS["code"].fullmatch(stem)) is not None:
            code = match["code"].upper()
            expected = dict(_currencies()).get(code)
            working = f"{code} is the {expected}"
        elif (match := _FACT_PATTERNS["name"].fullmatch(stem)) is not None:
            name = next((n for _, n in _currencies() if n.casefold() == match["name"].casefold()), None)
            expected = next((c for c, n in _currencies() if n == name), None)
            working = f"The {name} is {expected}"
        else:
            return None
        if expected is None:
            return None
        folded = [o.casefold() for o in options]
        return (folded.index(expected.casefold()) if expected.casefold() in folded else -1), working

    def right_option(self, question: str, options: Sequence[str]) -> int | None:
        """Index of the right option (``-1``: none is right), or ``None`` if it cannot be recomputed."""
        solved = self.solve(question, options)
        return None if solved is None else solved[0]

    def gold_response(self, item: EvalItem) -> str:
        """The worked solution for ``item``, recomputed from its prompt, ending in ``Answer: (X)``."""
        lines = item.prompt.split("\n")
        options = [line[3:] for line in lines[-1 - len(LETTERS) : -1]]
        solved = self.solve("\n".join(lines[: -1 - len(LETTERS)]), options)
        working = f"{solved[1]}. " if solved is not None and solved[0] >= 0 else ""
        return f"{working}Answer: ({item.reference})"

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the record's letter (and its working's final letter) names the right option.

        The right option is recomputed from the question's figures (or looked up for a
        definition or currency code). ``None`` when the question is not one this task
        can recompute or the options cannot be read. The ``answer`` field is read leniently
        (``"b"``, ``"(B)"``, ``"Answer: B"``); a ``solution`` must end with the strict
        ``Answer: (X)`` naming the same option.
        """
        question = record.get("question")
        options = _parse_options(record.get("options"))
        if not isinstance(question, str) or options is None:
            return None
        right = self.right_option(question, options)
        if right is None:
            return None
        if right < 0:
            return False
        letter = LETTERS[right]
        answer = record.get("answer")
        if answer is not None and loose_letter(str(answer)) != letter:
            return False
        solution = record.get("solution")
        if isinstance(solution, str) and solution.strip():
            return self.extract_answer(solution) == letter
        return answer is not None

    def entity_key(self, question: str, options: Sequence[str]) -> tuple[Any, ...]:
        """What makes two questions the same for disjointness (see the module docstring).

        A calculation: its category and the sorted figures in its question. Anything
        else: its normalised question and its set of options.
        """
        stem = normalize_question(question)
        for calc, pattern in _CALC_PATTERNS:
            if pattern.fullmatch(stem):
                return ("calc", calc.category, tuple(sorted(_FIGURE.findall(stem), key=Decimal)))
        return ("fact", normalize_text(stem), frozenset(normalize_text(o) for o in options))

    def version(self) -> str:
        """The base version plus a digest of the ISO reference data the questions use."""
        return f"{super().version()}-ref{_reference_digest()}"

    # -- generation ----------------------------------------------------------------------

    def _new_question(self, rng: random.Random, category: str) -> _Question:
        calcs = [c for c in _CALCS if c.category == category]
        if category == "concepts" or (category == "currency" and rng.random() < 0.4):
            return _fact_question(rng, category)
        return _calc_question(rng, rng.choice(calcs))

    def _pose(self, rng: random.Random, question: _Question, right_at: int | None) -> _Posed:
        order = list(range(len(LETTERS)))
        rng.shuffle(order)
        if right_at is not None:
            swap = order.index(right_at)
            order[0], order[swap] = order[swap], order[0]
        options = [""] * len(LETTERS)
        for outcome, slot in enumerate(order):
            options[slot] = question.outcomes[outcome][0]
        return _Posed(question=question, options=tuple(options), position=tuple(order))

    def _draw(
        self, rng: random.Random, category: str, right_at: int | None, excluded: set[tuple[Any, ...]]
    ) -> _Posed:
        for _ in range(1000):
            posed = self._pose(rng, self._new_question(rng, category), right_at)
            prompt = self.format_prompt(posed.question.stem, posed.options)
            if (
                self.entity_key(posed.question.stem, posed.options) not in excluded
                and len(prompt) <= PROMPT_LIMIT
                and len(posed.rationale()) <= RESPONSE_LIMIT
            ):
                return posed
        raise TaskSpecError(f"finance_exam: cannot draw a new {category} question")  # pragma: no cover

    def _raw(self, stream: str, size: int, excluded: set[tuple[Any, ...]]) -> list[_Posed]:
        rng = self.rng(stream)
        return [self._draw(rng, c, None, excluded) for c in balanced_categories(_CATEGORIES, size, rng)]

    def generate(self) -> tuple[list[RawSource], list[EvalItem], list[EvalItem]]:
        s = self.sizes
        used: set[tuple[Any, ...]] = set()
        splits = []
        for stream, size, prefix in (
            ("validation", s["validation_size"], "val"),
            ("test", s["test_size"], "test"),
        ):
            rng = self.rng(stream)
            slots = balanced_categories(tuple(str(k) for k in range(len(LETTERS))), size, rng)
            items = []
            for k, (category, slot) in enumerate(
                zip(balanced_categories(_CATEGORIES, size, rng), slots, strict=True)
            ):
                posed = self._draw(rng, category, int(slot), used)
                used.add(self.entity_key(posed.question.stem, posed.options))
                items.append(
                    EvalItem(
                        item_id=f"{prefix}-{k:04d}",
                        prompt=self.format_prompt(posed.question.stem, posed.options),
                        reference=posed.letter_of(0),
                        category=category,
                    )
                )
            splits.append(items)
        validation, test = splits

        def record(posed: _Posed, *, solution: bool, options_as_text: bool = False) -> dict[str, Any]:
            out: dict[str, Any] = {
                "question": posed.question.stem,
                "options": json.dumps(list(posed.options)) if options_as_text else list(posed.options),
            }
            if solution:
                out["solution"] = posed.rationale()
            out["answer"] = posed.letter_of(0)
            out["category"] = posed.question.category
            return out

        worked = [record(p, solution=True) for p in self._raw("exam_worked", s["exam_worked"], used)]

        rng = self.rng("answer_key-noise")
        key = [record(p, solution=False) for p in self._raw("answer_key", s["answer_key"], used)]
        n_key_exact, n_key_near = len(key) // 20, len(key) // 20
        key = with_duplicates(key, exact=n_key_exact, near=n_key_near, field="question", rng=rng)

        rng = self.rng("forum_scrape-noise")
        scraped = self._raw("forum_scrape", s["forum_scrape"], used)
        by_stem = {(p.question.stem, p.options): p for p in scraped}
        forum = [record(p, solution=True) for p in scraped]

        def make_wrong(rec: dict[str, Any], r: random.Random) -> dict[str, Any]:
            posed = by_stem[(rec["question"], tuple(rec["options"]))]
            mistake = r.randint(1, len(posed.question.outcomes) - 1)
            return {**rec, "solution": posed.rationale(mistake), "answer": posed.letter_of(mistake)}

        n_wrong = len(corrupt(forum, self.SCRAPE_WRONG_RATE, rng, make_wrong))
        n_forum_exact, n_forum_near = len(forum) // 25, len(forum) // 25
        forum = with_duplicates(forum, exact=n_forum_exact, near=n_forum_near, field="question", rng=rng)

        rng = self.rng("prep_site-noise")
        styles: tuple[tuple[str, Callable[[str, str], str]], ...] = (
            ("bare letter", lambda letter, text: letter),
            ("lower case", lambda letter, text: letter.lower()),
            ("parenthesised", lambda letter, text: f"({letter})"),
            ("no parentheses", lambda letter, text: f"Answer: {letter}"),
            ("letter and option", lambda letter, text: f"{letter}) {text}"),
            ("option word", lambda letter, text: f"option {letter.lower()}"),
        )
        style_counts = dict.fromkeys((name for name, _ in styles), 0)
        prep = []
        for posed in self._raw("prep_site", s["prep_site"], used):
            name, render = rng.choice(styles)
            style_counts[name] += 1
            rec = record(posed, solution=False)
            rec["answer"] = render(posed.letter_of(0), posed.question.outcomes[0][0])
            prep.append(rec)
        off_format = sum(1 for r in prep if r["answer"] not in LETTERS)

        rng = self.rng("geography_quiz")
        geography = []
        countries = _country_alpha3()
        for _ in range(s["geography_quiz"]):
            picked = rng.sample(countries, 4)
            order = list(range(4))
            rng.shuffle(order)
            options = [picked[k][1] for k in order]
            geography.append(
                {
                    "question": f"Which country has the ISO 3166 code {picked[0][0]}?",
                    "options": json.dumps(options),
                    "answer": LETTERS[order.index(0)],
                    "category": "geography",
                }
            )

        self.quality = {
            "exam_worked": SourceQuality(has_rationale=True),
            "answer_key": SourceQuality(exact_duplicates=n_key_exact, near_duplicates=n_key_near),
            "forum_scrape": SourceQuality(
                wrong_label_rate=n_wrong / len(scraped) if scraped else 0.0,
                exact_duplicates=n_forum_exact,
                near_duplicates=n_forum_near,
                has_rationale=True,
                remarks=f"{n_wrong} of {len(scraped)} distinct records pick a common-mistake option",
            ),
            "prep_site": SourceQuality(
                remarks=(
                    "answers correct, written in 6 styles "
                    f"({', '.join(f'{k}: {v}' for k, v in style_counts.items())}); "
                    f"{off_format} of {len(prep)} not a bare capital letter"
                ),
            ),
            "geography_quiz": SourceQuality(off_domain=True, remarks="ISO 3166 country-code quiz"),
        }
        sources = [
            RawSource(
                source_id="exam_worked",
                records=tuple(worked),
                format="jsonl",
                note=(
                    f"{len(worked)} exam questions (interest, valuation, ratios, currency, concepts) with "
                    "four options, a one-line worked solution ending in 'Answer: (X)', and the letter. "
                    "Spot checks find them correct."
                ),
            ),
            RawSource(
                source_id="answer_key",
                records=tuple(key),
                format="csv",
                note=(
                    f"{len(key)} exam questions from a spreadsheet answer key: options as JSON text, the "
                    "letter only, no working. Some questions appear more than once."
                ),
            ),
            RawSource(
                source_id="forum_scrape",
                records=tuple(forum),
                format="markdown",
                note=(
                    f"{len(forum)} exam questions scraped from a study forum with posters' working. "
                    "Redoing a sample shows many answers are wrong; some repeats."
                ),
            ),
            RawSource(
                source_id="prep_site",
                records=tuple(prep),
                format="jsonl",
                note=(
                    f"{len(prep)} exam questions from a test-prep site, answers only, written in several "
                    "styles ('b', '(B)', 'Answer: B', the option text) rather than one format."
                ),
            ),
            RawSource(
                source_id="geography_quiz",
                records=tuple(geography),
                format="csv",
                note=f"{len(geography)} multiple-choice questions on ISO country codes; not finance.",
            ),
        ]
        return sources, validation, test
