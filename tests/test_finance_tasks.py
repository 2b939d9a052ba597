"""The finance_exam task: generated exam questions, splits, answer extraction and verification."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from ftdojo.errors import DataError
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.tasks.finance import INSTRUCTION, LETTERS, PROMPT_LIMIT, RESPONSE_LIMIT, FinanceExam, loose_letter
from ftdojo.tasks.registry import get_task, task_reference
from ftdojo.tasks.spec import RawSource, normalize_text

SMALL = {
    "exam_worked": 150,
    "answer_key": 100,
    "forum_scrape": 200,
    "prep_site": 100,
    "geography_quiz": 30,
    "validation_size": 40,
    "test_size": 40,
}
SOURCE_IDS = ("exam_worked", "answer_key", "forum_scrape", "prep_site", "geography_quiz")
CATEGORIES = ("interest", "valuation", "ratios", "currency", "concepts")


@pytest.fixture(scope="module")
def task() -> FinanceExam:
    return FinanceExam(seed=0, **SMALL)


@pytest.fixture(scope="module")
def sources(task: FinanceExam) -> dict[str, RawSource]:
    return {s.source_id: s for s in task.raw_sources()}


def options_of(record: dict[str, Any]) -> list[str]:
    value = record["options"]
    return json.loads(value) if isinstance(value, str) else list(value)


def stem_and_options(prompt: str) -> tuple[str, list[str]]:
    lines = prompt.split("\n")
    assert lines[-1] == INSTRUCTION
    options = lines[-5:-1]
    assert [o[:3] for o in options] == ["A) ", "B) ", "C) ", "D) "]
    return "\n".join(lines[:-5]), [o[3:] for o in options]


def figures(stem: str) -> tuple[str, ...]:
    """The multiset of figures in a question, read with nothing from the task."""
    return tuple(sorted(re.findall(r"\d+(?:\.\d+)?", stem), key=Decimal))


def is_calculation(stem: str) -> bool:
    return bool(re.search(r"\d", stem)) and "ISO 4217" not in stem


# -- the class as the registry sees it -----------------------------------------------------


def test_card_and_registry(task: FinanceExam) -> None:
    assert task.name == "finance_exam"
    assert task.domain == "finance"
    assert task.metric == "accuracy"
    assert task.categories == CATEGORIES
    assert "Answer: (X)" in task.output_format
    clone = get_task("finance_exam", **task_reference(task)["params"])
    assert isinstance(clone, FinanceExam)
    assert clone.version() == task.version()


def test_same_seed_same_data_other_seed_other_data() -> None:
    sizes = {**SMALL, "forum_scrape": 40, "validation_size": 10, "test_size": 10}
    a, b, c = FinanceExam(seed=3, **sizes), FinanceExam(seed=3, **sizes), FinanceExam(seed=4, **sizes)
    assert a.raw_sources() == b.raw_sources()
    assert a.eval_splits() == b.eval_splits()
    assert a.quality == b.quality
    assert a.eval_splits() != c.eval_splits()
    assert a.raw_sources()[0].records != c.raw_sources()[0].records
    assert a.version() != c.version()


# -- splits --------------------------------------------------------------------------------


def test_splits_are_balanced_over_categories_and_letters(task: FinanceExam) -> None:
    validation, test = task.eval_splits()
    assert len(validation) == SMALL["validation_size"]
    assert len(test) == SMALL["test_size"]
    for split in (validation, test):
        assert Counter(i.category for i in split) == dict.fromkeys(CATEGORIES, len(split) // 5)
        assert Counter(i.reference for i in split) == dict.fromkeys(LETTERS, len(split) // 4)
    prompts = [normalize_text(i.prompt) for i in (*validation, *test)]
    assert len(set(prompts)) == len(prompts)


def test_evaluation_questions_never_occur_in_any_raw_source(task: FinanceExam) -> None:
    """Entity disjointness: no raw record asks an evaluation calculation's figures, or its exact question."""
    validation, test = task.eval_splits()
    eval_calcs, eval_facts = set(), set()
    for item in (*validation, *test):
        stem, options = stem_and_options(item.prompt)
        if is_calculation(stem):
            eval_calcs.add((item.category, figures(stem)))
        else:
            eval_facts.add((normalize_text(stem), frozenset(options)))
    assert len(eval_calcs) + len(eval_facts) == len(validation) + len(test)
    eval_keys = {task.entity_key(*stem_and_options(i.prompt)) for i in (*validation, *test)}
    checked = 0
    for source in task.raw_sources():
        for record in source.records:
            stem, options = record["question"], options_of(record)
            assert task.entity_key(stem, options) not in eval_keys
            if is_calculation(stem):
                assert (record["category"], figures(stem)) not in eval_calcs
            else:
                assert (normalize_text(stem), frozenset(options)) not in eval_facts
            checked += 1
    assert checked > 500


def test_prompts_and_responses_fit_the_tiny_model(task: FinanceExam, sources: dict[str, RawSource]) -> None:
    validation, test = task.eval_splits()
    assert max(len(i.prompt) for i in (*validation, *test)) <= PROMPT_LIMIT
    longest = 0
    for source in sources.values():
        for record in source.records:
            example = task.to_example(record, include_rationale=True)
            assert example is not None
            assert len(example.prompt) <= PROMPT_LIMIT
            assert example.prompt.isascii()
            assert example.response.isascii()
            assert example.prompt.endswith(INSTRUCTION)
            longest = max(longest, len(example.response))
    assert longest <= RESPONSE_LIMIT
    assert task.max_new_tokens >= longest + 8


def test_the_right_option_is_not_given_away_by_position_or_size(sources: dict[str, RawSource]) -> None:
    records = [r for s in ("exam_worked", "answer_key") for r in sources[s].records]
    letters = Counter(r["answer"] for r in records)
    assert min(letters.values()) >= len(records) // 6
    ranks: Counter[int] = Counter()
    for record in records:
        options = options_of(record)
        values = [Decimal(o.split()[0].rstrip("%")) if re.match(r"-?\d", o) else None for o in options]
        if None in values:
            continue
        right = values[LETTERS.index(record["answer"])]
        ranks[sorted(values).index(right)] += 1  # type: ignore[type-var]
    assert len(ranks) == 4
    assert min(ranks.values()) >= sum(ranks.values()) // 8, ranks


# -- raw sources ---------------------------------------------------------------------------


def test_sources_formats_and_quality(task: FinanceExam, sources: dict[str, RawSource]) -> None:
    assert tuple(sources) == SOURCE_IDS
    assert {s.format for s in sources.values()} == {"jsonl", "csv", "markdown"}
    assert set(task.quality) == set(SOURCE_IDS)
    assert task.quality["geography_quiz"].off_domain
    assert task.quality["exam_worked"].has_rationale
    assert task.quality["forum_scrape"].wrong_label_rate == pytest.approx(0.35)
    for source in sources.values():
        assert "%" not in source.note


def test_every_source_survives_its_file_format(task: FinanceExam, sources: dict[str, RawSource]) -> None:
    for source in sources.values():
        back = parse_records(dump_records(list(source.records), source.format), source.format, where="x")
        assert len(back) == len(source.records)
        for original, stored in zip(source.records, back, strict=True):
            for flag in (True, False):
                assert task.to_example(stored, include_rationale=flag) == task.to_example(
                    original, include_rationale=flag
                )
            assert task.verify(stored) == task.verify(original)


def test_clean_sources_verify_and_off_domain_cannot_be_verified(
    task: FinanceExam, sources: dict[str, RawSource]
) -> None:
    for source_id in ("exam_worked", "answer_key", "prep_site"):
        assert all(task.verify(r) is True for r in sources[source_id].records), source_id
    assert all(task.verify(r) is None for r in sources["geography_quiz"].records)


def test_verify_finds_exactly_the_injected_wrong_answers(
    task: FinanceExam, sources: dict[str, RawSource]
) -> None:
    records = sources["forum_scrape"].records
    distinct = {(normalize_text(r["question"]), tuple(options_of(r)), r["answer"]): r for r in records}
    wrong = [r for r in distinct.values() if task.verify(r) is False]
    assert len(wrong) == round(0.35 * SMALL["forum_scrape"])
    for record in wrong:
        # A wrong record shows the working of a common mistake that ends in its own letter.
        assert task.extract_answer(record["solution"]) == record["answer"]
        chosen = options_of(record)[LETTERS.index(record["answer"])]
        if is_calculation(record["question"]):
            assert record["solution"].endswith(f" = {chosen}. Answer: ({record['answer']})")
        else:
            assert chosen.casefold() in record["solution"].casefold()


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def oracle(question: str) -> str | None:
    """The right option text for some calculations, recomputed from the wording alone."""
    q = " ".join(question.split())
    if m := re.search(r"(\d+) is deposited at (\d+)% simple interest a year.* in (\d+) years", q):
        p, r, t = map(Decimal, m.groups())
        return money(p * r * t / 100)
    if m := re.search(r"current assets of (\d+) and current liabilities of (\d+)", q):
        ca, cl = map(Decimal, m.groups())
        return money(ca / cl)
    if m := re.fullmatch(r"Convert (\d+) ([A-Z]{3}) to ([A-Z]{3}) at 1 \2 = ([\d.]+) \3\.?", q):
        return f"{money(Decimal(m.group(1)) * Decimal(m.group(4)))} {m.group(3)}"
    if m := re.search(r"face value (\d+) pays a ([\d.]+)% annual coupon in two halves", q):
        face, c = map(Decimal, m.groups())
        return money(face * c / 200)
    return None


def test_verify_agrees_with_an_independent_oracle(sources: dict[str, RawSource], task: FinanceExam) -> None:
    checked = 0
    for source_id in ("forum_scrape", "exam_worked"):
        for record in sources[source_id].records:
            right = oracle(record["question"])
            if right is None:
                continue
            options = options_of(record)
            assert right in options, record
            checked += 1
            assert task.verify(record) is (options[LETTERS.index(record["answer"])] == right)
    assert checked >= 15


def test_verify_checks_concepts_and_currency_codes(task: FinanceExam, sources: dict[str, RawSource]) -> None:
    facts = [r for r in sources["exam_worked"].records if not is_calculation(r["question"])]
    assert any("term means" in r["question"] for r in facts)
    assert any("ISO 4217" in r["question"] for r in facts)
    for record in facts:
        right = record["answer"]
        other = next(x for x in LETTERS if x != right)
        assert task.verify({**record, "solution": None}) is True
        assert task.verify({**record, "solution": None, "answer": other}) is False
    record = {
        "question": "Which currency has the ISO 4217 code JPY?",
        "options": ["Euro", "Yen", "Won", "Yuan Renminbi"],
        "answer": "b",
    }
    assert task.verify(record) is True
    assert task.verify({**record, "answer": "A"}) is False
    assert task.verify({**record, "options": ["Euro", "Dollar", "Won", "Rupee"]}) is False  # no right option
    term = {
        "question": "Which term means: the risk that a borrower fails to repay a debt?",
        "options": ["market risk", "credit risk", "liquidity risk", "currency risk"],
        "answer": "Answer: B",
    }
    assert task.verify(term) is True
    assert task.verify({**term, "question": "What is love?"}) is None
    assert task.verify({**term, "options": "not json"}) is None


def test_verify_reads_a_hand_written_calculation(task: FinanceExam) -> None:
    record = {
        "question": (
            "EUR 2000 is deposited at 5% simple interest a year. What interest does it earn in 3 years?"
        ),
        "options": ["2300.00", "100.00", "300.00", "315.25"],
        "answer": "C",
        "solution": "I = 2000*5%*3 = 300.00. Answer: (C)",
    }
    assert task.verify(record) is True
    assert task.verify({**record, "question": record["question"].upper()}) is True  # case and spacing
    assert task.verify({**record, "answer": "A"}) is False
    assert task.verify({**record, "solution": "I = 2000*5%*3 = 300.00. Answer: (A)"}) is False
    assert task.verify({**record, "solution": "no letter here"}) is False


# -- examples and answers ------------------------------------------------------------------


def test_to_example_formats() -> None:
    task = FinanceExam(seed=0, **SMALL)
    base = {"question": "Q?", "options": ["1", "2", "3", "4"]}
    example = task.to_example({**base, "answer": "B", "category": "ratios"}, include_rationale=True)
    assert example is not None
    assert example.prompt == "Q?\nA) 1\nB) 2\nC) 3\nD) 4\n" + INSTRUCTION
    assert example.response == "Answer: (B)"
    assert example.category == "ratios"
    with_working = {**base, "answer": "B", "solution": "2 = 2. Answer: (B)"}
    worked = task.to_example(with_working, include_rationale=True)
    assert worked is not None
    assert worked.response == "2 = 2. Answer: (B)"
    plain = task.to_example(with_working, include_rationale=False)
    assert plain is not None
    assert plain.response == "Answer: (B)"
    odd = task.to_example({**base, "answer": "b"}, include_rationale=True)
    assert odd is not None
    assert odd.response == "b"  # taken as written
    as_text = task.to_example(
        {**base, "options": json.dumps(base["options"]), "answer": "B"}, include_rationale=True
    )
    assert as_text == task.to_example({**base, "answer": "B"}, include_rationale=True)
    assert task.to_example({**base, "answer": " "}, include_rationale=True) is None
    with pytest.raises(DataError, match="options"):
        task.to_example({**base, "options": ["1", "2"], "answer": "A"}, include_rationale=True)
    with pytest.raises(DataError, match="answer"):
        task.to_example(dict(base), include_rationale=True)
    with pytest.raises(DataError, match="question"):
        task.to_example({**base, "question": 3, "answer": "A"}, include_rationale=True)


def test_prep_site_answers_mostly_miss_the_required_form(
    task: FinanceExam, sources: dict[str, RawSource]
) -> None:
    records = sources["prep_site"].records
    misses = 0
    for record in records:
        example = task.to_example(record, include_rationale=True)
        assert example is not None
        misses += task.extract_answer(example.response) is None
    assert misses >= len(records) // 2


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("I = 2000*5%*3 = 300.00. Answer: (C)", "C"),
        ("Answer: (A)", "A"),
        ("Answer:(D)", "D"),
        ("Answer: (B)\nAnswer: (C)", "B"),
        ("Answer: B", None),
        ("answer: (b)", None),
        ("Answer: (E)", None),
        ("(B)", None),
        ("", None),
    ],
)
def test_extract_answer_is_strict(output: str, expected: str | None) -> None:
    assert FinanceExam(seed=0, **SMALL).extract_answer(output) == expected


@pytest.mark.parametrize(
    ("text", "letter"),
    [("b", "B"), ("B", "B"), ("(B)", "B"), ("Answer: B", "B"), ("Answer: (c)", "C"), ("B) 300.00", "B"),
     ("option d", "D"), ("E", None), ("banana", None), ("", None)],
)  # fmt: skip
def test_loose_letter(text: str, letter: str | None) -> None:
    assert loose_letter(text) == letter


def test_reference_is_what_extract_answer_reads_from_a_clean_response(task: FinanceExam) -> None:
    validation, _ = task.eval_splits()
    for item in validation:
        assert task.extract_answer(f"x = 1. Answer: ({item.reference})") == item.reference


def test_gold_response_is_the_worked_solution_and_scores(task: FinanceExam) -> None:
    validation, test = task.eval_splits()
    for item in (*validation, *test):
        gold = task.gold_response(item)
        assert task.extract_answer(gold) == item.reference
        assert len(gold) <= RESPONSE_LIMIT
        assert re.fullmatch(r".+\. Answer: \([A-D]\)", gold), gold
