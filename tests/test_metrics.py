"""The metrics shipped as local ``evaluate`` modules, and the helpers that find and load them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.errors import ConfigError
from ftdojo.metrics import available_metrics, load_metric, metric_path

answers = st.text(max_size=8)
pairs = st.lists(st.tuples(st.none() | answers, answers), max_size=30)


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The accuracy module, loaded once (importing evaluate takes seconds) with no network."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted while loading a local metric")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        # Offline must mean "never asks the Hub", not "asks and recovers": any connect fails.
        mp.setattr(socket.socket, "connect", no_network)
        module = load_metric("accuracy", cache_dir=tmp_path_factory.mktemp("metric-cache"))
    return module


def score(module: Any, predictions: list[str | None], references: list[str]) -> float:
    result = module.compute(predictions=predictions, references=references)
    assert set(result) == {"accuracy", "item_scores"}
    value = result["accuracy"]
    assert isinstance(value, float)
    # The contract of every shipped metric: one item score per item, and accuracy is their mean.
    assert len(result["item_scores"]) == len(predictions)
    assert all(s in (0.0, 1.0) for s in result["item_scores"])
    assert value == (sum(result["item_scores"]) / len(predictions) if predictions else 0.0)
    return value


# -- finding metrics -----------------------------------------------------------------


def test_accuracy_is_shipped_as_a_script_named_after_its_directory() -> None:
    assert "accuracy" in available_metrics()
    path = metric_path("accuracy")
    assert path.is_dir()
    assert (path / "accuracy.py").is_file()
    assert available_metrics() == tuple(sorted(available_metrics()))


@pytest.mark.parametrize("name", ["bleu", "", "../tasks", "accuracy/accuracy", "ACCURACY"])
def test_unknown_metric_is_a_config_error_listing_the_available_ones(name: str) -> None:
    with pytest.raises(ConfigError, match="accuracy") as info:
        metric_path(name)
    assert repr(name) in str(info.value)
    # load_metric validates before importing evaluate, with the same error.
    with pytest.raises(ConfigError, match="available metrics"):
        load_metric(name)


def test_importing_metrics_is_light_and_loading_honours_hf_home(tmp_path: Path) -> None:
    """In a fresh process: no evaluate/torch at import; the module copy goes under ``$HF_HOME``."""
    script = textwrap.dedent(
        """
        import json, sys
        import ftdojo.metrics as metrics
        heavy = sorted(m for m in ("evaluate", "torch", "datasets") if m in sys.modules)
        acc = metrics.load_metric("accuracy")
        result = acc.compute(predictions=[None, "2", "3"], references=["1", "2", "4"])
        print(json.dumps({"heavy": heavy, "result": result}))
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HF_MODULES_CACHE", "HF_EVALUATE_CACHE", "XDG_CACHE_HOME"}
    }
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["result"] == {"accuracy": pytest.approx(1 / 3), "item_scores": [0.0, 1.0, 0.0]}
    copies = list((tmp_path / "hf" / "modules").rglob("accuracy.py"))
    assert copies, "evaluate did not put its copy of the script under $HF_HOME/modules"
    assert copies[0].read_text() == (metric_path("accuracy") / "accuracy.py").read_text()


# -- accuracy ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_accuracy_is_a_fraction_of_items(accuracy: Any, items: list[tuple[str | None, str]]) -> None:
    predictions = [p for p, _ in items]
    references = [r for _, r in items]
    value = score(accuracy, predictions, references)
    assert 0.0 <= value <= 1.0
    if items:
        # A fraction with the number of items as denominator: value * n is a whole count.
        assert value * len(items) == pytest.approx(round(value * len(items)))


@settings(max_examples=40, deadline=None)
@given(st.lists(answers, min_size=1, max_size=30))
def test_perfect_predictions_score_one(accuracy: Any, references: list[str]) -> None:
    assert score(accuracy, list(references), references) == 1.0


@settings(max_examples=40, deadline=None)
@given(pairs, st.randoms(use_true_random=False))
def test_shuffling_pairs_together_keeps_the_score(
    accuracy: Any, items: list[tuple[str | None, str]], rng: Any
) -> None:
    shuffled = list(items)
    rng.shuffle(shuffled)
    before = score(accuracy, [p for p, _ in items], [r for _, r in items])
    after = score(accuracy, [p for p, _ in shuffled], [r for _, r in shuffled])
    assert before == after


@settings(max_examples=40, deadline=None)
@given(st.lists(answers, min_size=1, max_size=30), st.data())
def test_a_none_prediction_counts_as_wrong(accuracy: Any, references: list[str], data: st.DataObject) -> None:
    # Start from all-correct, blank out some items (including, often, the first one, which
    # evaluate type-checks on its own): each blank costs exactly one item.
    blanked = data.draw(st.sets(st.integers(0, len(references) - 1)))
    predictions: list[str | None] = [None if k in blanked else r for k, r in enumerate(references)]
    expected = (len(references) - len(blanked)) / len(references)
    assert score(accuracy, predictions, references) == pytest.approx(expected)


def test_none_is_not_the_string_none(accuracy: Any) -> None:
    assert score(accuracy, [None], ["None"]) == 0.0
    assert score(accuracy, ["None"], ["None"]) == 1.0
    assert score(accuracy, [None, None], ["", ""]) == 0.0


def test_exact_match_only(accuracy: Any) -> None:
    # Normalisation is the task's job (extract_answer); the metric compares strings as given.
    assert score(accuracy, ["8", "8.0", " 8", "8"], ["8", "8", "8", "9"]) == 0.25


def test_empty_input_scores_zero(accuracy: Any) -> None:
    assert score(accuracy, [], []) == 0.0


def test_incremental_adds_match_one_compute(accuracy: Any) -> None:
    accuracy.add(prediction=None, reference="1")
    accuracy.add_batch(predictions=["2", None], references=["2", "3"])
    accuracy.add(prediction="4", reference="4")
    assert accuracy.compute() == {"accuracy": 0.5, "item_scores": [0.0, 1.0, 0.0, 1.0]}


def test_length_mismatch_is_an_error(accuracy: Any) -> None:
    with pytest.raises(ValueError, match="predictions"):
        accuracy.compute(predictions=["1"], references=["1", "2"])
