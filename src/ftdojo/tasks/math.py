"""The built-in ``math`` task: short arithmetic word problems answered as ``\\boxed{<integer>}``.

The task is meant to be *learnable* by a tiny character-level model trained from
scratch on a CPU for about a minute, so that fine-tuning measurably beats the base
model (which scores 0). Hence problems are short and templated (single-digit
operands, 6 wordings per category, names and items drawn from small lists) and the
worked solutions are terse: every character is a token for such a model.

Five raw sources of varying quality are generated, all deterministic in ``seed``:
clean worked solutions, answers without working, a forum scrape in which exactly
``round(0.2 * n)`` answers are wrong (detectable by recomputing the arithmetic, see
:meth:`MathWordProblems.verify`), off-domain trivia, and a CSV export of answer sheets
whose answers are right but written in five inconsistent formats, with 30% of its rows
exact or near duplicates (its true quality: 70% of rows unique; two of the five answer
styles, ``8`` and ``8.``, read back as the right answer, the other three do not). The evaluation splits are
balanced over the categories and share no question with each other or with any raw
source.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import attrs

from ftdojo.errors import ConfigError, DataError, TaskSpecError
from ftdojo.scoring.answers import last_boxed, normalize_math_answer
from ftdojo.scoring.numeric import canonical_literal
from ftdojo.tasks.spec import EvalItem, Example, RawSource
from ftdojo.tasks.synthetic import SourceQuality, SyntheticTask, balanced_categories, with_duplicates

__all__ = ["INSTRUCTION", "MathWordProblems"]

#: Appended to every question, for training prompts and evaluation prompts alike, so that
#: a model fine-tuned on :meth:`MathWordProblems.to_example` output sees at evaluation
#: exactly the prompt shape it was trained on.
INSTRUCTION = "\nPut the final answer in \\boxed{}."

_CATEGORIES = ("add", "sub", "mul", "two_step")

_NAMES = (
    "Ana", "Ben", "Carlos", "Dana", "Eli", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
    "Mia", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vik", "Wen", "Yara", "Zoe",
)  # fmt: skip

# (singular, plural): "1 apple" but "3 apples", so every question reads as natural English.
_ITEMS = (
    ("apple", "apples"), ("pen", "pens"), ("marble", "marbles"), ("sticker", "stickers"),
    ("book", "books"), ("cookie", "cookies"), ("shell", "shells"), ("coin", "coins"),
    ("card", "cards"), ("stamp", "stamps"), ("egg", "eggs"), ("balloon", "balloons"),
    ("candle", "candles"), ("rock", "rocks"), ("toy", "toys"), ("peach", "peaches"),
)  # fmt: skip

# Placeholders: {n}, {m} two different names; {a}, {b}, {c} the operands in the order the
# equations use them; {A}, {B} an operand followed by the matching item noun; {i} the
# plural noun. Operands appear in the text in equation order, so that the solution copies
# numbers left to right -- the simplest thing for a tiny model to learn.
#
# Every question is one short sentence or two (about 12 words): the form a tiny model
# learns at its token cap. With longer wordings it learned none of the arithmetic, while
# one-line problems of the same arithmetic were learned (benchmarks/probes/arithmetic.py;
# measurements in docs/tasks.md).
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "add": (
        "{n} has {A} and gets {b} more. How many {i} now?",
        "{n} has {A} and {m} has {B}. How many {i} in all?",
        "{n} buys {A}, then {b} more. How many {i} in all?",
    ),
    "sub": (
        "{n} has {A} and gives away {b}. How many {i} left?",
        "{n} had {A} and lost {b}. How many {i} are left?",
        "{n} has {A} and {m} has {B}. How many more has {n}?",
    ),
    "mul": (
        "{n} has {a} bags of {B}. How many {i} in all?",
        "{a} boxes hold {B} each. How many {i} in all?",
        "{n} gets {A} a day for {b} days. How many {i}?",
    ),
    "two_step": (
        "{n} has {A}, gets {b} more, gives away {c}. How many {i} left?",
        "A box has {A}. {n} adds {b} and takes out {c}. How many {i} now?",
        "{n} had {A}, found {b} more, lost {c}. How many {i} now?",
    ),
}

# Off-domain facts for ``trivia_mix``: (question, one-word answer).
_CAPITALS = (
    ("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Canada", "Ottawa"), ("Germany", "Berlin"),
    ("Norway", "Oslo"), ("Greece", "Athens"), ("Russia", "Moscow"), ("China", "Beijing"),
    ("Chile", "Santiago"), ("Cuba", "Havana"), ("Ireland", "Dublin"), ("Portugal", "Lisbon"),
    ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Thailand", "Bangkok"), ("Ghana", "Accra"), ("Argentina", "Buenos Aires"), ("Mexico", "Mexico City"),
    ("Denmark", "Copenhagen"), ("Hungary", "Budapest"), ("Turkey", "Ankara"), ("India", "New Delhi"),
    ("Australia", "Canberra"),
)  # fmt: skip
_COLORS = (
    ("a ripe banana", "yellow"), ("grass", "green"), ("a clear daytime sky", "blue"), ("snow", "white"),
    ("coal", "black"), ("a ripe tomato", "red"), ("a carrot", "orange"), ("an eggplant", "purple"),
    ("a lemon", "yellow"), ("milk", "white"), ("a fire truck", "red"), ("chocolate", "brown"),
    ("a lime", "green"), ("a pumpkin", "orange"), ("a crow", "black"), ("a flamingo", "pink"),
)  # fmt: skip
_SOUNDS = (
    ("moos", "cow"), ("barks", "dog"), ("meows", "cat"), ("neighs", "horse"), ("quacks", "duck"),
    ("oinks", "pig"), ("baas", "sheep"), ("roars", "lion"), ("hoots", "owl"), ("croaks", "frog"),
    ("hisses", "snake"), ("clucks", "hen"), ("buzzes", "bee"), ("howls", "wolf"),
)  # fmt: skip
_YOUNG = (
    ("dog", "puppy"), ("cat", "kitten"), ("cow", "calf"), ("horse", "foal"), ("sheep", "lamb"),
    ("goat", "kid"), ("frog", "tadpole"), ("bear", "cub"), ("duck", "duckling"), ("kangaroo", "joey"),
    ("swan", "cygnet"), ("owl", "owlet"), ("deer", "fawn"), ("hen", "chick"),
)  # fmt: skip
_OPPOSITES = (
    ("hot", "cold"), ("up", "down"), ("big", "small"), ("fast", "slow"), ("happy", "sad"),
    ("light", "dark"), ("early", "late"), ("open", "closed"), ("full", "empty"), ("old", "young"),
    ("hard", "soft"), ("high", "low"), ("wet", "dry"), ("loud", "quiet"), ("rich", "poor"),
    ("thick", "thin"), ("strong", "weak"), ("left", "right"), ("north", "south"), ("east", "west"),
    ("win", "lose"), ("push", "pull"), ("near", "far"), ("clean", "dirty"), ("day", "night"),
)  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_PLANETS = (
    ("largest planet in the solar system", "Jupiter"), ("planet closest to the Sun", "Mercury"),
    ("planet known as the Red Planet", "Mars"), ("planet we live on", "Earth"),
    ("planet famous for its bright rings", "Saturn"), ("hottest planet in the solar system", "Venus"),
)  # fmt: skip
_TRIVIA_PHRASINGS = ("{q}", "Trivia: {q}", "Quick question: {q}", "Can you tell me: {q}", "Pub quiz: {q}")


def _item_word(question: str) -> str:
    # The counted noun is the word after "How many" in every template.
    match = re.search(r"How many (?:more )?(\w+)", question)
    return match.group(1) if match else "items"


#: How a teacher's answer sheet writes the answer 8: only the first is the clean form.
_SHEET_ANSWER_STYLES: tuple[Callable[[str, str], str], ...] = (
    lambda a, q: a,
    lambda a, q: f"Answer: {a}",
    lambda a, q: f"{a} {_item_word(q)}",
    lambda a, q: f"= {a}",
    lambda a, q: f"{a}.",
)

# ``a op b = c``; operands may be signed or decimal. ``-`` is listed last so it is literal.
_EQUATION = re.compile(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s*([+*×-])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")
_OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "×": lambda x, y: x * y,
}


@attrs.frozen
class _Problem:
    question: str
    solution: str
    answer: str
    category: str
    #: The final equation's left-hand side, kept so a wrong variant can be made from it.
    last_lhs: str


def _format_prompt(question: str) -> str:
    return question.strip() + INSTRUCTION


def _boxed_sentence(answer: str) -> str:
    return f"The answer is \\boxed{{{answer}}}."


def _noun(count: int, item: tuple[str, str]) -> str:
    return item[0] if count == 1 else item[1]


def _make_problem(rng: random.Random, category: str) -> _Problem:
    """One problem of ``category``; operand ranges keep every result a small positive integer."""
    n, m = rng.sample(_NAMES, 2)
    item = rng.choice(_ITEMS)
    template = rng.choice(_TEMPLATES[category])
    c = 0
    if category == "add":
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        lines = [(f"{a} + {b}", a + b)]
    elif category == "sub":
        a = rng.randint(2, 18)
        b = rng.randint(1, min(9, a - 1))
        lines = [(f"{a} - {b}", a - b)]
    elif category == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        lines = [(f"{a} * {b}", a * b)]
    elif category == "two_step":
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        c = rng.randint(1, a + b - 1)
        lines = [(f"{a} + {b}", a + b), (f"{a + b} - {c}", a + b - c)]
    else:  # pragma: no cover - categories are a closed set
        raise TaskSpecError(f"unknown math category {category!r}")
    question = template.format(
        n=n, m=m, i=item[1], a=a, b=b, c=c,
        A=f"{a} {_noun(a, item)}", B=f"{b} {_noun(b, item)}",
    )  # fmt: skip
    answer = str(lines[-1][1])
    solution = "\n".join([*(f"{lhs} = {value}" for lhs, value in lines), _boxed_sentence(answer)])
    return _Problem(
        question=question, solution=solution, answer=answer, category=category, last_lhs=lines[-1][0]
    )


def _with_wrong_answer(problem: _Problem, rng: random.Random) -> _Problem:
    """``problem`` with its final result and boxed answer both off by a small non-zero delta.

    Only the last equation is falsified, as a careless forum poster would: the earlier
    steps stay right, and the error is visible to anyone who redoes the last sum.
    """
    right = int(problem.answer)
    wrong = right + rng.choice([d for d in (-2, -1, 1, 2) if right + d >= 0])
    lines = problem.solution.split("\n")
    lines[-2] = f"{problem.last_lhs} = {wrong}"
    lines[-1] = _boxed_sentence(str(wrong))
    return attrs.evolve(problem, solution="\n".join(lines), answer=str(wrong))


@functools.cache
def _trivia_facts() -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = []
    facts += [(f"What is the capital of {country}?", city) for country, city in _CAPITALS]
    facts += [(f"What color is {thing}?", color) for thing, color in _COLORS]
    facts += [(f"Which animal {sound}?", animal) for sound, animal in _SOUNDS]
    facts += [(f"What is a baby {animal} called?", young) for animal, young in _YOUNG]
    facts += [(f"What is the opposite of {w}?", o) for w, o in _OPPOSITES]
    facts += [(f"What is the opposite of {o}?", w) for w, o in _OPPOSITES]
    facts += [(f"Which day comes after {d}?", _DAYS[(k + 1) % 7]) for k, d in enumerate(_DAYS)]
    facts += [(f"Which day comes before {d}?", _DAYS[k - 1]) for k, d in enumerate(_DAYS)]
    facts += [(f"Which month comes after {mo}?", _MONTHS[(k + 1) % 12]) for k, mo in enumerate(_MONTHS)]
    facts += [(f"Which month comes before {mo}?", _MONTHS[k - 1]) for k, mo in enumerate(_MONTHS)]
    facts += [(f"What is the {desc}?", planet) for desc, planet in _PLANETS]
    letters = "abcdefghijklmnopqrstuvwxyz"
    facts += [(f"Which letter comes after {x} in the alphabet?", y) for x, y in itertools.pairwise(letters)]
    return tuple((p.format(q=q), a) for q, a in facts for p in _TRIVIA_PHRASINGS)


class MathWordProblems(SyntheticTask):
    """Arithmetic word problems (add, sub, mul, two-step) answered as ``\\boxed{<integer>}``.

    Parameters are the sizes of the five raw sources and of the two evaluation splits
    (:attr:`DEFAULT_SIZES`), and the ``seed`` every generated record depends on.
    """

    name = "math"
    domain = "math"
    description = (
        "Short arithmetic word problems about people and everyday items: one addition, "
        "subtraction or multiplication of small numbers, or an addition followed by a "
        "subtraction (two_step). Every answer is a non-negative integer. The evaluator reads "
        "the last \\boxed{...} in the response; worked solutions show one equation per line "
        "and end with 'The answer is \\boxed{N}.'"
    )
    output_format = "\\boxed{<integer>}"
    metric = "accuracy"
    categories = _CATEGORIES
    # Every response this task teaches ends with "\boxed{N}." and no earlier "}." occurs
    # in it, so greedy decoding can stop right after the answer instead of running on.
    stop_strings = ("}.",)
    max_new_tokens = 64
    #: Fraction of ``forum_scrape`` records with a wrong final answer (``round(rate * n)``).
    FORUM_NOISE_RATE = 0.2

    GENERATOR_VERSION = 3
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {
        "worked_solutions": 1500,
        "answers_only": 3000,
        "forum_scrape": 1500,
        "trivia_mix": 800,
        "homework_sheets": 600,
        "validation_size": 100,
        "test_size": 100,
    }

    def __init__(self, seed: int = 0, **sizes: int) -> None:
        super().__init__(seed, **sizes)
        trivia_capacity = len(_trivia_facts())
        if self.sizes["trivia_mix"] > trivia_capacity:
            raise ConfigError(f"math task: trivia_mix is at most {trivia_capacity} (distinct questions)")

    # -- generation ---------------------------------------------------------------------

    def _unique_problems(self, rng: random.Random, n: int, seen: set[str]) -> list[_Problem]:
        """``n`` new problems balanced over the categories, none with a question already in ``seen``."""
        problems = []
        for category in balanced_categories(_CATEGORIES, n, rng):
            for _ in range(1000):
                problem = _make_problem(rng, category)
                if problem.question not in seen:
                    break
            else:  # the question space is ~10^5 per category; this would mean a broken generator
                raise TaskSpecError(f"math task: cannot draw a new {category} question")
            seen.add(problem.question)
            problems.append(problem)
        return problems

    def generate(self) -> tuple[Sequence[RawSource], Sequence[EvalItem], Sequence[EvalItem]]:
        """The five raw sources, in catalogue order, and ``(validation, test)``.

        The splits are balanced over the categories; their prompts are disjoint from each
        other and from all raw data.
        """
        s = self.sizes
        # Evaluation items are drawn first, and every later draw skips questions already
        # taken: the splits are disjoint from each other and from all raw sources by
        # construction (and checked by the base class). Raw sources are disjoint from one
        # another too.
        seen: set[str] = set()
        splits = []
        split_sizes = (("validation", s["validation_size"], "val"), ("test", s["test_size"], "test"))
        for split, size, prefix in split_sizes:
            rng = self.rng(split)
            problems = self._unique_problems(rng, size, seen)
            splits.append(
                tuple(
                    EvalItem(
                        item_id=f"{prefix}-{k:04d}",
                        prompt=_format_prompt(p.question),
                        reference=p.answer,
                        category=p.category,
                    )
                    for k, p in enumerate(problems)
                )
            )
        validation, test = splits

        rng = self.rng("worked_solutions")
        worked = [
            {"question": p.question, "solution": p.solution, "answer": p.answer, "category": p.category}
            for p in self._unique_problems(rng, s["worked_solutions"], seen)
        ]

        rng = self.rng("answers_only")
        answers = [
            {"question": p.question, "answer": p.answer, "category": p.category}
            for p in self._unique_problems(rng, s["answers_only"], seen)
        ]

        rng = self.rng("forum_scrape")
        forum_problems = self._unique_problems(rng, s["forum_scrape"], seen)
        n_wrong = round(self.FORUM_NOISE_RATE * len(forum_problems))
        for k in rng.sample(range(len(forum_problems)), n_wrong):
            forum_problems[k] = _with_wrong_answer(forum_problems[k], rng)
        forum = [
            {"question": p.question, "solution": p.solution, "answer": p.answer, "category": p.category}
            for p in forum_problems
        ]

        rng = self.rng("trivia_mix")
        trivia = [{"question": q, "answer": a} for q, a in rng.sample(_trivia_facts(), s["trivia_mix"])]

        rng = self.rng("homework_sheets")
        # Unique problems make up 70% of the sheet; the rest are copies, as when the same
        # worksheet is exported twice (15% verbatim, 15% with cosmetic edits).
        n_sheet = s["homework_sheets"]
        n_copies = round(0.3 * n_sheet)
        sheet_problems = self._unique_problems(rng, n_sheet - n_copies, seen)
        sheet = [
            {"question": p.question, "answer": rng.choice(_SHEET_ANSWER_STYLES)(p.answer, p.question)}
            for p in sheet_problems
        ]
        sheet = with_duplicates(
            sheet, exact=n_copies // 2, near=n_copies - n_copies // 2, field="question", rng=rng
        )

        n_ws, n_ao, n_fs, n_tm = len(worked), len(answers), len(forum), len(trivia)
        sources = (
            RawSource(
                source_id="worked_solutions",
                records=tuple(worked),
                note=(
                    f"{n_ws} word problems (add, sub, mul, two_step) with short worked solutions: "
                    "explicit arithmetic, one equation per line, then 'The answer is \\boxed{N}.' "
                    "Answers recomputed from the equations and all correct; good SFT material."
                ),
            ),
            RawSource(
                source_id="answers_only",
                records=tuple(answers),
                note=(
                    f"{n_ao} problems of the same kinds with the final answer only, no working. "
                    "Spot-checked answers are correct; plenty of volume, but nothing to learn "
                    "the intermediate steps from."
                ),
            ),
            RawSource(
                source_id="forum_scrape",
                records=tuple(forum),
                note=(
                    f"{n_fs} problems scraped from a homework-help forum, worked solutions in the "
                    "same style. Answers are unreliable: recomputing the arithmetic shows roughly "
                    "one in five final results (and their boxed answers) are wrong. Filter first."
                ),
            ),
            RawSource(
                source_id="trivia_mix",
                records=tuple(trivia),
                note=(
                    f"{n_tm} general-knowledge Q&A pairs (capitals, colors, animals, opposites, "
                    "calendar) with one-word answers and no category. Off-domain: no arithmetic at all."
                ),
            ),
            RawSource(
                source_id="homework_sheets",
                records=tuple(sheet),
                format="csv",
                note=(
                    f"{len(sheet)} rows exported from teachers' answer sheets (CSV: question, answer), "
                    "no working and no category. The answer column is written every which way ('8', "
                    "'Answer: 8', '8 apples', '= 8'), and the same questions recur, some verbatim, some "
                    "with small edits in spacing or case."
                ),
            ),
        )
        self.quality = {
            "worked_solutions": SourceQuality(has_rationale=True),
            "answers_only": SourceQuality(),
            "forum_scrape": SourceQuality(
                wrong_label_rate=n_wrong / n_fs if n_fs else 0.0, has_rationale=True
            ),
            "trivia_mix": SourceQuality(off_domain=True),
            "homework_sheets": SourceQuality(
                exact_duplicates=n_copies // 2,
                near_duplicates=n_copies - n_copies // 2,
                remarks="answers in five formats; only '8' and '8.' read back as the answer 8",
            ),
        }
        return sources, validation, test

    # -- TaskSpec -----------------------------------------------------------------------

    def format_prompt(self, question: str) -> str:
        """The prompt for ``question``: the question and the answer-format instruction."""
        return _format_prompt(question)

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """A training example; the response is the worked solution when asked for and present.

        Without a solution (or with ``include_rationale=False``) the response is just
        ``The answer is \\boxed{<answer>}.``, the same ending a worked solution has, so
        both kinds of response stop at the same place. Returns ``None`` for a record whose
        question or answer is blank; raises :class:`ftdojo.errors.DataError` naming the
        field when ``question`` or ``answer`` is missing or not text.
        """
        for field in ("question", "answer"):
            if field not in record:
                raise DataError(f"math record is missing the {field!r} field (has: {sorted(record)})")
        question, answer = record["question"], record["answer"]
        if not isinstance(question, str):
            raise DataError(f"math record field 'question' must be a string, got {type(question).__name__}")
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            kind = type(answer).__name__
            raise DataError(f"math record field 'answer' must be text or a number, got {kind}")
        answer_text = str(answer).strip()
        if not question.strip() or not answer_text:
            return None
        solution = record.get("solution")
        if include_rationale and isinstance(solution, str) and solution.strip():
            response = solution.strip()
        else:
            response = _boxed_sentence(answer_text)
        category = record.get("category")
        return Example(
            prompt=_format_prompt(question),
            response=response,
            category=category if isinstance(category, str) else "",
        )

    def gold_response(self, item: EvalItem) -> str:
        """The answer sentence every math response ends with."""
        return _boxed_sentence(item.reference)

    def extract_answer(self, output: str) -> str | None:
        """The normalised content of the last ``\\boxed{...}`` in ``output``; ``None`` without one.

        Whitespace, ``$`` and thousands separators are removed; a number is put in
        canonical form (``"8.0"`` -> ``"8"``, ``"1,000"`` -> ``"1000"``); anything else is
        returned as the stripped text, so it simply fails to match a numeric reference.
        """
        content = last_boxed(output)
        return None if content is None else normalize_math_answer(content)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the record's worked arithmetic and final answer check out.

        ``None`` when the record has no solution, or a solution without any
        ``a op b = c`` equation: there is nothing to recompute. Otherwise ``True`` iff
        every equation is arithmetically right and both the boxed answer in the solution
        (if any) and the ``answer`` field (if any) equal the last equation's result.
        """
        solution = record.get("solution")
        if not isinstance(solution, str):
            return None
        equations = _EQUATION.findall(solution)
        if not equations:
            return None
        for lhs, op, rhs, result in equations:
            if _OPS[op](Fraction(lhs), Fraction(rhs)) != Fraction(result):
                return False
        final = canonical_literal(equations[-1][3])
        boxed = self.extract_answer(solution)
        if boxed is not None and boxed != final:
            return False
        answer = record.get("answer")
        return answer is None or normalize_math_answer(str(answer)) == final

    def version(self) -> str:
        """Generator version, seed and every size: changes whenever the generated data would.

        Spelled out rather than the base class's digest, so that data cached under this
        name stays valid.
        """
        s = self.sizes
        return (
            f"math-v{self.GENERATOR_VERSION}-seed{self.seed}-ws{s['worked_solutions']}-ao{s['answers_only']}"
            f"-fs{s['forum_scrape']}-tm{s['trivia_mix']}-hs{s['homework_sheets']}"
            f"-val{s['validation_size']}-test{s['test_size']}"
        )
