"""The built-in math task: generated data, splits, answer extraction and verification."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.errors import ConfigError, DataError
from ftdojo.tasks.math import INSTRUCTION, MathWordProblems
from ftdojo.tasks.registry import get_task, task_reference
from ftdojo.tasks.spec import RawSource, TaskSpec, normalize_text

SOURCE_IDS = ("worked_solutions", "answers_only", "forum_scrape", "trivia_mix", "homework_sheets")
MATH_SOURCES = ("worked_solutions", "answers_only", "forum_scrape")


@pytest.fixture(scope="module")
def task() -> MathWordProblems:
    return MathWordProblems()


@pytest.fixture(scope="module")
def sources(task: MathWordProblems) -> dict[str, RawSource]:
    return {src.source_id: src for src in task.raw_sources()}


def true_answer(question: str, category: str) -> int:
    """The answer recomputed from the question text alone (an oracle independent of the solution).

    Names and items contain no digits and operands appear in equation order, so the
    numbers in the question are exactly the operands.
    """
    nums = [int(x) for x in re.findall(r"\d+", question)]
    if category == "add":
        a, b = nums
        return a + b
    if category == "sub":
        a, b = nums
        return a - b
    if category == "mul":
        a, b = nums
        return a * b
    a, b, c = nums
    return a + b - c


def question_of(prompt: str) -> str:
    assert prompt.endswith(INSTRUCTION)
    return prompt[: -len(INSTRUCTION)]


# -- the class as the registry and the Dojo see it -------------------------------------


def test_class_attributes(task: MathWordProblems) -> None:
    assert isinstance(task, TaskSpec)
    assert task.name == "math"
    assert task.metric == "accuracy"
    assert task.categories == ("add", "sub", "mul", "two_step")
    assert "\\boxed{" in task.output_format
    assert task.max_new_tokens == 64
    assert task.stop_strings


def test_registry_recreates_the_same_task_from_its_reference() -> None:
    original = MathWordProblems(seed=3, worked_solutions=40, answers_only=20, validation_size=8, test_size=8)
    ref = task_reference(original)
    clone = get_task(ref["name"], **ref["params"])
    assert isinstance(clone, MathWordProblems)
    assert clone.version() == original.version()
    assert clone.raw_sources() == original.raw_sources()
    assert clone.eval_splits() == original.eval_splits()


# -- determinism -----------------------------------------------------------------------


def small(seed: int) -> MathWordProblems:
    return MathWordProblems(
        seed,
        worked_solutions=60,
        answers_only=60,
        forum_scrape=60,
        trivia_mix=30,
        validation_size=20,
        test_size=20,
    )


def test_same_seed_same_data() -> None:
    a, b = small(7), small(7)
    assert a.raw_sources() == b.raw_sources()
    assert a.eval_splits() == b.eval_splits()
    assert a.version() == b.version()


def test_different_seed_different_data() -> None:
    a, b = small(7), small(8)
    for src_a, src_b in zip(a.raw_sources(), b.raw_sources(), strict=True):
        assert src_a.records != src_b.records
    assert a.eval_splits() != b.eval_splits()
    assert a.version() != b.version()


def test_data_is_the_same_in_another_process_with_another_hash_seed(task: MathWordProblems) -> None:
    # String hashing is salted per process; the generator must not depend on it.
    script = (
        "import json, hashlib\n"
        "from ftdojo.tasks.math import MathWordProblems\n"
        "t = MathWordProblems()\n"
        "data = [[s.source_id, list(s.records)] for s in t.raw_sources()]\n"
        "data += [[[i.item_id, i.prompt, i.reference, i.category] for i in split]\n"
        "         for split in t.eval_splits()]\n"
        "print(hashlib.sha256(json.dumps(data).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
        )
        digests.add(out.stdout.strip())
    data: list[Any] = [[s.source_id, list(s.records)] for s in task.raw_sources()]
    data += [[[i.item_id, i.prompt, i.reference, i.category] for i in split] for split in task.eval_splits()]
    digests.add(hashlib.sha256(json.dumps(data).encode()).hexdigest())
    assert len(digests) == 1


def test_version_tracks_seed_and_sizes() -> None:
    base = MathWordProblems()
    assert "seed0" in base.version()
    versions = {
        base.version(),
        MathWordProblems(seed=1).version(),
        MathWordProblems(worked_solutions=1000).version(),
        MathWordProblems(answers_only=10).version(),
        MathWordProblems(forum_scrape=10).version(),
        MathWordProblems(trivia_mix=10).version(),
        MathWordProblems(validation_size=10).version(),
        MathWordProblems(test_size=10).version(),
    }
    assert len(versions) == 8


def test_raw_records_are_fresh_copies(task: MathWordProblems) -> None:
    first = task.raw_sources()[0].records[0]
    first["answer"] = "tampered"
    assert task.raw_sources()[0].records[0]["answer"] != "tampered"


# -- sizes and shapes ------------------------------------------------------------------


def test_default_sizes_and_fields(sources: dict[str, RawSource], task: MathWordProblems) -> None:
    assert tuple(sources) == SOURCE_IDS
    sizes = {sid: len(src.records) for sid, src in sources.items()}
    assert sizes == {
        "worked_solutions": 1500,
        "answers_only": 3000,
        "forum_scrape": 1500,
        "trivia_mix": 800,
        "homework_sheets": 600,
    }
    fields = {sid: {tuple(sorted(r)) for r in src.records} for sid, src in sources.items()}
    assert fields["worked_solutions"] == {("answer", "category", "question", "solution")}
    assert fields["forum_scrape"] == {("answer", "category", "question", "solution")}
    assert fields["answers_only"] == {("answer", "category", "question")}
    assert fields["trivia_mix"] == {("answer", "question")}
    assert fields["homework_sheets"] == {("answer", "question")}
    assert sources["homework_sheets"].format == "csv"
    for src in sources.values():
        assert src.note
        assert str(len(src.records)) in src.note
        assert all(isinstance(v, str) for r in src.records for v in r.values())
    validation, test = task.eval_splits()
    assert (len(validation), len(test)) == (100, 100)


def test_custom_sizes() -> None:
    t = MathWordProblems(
        worked_solutions=10,
        answers_only=0,
        forum_scrape=7,
        trivia_mix=5,
        homework_sheets=10,
        validation_size=13,
        test_size=6,
    )
    assert [len(s.records) for s in t.raw_sources()] == [10, 0, 7, 5, 10]
    assert [len(split) for split in t.eval_splits()] == [13, 6]


@pytest.mark.parametrize(
    "params",
    [
        {"worked_solutions": -1},
        {"test_size": 2.5},
        {"validation_size": True},
        {"trivia_mix": 10**6},
        {"seed": "0"},
    ],
)
def test_bad_sizes_are_config_errors(params: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MathWordProblems(**params)


def test_math_answers_are_correct_except_the_forum_noise(sources: dict[str, RawSource]) -> None:
    for sid in ("worked_solutions", "answers_only"):
        for r in sources[sid].records:
            assert r["answer"] == str(true_answer(r["question"], r["category"])), r
    for sid in MATH_SOURCES:
        for r in sources[sid].records:
            assert int(r["answer"]) >= 0


def test_questions_are_short_and_solutions_fit_the_generation_budget(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    # A character-level model spends one token per character: the whole worked solution
    # must fit in max_new_tokens, and questions must stay short (version 3 shortened them
    # to about 58 characters, since the tiny model learned nothing from 85-character ones).
    for sid in MATH_SOURCES:
        lengths = [len(r["question"]) for r in sources[sid].records]
        assert min(lengths) >= 40, sid
        assert max(lengths) <= 80, sid
        assert sum(lengths) / len(lengths) <= 62, sid
        for r in sources[sid].records:
            if "solution" in r:
                assert len(r["solution"]) <= task.max_new_tokens


def test_categories_are_balanced(sources: dict[str, RawSource], task: MathWordProblems) -> None:
    for split in task.eval_splits():
        assert Counter(item.category for item in split) == dict.fromkeys(task.categories, 25)
    for sid in MATH_SOURCES:
        counts = Counter(r["category"] for r in sources[sid].records)
        assert set(counts) == set(task.categories)
        assert max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.parametrize("size", [1, 5, 10, 15, 22])
def test_splits_of_any_size_are_balanced_within_one(size: int) -> None:
    t = MathWordProblems(
        worked_solutions=0,
        answers_only=0,
        forum_scrape=0,
        trivia_mix=0,
        homework_sheets=0,
        validation_size=size,
        test_size=size,
    )
    for split in t.eval_splits():
        counts = Counter(item.category for item in split)
        full = [counts.get(c, 0) for c in t.categories]
        assert sum(full) == size
        assert max(full) - min(full) <= 1


# -- forum noise and verify -------------------------------------------------------------


def test_forum_scrape_has_exactly_twenty_percent_wrong_answers(sources: dict[str, RawSource]) -> None:
    records = sources["forum_scrape"].records
    wrong = [r for r in records if r["answer"] != str(true_answer(r["question"], r["category"]))]
    assert len(wrong) == round(0.2 * len(records)) == 300
    for r in wrong:
        delta = int(r["answer"]) - true_answer(r["question"], r["category"])
        assert 1 <= abs(delta) <= 2
        # The final equation and the boxed answer carry the same wrong number.
        last_equation = r["solution"].split("\n")[-2]
        assert last_equation.endswith(f"= {r['answer']}")
        assert r["solution"].endswith(f"\\boxed{{{r['answer']}}}.")
    # Every category is affected, not just one.
    assert {r["category"] for r in wrong} == {"add", "sub", "mul", "two_step"}


@pytest.mark.parametrize("n", [0, 1, 3, 7, 12, 50])
def test_forum_noise_count_is_round_of_twenty_percent(n: int) -> None:
    t = MathWordProblems(
        worked_solutions=0,
        answers_only=0,
        forum_scrape=n,
        trivia_mix=0,
        homework_sheets=0,
        validation_size=0,
        test_size=0,
    )
    records = t.raw_sources()[2].records
    assert sum(t.verify(r) is False for r in records) == round(0.2 * n)


def test_verify_flags_exactly_the_wrong_forum_records(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    for r in sources["forum_scrape"].records:
        correct = r["answer"] == str(true_answer(r["question"], r["category"]))
        assert task.verify(r) is correct, r


def test_verify_passes_all_worked_solutions(sources: dict[str, RawSource], task: MathWordProblems) -> None:
    assert all(task.verify(r) is True for r in sources["worked_solutions"].records)


def test_verify_cannot_check_records_without_a_solution(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    assert task.verify(sources["answers_only"].records[0]) is None
    assert task.verify(sources["trivia_mix"].records[0]) is None
    assert task.verify({"question": "q", "solution": "no arithmetic here", "answer": "3"}) is None


@pytest.mark.parametrize(
    ("solution", "answer", "expected"),
    [
        ("3 + 4 = 7\nThe answer is \\boxed{7}.", "7", True),
        ("3 + 4 = 8\nThe answer is \\boxed{8}.", "8", False),  # wrong arithmetic
        ("3 + 4 = 7\nThe answer is \\boxed{8}.", "8", False),  # box disagrees with the equation
        ("3 + 4 = 7\nThe answer is \\boxed{7}.", "8", False),  # answer field disagrees
        ("3 + 4 = 7\nThe answer is \\boxed{8}.", "7", False),  # only the box disagrees
        ("3 + 4 = 7\n7 - 2 = 5\nThe answer is \\boxed{5}.", "5", True),
        ("3 + 4 = 7\n7 - 2 = 4\nThe answer is \\boxed{4}.", "4", False),  # second step wrong
        ("3 + 4 = 8\n8 - 2 = 6\nThe answer is \\boxed{6}.", "6", False),  # first step wrong
        ("6 × 7 = 42, so \\boxed{42}", "42", True),
        ("6*7=42\nThe answer is \\boxed{42}.", "42.0", True),
        ("12 - 20 = -8\nThe answer is \\boxed{-8}.", "-8", True),
        ("1.5 + 2.5 = 4\nThe answer is \\boxed{4}.", "4", True),
        ("10 - 3 = 7", "7", True),  # no box: the answer field alone is compared
    ],
)
def test_verify_cases(task: MathWordProblems, solution: str, answer: str, expected: bool) -> None:
    assert task.verify({"question": "q", "solution": solution, "answer": answer}) is expected


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["+", "-", "*", "×"]),
    st.integers(-5, 5),
)
def test_verify_agrees_with_python_arithmetic(a: int, b: int, op: str, error: int) -> None:
    task = MathWordProblems(
        worked_solutions=0, answers_only=0, forum_scrape=0, trivia_mix=0, validation_size=0, test_size=0
    )
    right = {"+": a + b, "-": a - b, "*": a * b, "×": a * b}[op]
    claimed = right + error
    record = {
        "solution": f"{a} {op} {b} = {claimed}\nThe answer is \\boxed{{{claimed}}}.",
        "answer": str(claimed),
    }
    assert task.verify(record) is (error == 0)


# -- splits ----------------------------------------------------------------------------


def test_splits_are_disjoint_from_each_other_and_from_all_raw_questions(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    validation, test = task.eval_splits()
    val_q = {question_of(i.prompt) for i in validation}
    test_q = {question_of(i.prompt) for i in test}
    assert len(val_q) == len(validation)
    assert len(test_q) == len(test)
    assert not val_q & test_q
    raw_q = {normalize_text(r["question"]) for src in sources.values() for r in src.records}
    assert not {normalize_text(q) for q in val_q | test_q} & raw_q
    # Raw sources do not share questions with each other either (only homework_sheets
    # repeats its own rows, on purpose).
    distinct = {
        sid: len({normalize_text(r["question"]) for r in src.records}) for sid, src in sources.items()
    }
    assert len(raw_q) == sum(distinct.values())
    assert all(n == len(sources[sid].records) for sid, n in distinct.items() if sid != "homework_sheets")


def test_eval_items_look_right(task: MathWordProblems) -> None:
    validation, test = task.eval_splits()
    ids = [i.item_id for i in [*validation, *test]]
    assert len(set(ids)) == len(ids)
    for item in [*validation, *test]:
        assert item.prompt.endswith(INSTRUCTION)
        assert item.reference == str(true_answer(question_of(item.prompt), item.category))


def test_references_survive_extraction(task: MathWordProblems) -> None:
    for split in task.eval_splits():
        for item in split:
            assert task.extract_answer(f"\\boxed{{{item.reference}}}") == item.reference


# -- to_example --------------------------------------------------------------------------


def test_training_and_eval_prompts_match(task: MathWordProblems) -> None:
    for split in task.eval_splits():
        for item in split:
            record = {
                "question": question_of(item.prompt),
                "answer": item.reference,
                "category": item.category,
            }
            example = task.to_example(record, include_rationale=True)
            assert example is not None
            assert example.prompt == item.prompt
            assert example.category == item.category
            assert example.prompt == task.format_prompt(question_of(item.prompt))


def test_to_example_responses(sources: dict[str, RawSource], task: MathWordProblems) -> None:
    worked = sources["worked_solutions"].records[0]
    with_rationale = task.to_example(worked, include_rationale=True)
    without = task.to_example(worked, include_rationale=False)
    assert with_rationale is not None
    assert without is not None
    assert with_rationale.response == worked["solution"]
    assert without.response == f"The answer is \\boxed{{{worked['answer']}}}."
    assert with_rationale.prompt == without.prompt == worked["question"] + INSTRUCTION
    assert with_rationale.category == worked["category"]

    answer_only = task.to_example(sources["answers_only"].records[0], include_rationale=True)
    assert answer_only is not None
    assert answer_only.response == f"The answer is \\boxed{{{sources['answers_only'].records[0]['answer']}}}."

    trivia_record = sources["trivia_mix"].records[0]
    trivia = task.to_example(trivia_record, include_rationale=True)
    assert trivia is not None
    assert trivia.category == ""
    assert trivia.response == f"The answer is \\boxed{{{trivia_record['answer']}}}."


def test_every_math_response_ends_at_its_first_stop_string_and_yields_the_answer(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    # Generation stops at the first stop string, so it must be exactly at the end of every
    # response the task teaches -- and what is cut there must still hold the answer.
    for sid in MATH_SOURCES:
        for r in sources[sid].records:
            for rationale in (True, False):
                example = task.to_example(r, include_rationale=rationale)
                assert example is not None
                first_stop = min(
                    example.response.find(s) + len(s) for s in task.stop_strings if s in example.response
                )
                assert first_stop == len(example.response)
                assert task.extract_answer(example.response) == r["answer"]


@pytest.mark.parametrize("missing", ["question", "answer"])
def test_to_example_names_the_missing_field(task: MathWordProblems, missing: str) -> None:
    record = {"question": "What is 2 + 2?", "answer": "4", "solution": "2 + 2 = 4"}
    del record[missing]
    with pytest.raises(DataError, match=repr(missing)):
        task.to_example(record, include_rationale=True)


def test_to_example_rejects_non_text_and_skips_blank(task: MathWordProblems) -> None:
    with pytest.raises(DataError, match="question"):
        task.to_example({"question": ["list"], "answer": "4"}, include_rationale=False)
    with pytest.raises(DataError, match="answer"):
        task.to_example({"question": "q", "answer": {"x": 1}}, include_rationale=False)
    assert task.to_example({"question": "  ", "answer": "4"}, include_rationale=False) is None
    assert task.to_example({"question": "q", "answer": ""}, include_rationale=False) is None
    numeric = task.to_example({"question": "q", "answer": 4}, include_rationale=False)
    assert numeric is not None
    assert numeric.response == "The answer is \\boxed{4}."


# -- extract_answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The answer is \\boxed{8}.", "8"),
        ("\\boxed{3} then \\boxed{5}", "5"),  # the last box wins
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces are kept balanced
        ("\\boxed{{8}}", "{8}"),
        ("\\boxed{\\boxed{5}}", "5"),
        ("\\boxed{x \\boxed{5} y}", "5"),
        ("\\boxed{1,000}", "1000"),
        ("\\boxed{1{,}234,567}", "1234567"),
        ("\\boxed{8.0}", "8"),
        ("\\boxed{2.50}", "2.5"),
        ("\\boxed{ $ 12 $ }", "12"),
        ("\\boxed{-0}", "0"),
        ("\\boxed{+7}", "7"),
        ("\\boxed {9}", "9"),
        ("\\boxed{1,2}", "1,2"),  # not a thousands group: left as text
        ("\\boxed{Paris}", "Paris"),
        ("\\boxed{}", ""),
        ("no box at all: 8", None),
        ("", None),
        ("\\boxed{7} and then \\boxed{8", "7"),  # a truncated last box does not count
        ("\\boxed{12", None),
        ("boxed{8}", None),
        ("\\boxed{1e400}", "1e400"),  # too large to be an answer: kept as text, no huge int
    ],
)
def test_extract_answer_cases(task: MathWordProblems, output: str, expected: str | None) -> None:
    assert task.extract_answer(output) == expected


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12), st.text(max_size=20))
def test_extract_answer_numbers(first: int, last: int, noise: str) -> None:
    task = MathWordProblems(
        worked_solutions=0, answers_only=0, forum_scrape=0, trivia_mix=0, validation_size=0, test_size=0
    )
    noise = noise.replace("\\", "")  # no stray boxes in the filler
    assert task.extract_answer(f"\\boxed{{{last}}}") == str(last)
    assert task.extract_answer(f"\\boxed{{{last:,}}}") == str(last)
    assert task.extract_answer(f"\\boxed{{{last}.0}}") == str(last)
    assert task.extract_answer(f"{noise}\\boxed{{{first}}}{noise}\\boxed{{ {last} }}{noise}") == str(last)


def test_homework_sheets_repeat_rows_and_write_answers_inconsistently(
    sources: dict[str, RawSource], task: MathWordProblems
) -> None:
    rows = sources["homework_sheets"].records
    assert len(rows) == 600
    exact = len(rows) - len({(r["question"], r["answer"]) for r in rows})
    unique_questions = {normalize_text(r["question"]) for r in rows}
    assert exact >= 0.1 * len(rows)  # 90 verbatim copies (a copy of a copy counts once)
    assert len(unique_questions) == 420  # 70% unique once near copies are folded
    # The answers are right but only two of the five styles read back as the number.
    styles = Counter(
        "clean"
        if task.extract_answer(task.to_example(r, include_rationale=True).response) is not None
        and task.extract_answer(task.to_example(r, include_rationale=True).response) == _number(r["answer"])
        else "messy"
        for r in rows
    )
    assert 0.25 * len(rows) < styles["clean"] < 0.55 * len(rows)


def _number(answer: str) -> str:
    import re as _re

    return _re.search(r"\d+", answer).group(0)  # type: ignore[union-attr]
