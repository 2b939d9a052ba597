"""The patent tasks (prior art, paragraphs, novelty) and their metrics (macro_f1, gold_hit_rate)."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.errors import DataError
from ftdojo.metrics import load_metric
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.scoring.labels import (
    canonical_label_set,
    gold_hit_rate,
    macro_f1,
    parse_label_set,
    parse_paragraph_numbers,
)
from ftdojo.tasks.patent import (
    ACTIONS,
    COMPONENTS,
    FIELDS,
    MAX_PROMPT_CHARS,
    NOISE_RATE,
    NoveltyDecision,
    ParagraphIdentification,
    PriorArtRetrieval,
)
from ftdojo.tasks.registry import get_task, task_reference
from ftdojo.tasks.spec import EvalItem, RawSource, normalize_text
from ftdojo.tasks.synthetic import SyntheticTask

TASK_CLASSES: dict[str, type[SyntheticTask]] = {
    "patent_prior_art": PriorArtRetrieval,
    "patent_paragraph": ParagraphIdentification,
    "patent_novelty": NoveltyDecision,
}
OFF_DOMAIN = {
    "patent_prior_art": "trademark_search",
    "patent_paragraph": "litigation_docket",
    "patent_novelty": "trademark_refusals",
}
IN_DOMAIN = ("examiner_reviewed", "auto_labelled", "office_actions")


def small(name: str, seed: int = 0) -> SyntheticTask:
    return TASK_CLASSES[name](
        seed,
        examiner_reviewed=80,
        auto_labelled=200,
        office_actions=120,
        **{OFF_DOMAIN[name]: 40},
        validation_size=24,
        test_size=24,
    )


@pytest.fixture(scope="module", params=list(TASK_CLASSES))
def task(request: pytest.FixtureRequest) -> SyntheticTask:
    """Each task at its default sizes, built once per module."""
    built = TASK_CLASSES[request.param]()
    built.raw_sources()
    return built


def sources_of(task: SyntheticTask) -> dict[str, RawSource]:
    return {s.source_id: s for s in task.raw_sources()}


# -- independent oracles: the answer read off the prompt with the tests' own parsing ----------------


def prompt_lines(prompt: str) -> list[str]:
    """The prompt's lines without the instruction (its last line)."""
    lines = prompt.split("\n")
    assert "\\boxed{" in lines[-1]
    return lines[:-1]


def claim_of(line: str) -> frozenset[str]:
    assert line.startswith("Claim: ")
    # Near duplicates change case, spacing and end punctuation only.
    return frozenset(t.strip(" .").lower() for t in line[len("Claim: ") :].split(";"))


def oracle(name: str, prompt: str) -> set[str]:
    """Every right answer to ``prompt`` (canonical), computed without the task's code."""
    lines = prompt_lines(prompt)
    if name == "patent_prior_art":
        claim = claim_of(lines[0])
        hits = {line[0] for line in lines[1:] if claim <= {t.strip() for t in line[3:].split(",")}}
        return {",".join(sorted(hits))}
    if name == "patent_paragraph":
        element = re.fullmatch(r"element: an? (\w+) that (.+?)\.?", " ".join(lines[0].lower().split()))
        assert element is not None
        wanted = f" {element.group(1)} {element.group(2)}."
        return {str(int(line[1:5])) for line in lines[1:] if line.endswith(wanted)}
    claim = claim_of(lines[0])
    d1 = {t.strip() for t in lines[1].removeprefix("D1: ").split(",")}
    d2 = {t.strip() for t in lines[2].removeprefix("D2: ").split(",")}
    if claim <= d1 or claim <= d2:
        return {"102"}
    return {"103" if claim <= d1 | d2 else "ALLOW"}


def entity_of(name: str, prompt: str) -> Any:
    """What must not leak: a claim's element set, or a paragraph task's (component, function)."""
    first = normalize_text(prompt.split("\n", 1)[0])
    if name == "patent_paragraph":
        match = re.fullmatch(r"element an? (\w+) that (.+)", first)
        return None if match is None else (match.group(1), match.group(2))
    return frozenset(first.removeprefix("claim ").split())


# -- the classes as the registry sees them ------------------------------------------------------


@pytest.mark.parametrize("name", list(TASK_CLASSES))
def test_registry_maps_the_names_to_these_classes(name: str) -> None:
    original = small(name, seed=3)
    assert original.name == name
    assert original.domain == "patent"
    assert original.categories == FIELDS
    assert original.stop_strings == ("}",)
    clone = get_task(name, **task_reference(original)["params"])
    assert type(clone) is TASK_CLASSES[name]
    assert clone.version() == original.version()
    assert clone.raw_sources() == original.raw_sources()
    assert clone.eval_splits() == original.eval_splits()


def test_metrics_are_the_ones_asked_for() -> None:
    assert PriorArtRetrieval.metric == "macro_f1"
    assert ParagraphIdentification.metric == "gold_hit_rate"
    assert NoveltyDecision.metric == "macro_f1"


# -- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TASK_CLASSES))
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    a, b, c = small(name, 7), small(name, 7), small(name, 8)
    assert a.raw_sources() == b.raw_sources()
    assert a.eval_splits() == b.eval_splits()
    assert a.quality == b.quality
    for src_a, src_c in zip(a.raw_sources(), c.raw_sources(), strict=True):
        assert src_a.records != src_c.records
    assert a.eval_splits() != c.eval_splits()
    assert a.version() != c.version()


def test_data_does_not_depend_on_the_hash_seed() -> None:
    # String hashing is salted per process; set iteration must never reach the data.
    script = (
        "import hashlib, json\n"
        "from ftdojo.tasks.patent import NoveltyDecision, ParagraphIdentification, PriorArtRetrieval\n"
        "data = []\n"
        "for cls in (PriorArtRetrieval, ParagraphIdentification, NoveltyDecision):\n"
        "    t = cls(examiner_reviewed=30, auto_labelled=60, office_actions=40,\n"
        "            validation_size=8, test_size=8, **{cls.OFF_DOMAIN_SOURCE: 10})\n"
        "    data += [[s.source_id, list(s.records)] for s in t.raw_sources()]\n"
        "    data += [[[i.prompt, i.reference] for i in split] for split in t.eval_splits()]\n"
        "print(hashlib.sha256(json.dumps(data).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# -- shapes, sizes, balance ---------------------------------------------------------------------


def test_sources_formats_sizes_and_quality(task: SyntheticTask) -> None:
    sources = sources_of(task)
    off = OFF_DOMAIN[task.name]
    assert tuple(sources) == (*IN_DOMAIN, off)
    assert {sid: s.format for sid, s in sources.items()} == {
        "examiner_reviewed": "jsonl",
        "auto_labelled": "csv",
        "office_actions": "markdown",
        off: "jsonl",
    }
    assert len(sources["examiner_reviewed"].records) == 1000
    # Duplicates are added on top of the drawn records.
    assert len(sources["auto_labelled"].records) == 3000 + 90
    assert len(sources["office_actions"].records) == 1200 + 60 + 60
    assert len(sources[off].records) == 500
    for sid, source in sources.items():
        assert str(len(source.records)) in source.note
        assert not re.search(r"\d\s*%|0\.\d", source.note)  # notes never state the true rates
        assert all(isinstance(v, str) for r in source.records for v in r.values()), sid
    assert set(task.quality) == set(sources)
    assert task.quality["examiner_reviewed"].has_rationale
    assert task.quality["examiner_reviewed"].wrong_label_rate == 0.0
    assert task.quality[off].off_domain
    assert 0.33 <= task.quality["auto_labelled"].wrong_label_rate <= 0.37
    assert task.quality["auto_labelled"].exact_duplicates == 90
    assert (
        task.quality["office_actions"].exact_duplicates,
        task.quality["office_actions"].near_duplicates,
    ) == (
        60,
        60,
    )
    validation, test = task.eval_splits()
    assert (len(validation), len(test)) == (100, 100)


def test_categories_are_balanced(task: SyntheticTask) -> None:
    for split in task.eval_splits():
        assert Counter(item.category for item in split) == dict.fromkeys(FIELDS, 25)
    sources = sources_of(task)
    counts = Counter(r["category"] for r in sources["examiner_reviewed"].records)
    assert counts == dict.fromkeys(FIELDS, 250)
    assert {r["category"] for r in sources[OFF_DOMAIN[task.name]].records} <= {"trademark", "litigation"}


def test_novelty_decisions_are_balanced() -> None:
    task = NoveltyDecision()
    for split in task.eval_splits():
        counts = Counter(item.reference for item in split)
        assert set(counts) == {"ALLOW", "102", "103"}
        assert max(counts.values()) - min(counts.values()) <= 1


def test_prompts_and_responses_fit_a_tiny_model(task: SyntheticTask) -> None:
    validation, test = task.eval_splits()
    assert max(len(item.prompt) for item in [*validation, *test]) <= MAX_PROMPT_CHARS
    for source in task.raw_sources():
        for record in source.records:
            example = task.to_example(record, include_rationale=True)
            assert example is not None
            # Near duplicates may add a character or two of spacing.
            assert len(example.prompt) <= MAX_PROMPT_CHARS + 2, source.source_id
            assert len(example.response) <= 120
            assert len(example.response) + 8 <= task.max_new_tokens


def test_vocabulary_makes_word_matching_unambiguous() -> None:
    components = [c for field in FIELDS for c in COMPONENTS[field]]
    actions = [a for field in FIELDS for a in ACTIONS[field]]
    assert len(set(components)) == len(components) == 64
    assert all(len(ACTIONS[field]) == 12 for field in FIELDS)
    for word in components:
        assert not any(word in other for other in components if other != word), word
        assert not any(re.search(rf"\b{word}\b", action) for action in actions), word
    for action in actions:
        assert not any(action in other for other in actions if other != action), action


# -- answers are right, and follow from the prompt ---------------------------------------------


def test_eval_references_follow_from_the_prompt(task: SyntheticTask) -> None:
    validation, test = task.eval_splits()
    for item in [*validation, *test]:
        gold = oracle(task.name, item.prompt)
        if task.name == "patent_paragraph":
            assert item.reference == ",".join(sorted(gold, key=int))
        else:
            assert {item.reference} == gold
        assert task.extract_answer(f"Answer: \\boxed{{{item.reference}}}") == item.reference


def test_clean_records_are_right_and_verified(task: SyntheticTask) -> None:
    for record in sources_of(task)["examiner_reviewed"].records:
        prompt = task.record_prompt(record)
        assert prompt is not None
        assert record["answer"] in oracle(task.name, prompt)
        assert task.verify(record) is True
        assert record["rationale"]


def test_verify_flags_exactly_the_injected_wrong_labels(task: SyntheticTask) -> None:
    records = sources_of(task)["auto_labelled"].records
    corrupted = task.corrupted_ids["auto_labelled"]  # type: ignore[attr-defined]
    assert len(corrupted) == round(NOISE_RATE * 3000)
    for record in records:
        prompt = task.record_prompt(record)
        assert prompt is not None
        wrong = record["id"] in corrupted
        assert (record["answer"] not in oracle(task.name, prompt)) is wrong, record
        assert task.verify(record) is (not wrong), record
        # A wrong label is still a well-formed answer: only the content is off.
        assert task.canonical_answer(record["answer"]) == record["answer"]  # type: ignore[attr-defined]


def test_verify_rejects_prose_answers_and_cannot_judge_off_domain(task: SyntheticTask) -> None:
    sources = sources_of(task)
    verdicts: Counter[bool | None] = Counter()
    for record in sources["office_actions"].records:
        readable = task.canonical_answer(record["answer"]) is not None  # type: ignore[attr-defined]
        verdict = task.verify(record)
        assert verdict is readable, record
        verdicts[verdict] += 1
        if readable:
            prompt = task.record_prompt(record)
            assert prompt is not None
            assert task.canonical_answer(record["answer"]) in oracle(task.name, prompt)  # type: ignore[attr-defined]
    # The 360 prose rows, and whichever of them were copied as duplicates.
    assert 360 <= verdicts[False] <= 360 + 120
    assert all(task.verify(r) is None for r in sources[OFF_DOMAIN[task.name]].records)
    assert task.verify({"answer": "A"}) is None


def test_noise_hurts_and_the_clean_recipe_removes_it(task: SyntheticTask) -> None:
    """Taking everything trains on wrong or unreadable answers; verified in-domain data has none."""
    right_all = total_all = right_clean = total_clean = 0
    for source in task.raw_sources():
        for record in source.records:
            example = task.to_example(record, include_rationale=False)
            assert example is not None
            answer = task.extract_answer(example.response)
            in_domain = source.source_id in IN_DOMAIN
            ok = in_domain and answer is not None and answer in oracle(task.name, example.prompt)
            right_all += ok
            total_all += 1
            if in_domain and task.verify(record) is not False:
                right_clean += ok
                total_clean += 1
    assert right_clean == total_clean >= 3800
    assert right_all / total_all < 0.75


# -- splits and entity disjointness -------------------------------------------------------------


def test_entity_disjointness(task: SyntheticTask) -> None:
    validation, test = task.eval_splits()
    val = {entity_of(task.name, i.prompt) for i in validation}
    tst = {entity_of(task.name, i.prompt) for i in test}
    assert None not in val | tst
    assert len(val) == len(validation)
    assert len(tst) == len(test)
    assert not val & tst
    raw = set()
    for source in task.raw_sources():
        for record in source.records:
            prompt = task.record_prompt(record)
            assert prompt is not None
            raw.add(entity_of(task.name, prompt))
            if task.name == "patent_paragraph":
                # An evaluation element is not even a distractor paragraph of a raw record.
                text = normalize_text(record["paragraphs"])
                for component, action in val | tst:
                    assert f"{component} {action}" not in text
    assert not (val | tst) & raw


def test_prompts_are_disjoint_after_normalisation(task: SyntheticTask) -> None:
    validation, test = task.eval_splits()
    eval_prompts = {normalize_text(i.prompt) for i in [*validation, *test]}
    assert len(eval_prompts) == len(validation) + len(test)
    for source in task.raw_sources():
        for record in source.records:
            prompt = task.record_prompt(record)
            assert prompt is not None
            assert normalize_text(prompt) not in eval_prompts


# -- raw formats round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TASK_CLASSES))
def test_every_source_parses_back_and_reads_the_same(name: str) -> None:
    task = small(name)
    for source in task.raw_sources():
        data = dump_records(source.records, source.format, where=source.source_id)
        parsed = parse_records(data, source.format, where=source.source_id)
        assert len(parsed) == len(source.records)
        for original, back in zip(source.records, parsed, strict=True):
            assert all(isinstance(v, str) for v in back.values())
            for rationale in (True, False):
                assert task.to_example(back, include_rationale=rationale) == task.to_example(
                    original, include_rationale=rationale
                )
            assert task.verify(back) == task.verify(original)


# -- to_example ---------------------------------------------------------------------------------


def test_responses_end_at_the_stop_string_with_the_answer(task: SyntheticTask) -> None:
    for record in sources_of(task)["examiner_reviewed"].records[:200]:
        for rationale in (True, False):
            example = task.to_example(record, include_rationale=rationale)
            assert example is not None
            assert example.response.index("}") == len(example.response) - 1
            assert example.response.endswith(f"Answer: \\boxed{{{record['answer']}}}")
            assert task.extract_answer(example.response) == record["answer"]
            assert (record["rationale"] in example.response) is rationale
            assert example.category == record["category"]
            assert example.prompt.endswith(task.INSTRUCTION)  # type: ignore[attr-defined]


def test_training_prompts_have_the_eval_shape() -> None:
    task = small("patent_prior_art")
    validation, _ = task.eval_splits()
    item = validation[0]
    lines = item.prompt.split("\n")
    record = {"claim": lines[0].removeprefix("Claim: "), "candidates": "\n".join(lines[1:9]), "answer": "A"}
    example = task.to_example(record, include_rationale=True)
    assert example is not None
    assert example.prompt == item.prompt
    assert example.category == ""


@pytest.mark.parametrize(
    ("name", "answer", "response"),
    [
        ("patent_prior_art", "b, e", "Answer: \\boxed{B,E}"),
        ("patent_prior_art", "E and B", "Answer: \\boxed{B,E}"),
        ("patent_prior_art", "Anticipated by B and E.", "Anticipated by B and E."),
        ("patent_paragraph", "[0013]", "Answer: \\boxed{13}"),
        ("patent_paragraph", "para. 13", "Answer: \\boxed{13}"),
        ("patent_paragraph", "See paragraph [0013].", "See paragraph [0013]."),
        ("patent_novelty", "35 U.S.C. 103", "Answer: \\boxed{103}"),
        ("patent_novelty", "allowable", "Answer: \\boxed{ALLOW}"),
        ("patent_novelty", "Obvious over D1 in view of D2.", "Obvious over D1 in view of D2."),
        ("patent_novelty", "2(d)", "2(d)"),
    ],
)
def test_to_example_canonicalises_readable_answers_and_keeps_prose(
    name: str, answer: str, response: str
) -> None:
    task = small(name)
    record = dict(sources_of(task)["office_actions"].records[0])
    record.pop("rationale", None)
    record["answer"] = answer
    example = task.to_example(record, include_rationale=True)
    assert example is not None
    assert example.response == response


@pytest.mark.parametrize("name", list(TASK_CLASSES))
def test_to_example_names_missing_fields_and_skips_blank_ones(name: str) -> None:
    task = small(name)
    record = dict(sources_of(task)["examiner_reviewed"].records[0])
    for field in (*task.PROMPT_FIELDS, "answer"):  # type: ignore[attr-defined]
        broken = dict(record)
        del broken[field]
        with pytest.raises(DataError, match=repr(field)):
            task.to_example(broken, include_rationale=True)
        assert task.verify(broken) is None
        blank = {**record, field: "  "}
        assert task.to_example(blank, include_rationale=True) is None
        with pytest.raises(DataError, match=field):
            task.to_example({**record, field: ["x"]}, include_rationale=True)


# -- extract_answer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "output", "expected"),
    [
        ("patent_prior_art", "B and E disclose it.\nAnswer: \\boxed{B,E}", "B,E"),
        ("patent_prior_art", "\\boxed{e, b}", "B,E"),
        ("patent_prior_art", "\\boxed{E and B and B}", "B,E"),
        ("patent_prior_art", '\\boxed{["C"]}', "C"),
        ("patent_prior_art", "\\boxed{A} then \\boxed{H}", "H"),
        ("patent_prior_art", "\\boxed{A,Z}", None),  # Z is not a candidate
        ("patent_prior_art", "\\boxed{Refs B and E}", None),
        ("patent_prior_art", "\\boxed{}", None),
        ("patent_prior_art", "Answer: B,E", None),
        ("patent_prior_art", "\\boxed{B,E", None),
        ("patent_paragraph", "Answer: \\boxed{13}", "13"),
        ("patent_paragraph", "\\boxed{0013}", "13"),
        ("patent_paragraph", "\\boxed{[0013]}", "13"),
        ("patent_paragraph", "\\boxed{para. 13}", "13"),
        ("patent_paragraph", "\\boxed{15, 13}", "13,15"),
        ("patent_paragraph", "\\boxed{thirteen}", None),
        ("patent_paragraph", "[0013]", None),
        ("patent_novelty", "Answer: \\boxed{103}", "103"),
        ("patent_novelty", "\\boxed{§ 102}", "102"),
        ("patent_novelty", "\\boxed{35 USC 103}", "103"),
        ("patent_novelty", "\\boxed{allow}", "ALLOW"),
        ("patent_novelty", "\\boxed{Allowed.}", "ALLOW"),
        ("patent_novelty", "\\boxed{104}", None),
        ("patent_novelty", "\\boxed{2(d)}", None),
        ("patent_novelty", "\\boxed{103 or 102}", None),
        ("patent_novelty", "ALLOW", None),
    ],
)
def test_extract_answer(name: str, output: str, expected: str | None) -> None:
    assert small(name).extract_answer(output) == expected


def test_paragraph_reference_is_shown_as_alternatives() -> None:
    task = small("patent_paragraph")
    assert task.display_reference("13,15") == "13 or 15"
    assert task.display_reference("7") == "7"


def test_paragraph_rationales_state_the_element_then_cite_every_gold_paragraph() -> None:
    # Version 2: "The valve samples the blood: [0055]." -- the element as the paragraph
    # would say it, then every paragraph that says it, and nothing else.
    task = small("patent_paragraph")
    records = next(s for s in task.raw_sources() if s.source_id == "examiner_reviewed").records
    shape = re.compile(r"The (\w+) (.+): (\[\d{4}\](?: and \[\d{4}\])*)\.")
    for record in records:
        match = shape.fullmatch(record["rationale"])
        assert match is not None, record["rationale"]
        component, action, cited = match.groups()
        assert record["element"].endswith(f"{component} that {action}")
        disclosing = {
            int(number)
            for number, text in re.findall(r"\[(\d{4})\] (.+)", record["paragraphs"])
            if re.fullmatch(rf"(A|An|The|Its) {component} {action}\.", text)
        }
        assert {int(n) for n in re.findall(r"\d{4}", cited)} == disclosing
        assert int(record["answer"]) in disclosing


# -- scoring functions: hand-written cases ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A,C", {"A", "C"}),
        ("c, a", {"A", "C"}),
        ("A and C", {"A", "C"}),
        ("A & C; A", {"A", "C"}),
        ('["C", "A"]', {"A", "C"}),
        ("103", {"103"}),
        ("", set()),
        (None, set()),
        ("BAND", {"BAND"}),  # "and" only separates as a word
    ],
)
def test_parse_label_set(text: str | None, expected: set[str]) -> None:
    assert parse_label_set(text) == expected


def test_macro_f1_hand_computed() -> None:
    # A: TP 1, FN 1 -> 2/3; B: TP 1 -> 1; C: TP 1, FN 1 -> 2/3.
    score, items = macro_f1(["A,C", "B", None], ["A,C", "A,B", "C"])
    assert score == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert items == [1.0, 0.0, 0.0]
    assert macro_f1(["A,C", "B"], ["C,A", "b"]) == (1.0, [1.0, 1.0])
    assert macro_f1([None, None], ["A", "B"]) == (0.0, [0.0, 0.0])
    assert macro_f1([], []) == (0.0, [])
    # A hallucinated label enters the universe with F1 0; labels that occur nowhere do not count.
    score, items = macro_f1(["A,Z"], ["A"])
    assert score == pytest.approx(0.5)
    assert items == [0.0]
    # Single-label decisions: ALLOW F1 = 2/3, 102 F1 = 2/3, 103 absent from all -> not counted.
    score, _ = macro_f1(["ALLOW", "ALLOW", "102"], ["ALLOW", "102", "102"])
    assert score == pytest.approx((2 / 3 + 2 / 3) / 2)
    # No label anywhere: the mean item score (a None is still wrong).
    assert macro_f1(["", None], ["", ""]) == (0.5, [1.0, 0.0])
    with pytest.raises(ValueError, match="2 predictions"):
        macro_f1(["A", "B"], ["A"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", {3}),
        ("0003", {3}),
        ("[0003]", {3}),
        ("¶ 3", {3}),
        ("para. 3, paragraph 5", {3, 5}),
        ("3 and 5", {3, 5}),
        ("three", None),
        ("3a", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_paragraph_numbers(text: str | None, expected: set[int] | None) -> None:
    assert parse_paragraph_numbers(text) == expected


def test_gold_hit_rate_hand_computed() -> None:
    score, items = gold_hit_rate(
        ["5", "2", None, "0004", "3,5", "3,4", "x"], ["3,5", "4", "1", "4", "3,5", "3", "3"]
    )
    assert items == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert score == pytest.approx(3 / 7)
    assert gold_hit_rate([], []) == (0.0, [])
    with pytest.raises(ValueError, match="names no paragraph"):
        gold_hit_rate(["1"], ["none"])
    with pytest.raises(ValueError, match="1 predictions"):
        gold_hit_rate(["1"], ["1", "2"])


# -- scoring functions: properties ---------------------------------------------------------------

label_sets = st.sets(st.sampled_from("ABCDEFGH"), max_size=4).map(canonical_label_set)
label_items = st.lists(st.tuples(st.none() | label_sets, label_sets), max_size=25)
paragraph_sets = st.sets(st.integers(1, 40), min_size=1, max_size=3).map(
    lambda s: ",".join(str(n) for n in sorted(s))
)
paragraph_items = st.lists(st.tuples(st.none() | paragraph_sets, paragraph_sets), max_size=25)


@settings(max_examples=150, deadline=None)
@given(label_items, st.randoms(use_true_random=False))
def test_macro_f1_properties(items: list[tuple[str | None, str]], rnd: random.Random) -> None:
    predictions = [p for p, _ in items]
    references = [r for _, r in items]
    score, item_scores = macro_f1(predictions, references)
    assert 0.0 <= score <= 1.0
    assert len(item_scores) == len(items)
    assert all(s in (0.0, 1.0) for s in item_scores)
    if items:
        assert macro_f1(references, references)[0] == 1.0
    shuffled = list(items)
    rnd.shuffle(shuffled)
    again, _ = macro_f1([p for p, _ in shuffled], [r for _, r in shuffled])
    assert again == pytest.approx(score)


@settings(max_examples=150, deadline=None)
@given(paragraph_items, st.randoms(use_true_random=False))
def test_gold_hit_rate_properties(items: list[tuple[str | None, str]], rnd: random.Random) -> None:
    predictions = [p for p, _ in items]
    references = [r for _, r in items]
    score, item_scores = gold_hit_rate(predictions, references)
    assert 0.0 <= score <= 1.0
    assert len(item_scores) == len(items)
    assert score == (sum(item_scores) / len(items) if items else 0.0)
    if items:
        assert gold_hit_rate(references, references)[0] == 1.0
        # Any single gold paragraph is a hit too.
        firsts = [r.split(",")[0] for r in references]
        assert gold_hit_rate(firsts, references)[0] == 1.0
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert gold_hit_rate([p for p, _ in shuffled], [r for _, r in shuffled])[0] == pytest.approx(score)


# -- the evaluate modules --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both metric modules, loaded once from their paths with any network access failing."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted while loading a local metric")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        cache = tmp_path_factory.mktemp("metric-cache")
        return {name: load_metric(name, cache_dir=cache) for name in ("macro_f1", "gold_hit_rate")}


def test_metric_modules_hand_written_cases(metrics: dict[str, Any]) -> None:
    f1 = metrics["macro_f1"]
    result = f1.compute(predictions=["A,C", "B", None], references=["A,C", "A,B", "C"])
    assert set(result) == {"macro_f1", "item_scores"}
    assert result["macro_f1"] == pytest.approx(7 / 9)
    assert result["item_scores"] == [1.0, 0.0, 0.0]
    # None first: evaluate type-checks the first element of each column.
    assert f1.compute(predictions=[None, "102"], references=["103", "102"])["macro_f1"] == pytest.approx(0.5)
    assert f1.compute(predictions=[], references=[])["macro_f1"] == 0.0

    hits = metrics["gold_hit_rate"]
    result = hits.compute(predictions=[None, "5", "2"], references=["1", "3,5", "4"])
    assert set(result) == {"gold_hit_rate", "item_scores"}
    assert result["gold_hit_rate"] == pytest.approx(1 / 3)
    assert result["item_scores"] == [0.0, 1.0, 0.0]
    assert hits.compute(predictions=[], references=[])["gold_hit_rate"] == 0.0


@settings(max_examples=20, deadline=None)
@given(label_items, paragraph_items)
def test_metric_modules_agree_with_the_scoring_functions(
    metrics: dict[str, Any], labels: list[tuple[str | None, str]], paragraphs: list[tuple[str | None, str]]
) -> None:
    result = metrics["macro_f1"].compute(
        predictions=[p for p, _ in labels], references=[r for _, r in labels]
    )
    score, items = macro_f1([p for p, _ in labels], [r for _, r in labels])
    assert result["macro_f1"] == pytest.approx(score)
    assert result["item_scores"] == items
    result = metrics["gold_hit_rate"].compute(
        predictions=[p for p, _ in paragraphs], references=[r for _, r in paragraphs]
    )
    score, items = gold_hit_rate([p for p, _ in paragraphs], [r for _, r in paragraphs])
    assert result["gold_hit_rate"] == pytest.approx(score)
    assert result["item_scores"] == items


def test_a_perfect_model_scores_one_and_a_formatless_one_zero(
    task: SyntheticTask, metrics: dict[str, Any]
) -> None:
    validation, _ = task.eval_splits()
    metric = metrics[task.metric]
    references = [item.reference for item in validation]
    outputs = [f"Answer: \\boxed{{{oracle_answer(task.name, item)}}}" for item in validation]
    perfect = metric.compute(predictions=[task.extract_answer(o) for o in outputs], references=references)
    assert perfect[task.metric] == 1.0
    blank = metric.compute(
        predictions=[task.extract_answer("I think so.") for _ in validation], references=references
    )
    assert blank[task.metric] == 0.0


def oracle_answer(name: str, item: EvalItem) -> str:
    answers = oracle(name, item.prompt)
    return min(answers, key=int) if name == "patent_paragraph" else answers.pop()
