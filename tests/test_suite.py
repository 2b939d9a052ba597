"""The built-in suite as a whole: 13 tasks in 5 domains, each deterministic, leak-free,
consistent from answer format to metric, and trainable end to end with the tiny model."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ftdojo import Budget, DataRecipe, Dojo, Plan, SourceSelection, TrainConfig
from ftdojo.cli import app
from ftdojo.errors import DataError
from ftdojo.metrics import available_metrics, load_metric
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.tasks.registry import SUITE, get_task, get_task_class
from ftdojo.tasks.spec import TaskSpec, normalize_text
from ftdojo.testing import ScriptedAgent

SUITE_NAMES = list(SUITE)
#: Small instances keep generation and the end-to-end trials quick.
SMALL_SPLITS = {"validation_size": 20, "test_size": 20}

EXPECTED_DOMAINS = {
    "math": 1,
    "patent": 3,
    "chemistry": 4,
    "finance": 1,
    "table_qa": 4,
}


@functools.cache
def task(name: str, seed: int = 0) -> TaskSpec:
    return get_task(name, seed=seed)


def _snapshot(spec: TaskSpec) -> str:
    validation, test = spec.eval_splits()
    return json.dumps(
        {
            "sources": [(s.source_id, s.format, s.note, list(s.records)) for s in spec.raw_sources()],
            "validation": [(i.item_id, i.prompt, i.reference, i.category) for i in validation],
            "test": [(i.item_id, i.prompt, i.reference, i.category) for i in test],
        },
        sort_keys=True,
        default=str,
    )


def test_the_suite_has_13_tasks_in_5_domains() -> None:
    domains: dict[str, int] = {}
    for name in SUITE_NAMES:
        cls = get_task_class(name)
        assert cls.name == name
        domains[cls.domain] = domains.get(cls.domain, 0) + 1
    assert domains == EXPECTED_DOMAINS


def test_cli_lists_13_tasks_in_5_domains() -> None:
    result = CliRunner().invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    suite = [r for r in rows if r["group"] == "suite"]
    assert [r["task"] for r in suite] == SUITE_NAMES
    assert len({r["domain"] for r in suite}) == 5
    text = CliRunner().invoke(app, ["tasks"]).output
    assert "13 tasks in 5 domains" in text


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_task_card_is_complete(name: str) -> None:
    spec = task(name)
    assert spec.description.strip()
    assert spec.output_format.strip()
    assert spec.metric in available_metrics()
    assert len(spec.categories) >= 2
    validation, test = spec.eval_splits()
    assert len(validation) == len(test) == 100
    for item in [*validation, *test]:
        assert item.category in spec.categories, item
    # Every category is represented in both splits, so the per-category breakdown means something.
    assert {i.category for i in validation} == {i.category for i in test} == set(spec.categories)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_generation_is_deterministic_per_seed(name: str) -> None:
    first = _snapshot(get_task(name, seed=0, **SMALL_SPLITS))
    assert first == _snapshot(get_task(name, seed=0, **SMALL_SPLITS))
    assert first != _snapshot(get_task(name, seed=1, **SMALL_SPLITS))


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_no_evaluation_prompt_appears_in_any_raw_source(name: str) -> None:
    spec = task(name)
    validation, test = spec.eval_splits()
    val_prompts = {normalize_text(i.prompt) for i in validation}
    test_prompts = {normalize_text(i.prompt) for i in test}
    assert not val_prompts & test_prompts
    for source in spec.raw_sources():
        # As an agent reads it back: the stored file, whatever its format.
        where = f"{name}/{source.source_id}"
        stored = dump_records(list(source.records), source.format, where=where)
        records = parse_records(stored, source.format, where=where)
        file_text = normalize_text(stored.decode("utf-8").replace("<br>", "\n"))
        for item in test:
            leak = normalize_text(item.prompt) in file_text
            assert not leak, f"test item {item.item_id} appears in {where}"
        for index, record in enumerate(records):
            try:
                example = spec.to_example(record, include_rationale=True)
            except DataError:  # an off-domain record may be unusable; it must say so cleanly
                continue
            if example is not None:
                prompt = normalize_text(example.prompt)
                assert prompt not in test_prompts, f"{where} record {index} is a test prompt"
                assert prompt not in val_prompts, f"{where} record {index} is a validation prompt"


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_every_source_has_a_note_and_reads_back(name: str) -> None:
    spec = task(name)
    sources = spec.raw_sources()
    assert 3 <= len(sources) <= 6
    assert all(s.note.strip() for s in sources)
    # Every source yields training examples once stored and read back (cells as strings).
    for source in sources:
        where = f"{name}/{source.source_id}"
        stored = dump_records(list(source.records), source.format, where=where)
        assert parse_records(stored, source.format, where=where), where


@pytest.mark.parametrize("domain", sorted(EXPECTED_DOMAINS))
def test_every_domain_has_a_source_that_is_not_jsonl(domain: str) -> None:
    formats = {
        s.format for n in SUITE_NAMES if get_task_class(n).domain == domain for s in task(n).raw_sources()
    }
    assert formats - {"jsonl"}, f"domain {domain} stores every source as JSONL"


@functools.cache
def _metric(name: str) -> Any:
    return load_metric(name)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_a_gold_response_scores_1_and_an_empty_one_0(name: str) -> None:
    spec = task(name)
    validation, _ = spec.eval_splits()
    items = validation[:30]
    metric = _metric(spec.metric)
    predictions = [spec.extract_answer(spec.gold_response(i)) for i in items]
    references = [i.reference for i in items]
    result = metric.compute(predictions=predictions, references=references)
    assert result[spec.metric] == 1.0
    assert result["item_scores"] == [1.0] * len(items)
    # A model that never meets the format scores 0 on every item.
    nothing = metric.compute(predictions=[spec.extract_answer("") for _ in items], references=references)
    assert nothing[spec.metric] == 0.0
    assert all(isinstance(spec.display_reference(r), str) for r in references)


@pytest.fixture(scope="module")
def suite_dojo(ftdojo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Dojo:
    return Dojo(home=ftdojo_home, runs_dir=tmp_path_factory.mktemp("suite-runs"), model="tiny", threads=2)


@pytest.mark.anyio
@pytest.mark.parametrize("name", SUITE_NAMES)
async def test_one_short_trial_end_to_end_with_the_tiny_model(suite_dojo: Dojo, name: str) -> None:
    spec = get_task(name, **SMALL_SPLITS)
    sources = [s.source_id for s in spec.raw_sources()]
    plan = Plan(
        data=DataRecipe(sources=tuple(SourceSelection(source=s) for s in sources), max_records=64),
        train=TrainConfig(method="full", learning_rate=1e-3, max_steps=3, batch_size=8, max_length=512),
    )
    agent = ScriptedAgent([plan])
    result = await suite_dojo.run(spec, agent, budget=Budget(max_trials=1))
    (feedback,) = agent.feedback
    assert feedback.ok, feedback.execution
    assert feedback.evaluation is not None
    assert feedback.evaluation.metric == spec.metric
    assert 0.0 <= feedback.evaluation.score <= 1.0
    assert feedback.evaluation.n == SMALL_SPLITS["validation_size"]
    assert set(feedback.evaluation.per_category) <= set(spec.categories)
    assert result.test_score is not None
    assert 0.0 <= result.test_score <= 1.0


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_metric_invariants_on_the_tasks_own_references(name: str) -> None:
    """Any mix of right answers, wrong answers and format misses scores in [0, 1], whatever the order."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    spec = task(name)
    validation, _ = spec.eval_splits()
    pool = validation[:40]
    metric = _metric(spec.metric)
    gold = [spec.extract_answer(spec.gold_response(i)) for i in pool]
    wrong = [spec.extract_answer(spec.gold_response(i)) for i in reversed(pool)]

    choice = st.sampled_from(["gold", "wrong", "none", "garbage"])

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        picks=st.lists(st.tuples(st.integers(0, len(pool) - 1), choice), min_size=1, max_size=12),
        garbage=st.text(max_size=20),
        seed=st.randoms(use_true_random=False),
    )
    def check(picks: list[tuple[int, str]], garbage: str, seed: Any) -> None:
        predictions = [
            {"gold": gold[i], "wrong": wrong[i], "none": None, "garbage": garbage}[kind] for i, kind in picks
        ]
        references = [pool[i].reference for i, _ in picks]
        result = metric.compute(predictions=predictions, references=references)
        score = result[spec.metric]
        assert 0.0 <= score <= 1.0
        assert len(result["item_scores"]) == len(picks)
        assert all(0.0 <= s <= 1.0 for s in result["item_scores"])
        if all(kind == "gold" for _, kind in picks):
            assert score == 1.0
        if all(kind == "none" for _, kind in picks):
            assert score == 0.0
        order = list(range(len(picks)))
        seed.shuffle(order)
        shuffled = metric.compute(
            predictions=[predictions[k] for k in order], references=[references[k] for k in order]
        )
        assert shuffled[spec.metric] == pytest.approx(score)

    check()
