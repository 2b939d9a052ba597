"""`ftdojo export` on a real tiny run: the adapter, the merged model, a full fine-tune and the card."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ftdojo import (
    Budget,
    ConfigError,
    DataRecipe,
    Dojo,
    JournalError,
    ModelError,
    Plan,
    SourceSelection,
    TrainConfig,
)
from ftdojo.cli import app
from ftdojo.export import export_run
from ftdojo.models import resolve_local_model
from ftdojo.serialization import from_json, structure
from ftdojo.testing import ScriptedAgent

LORA = TrainConfig(method="lora", lora_rank=4, learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)
FULL = TrainConfig(method="full", learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)
PROMPT = "Ana has 7 bags of 4 cookies. How many cookies in all?\nPut the final answer in \\boxed{}."


def _plan(train: TrainConfig) -> Plan:
    return Plan(
        data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=48),
        train=train,
        hypothesis=f"{train.method} on worked solutions",
    )


@pytest.fixture(scope="module")
def run_dir(ftdojo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real tiny run for the module: a LoRA trial (t001) and a full fine-tune (t002)."""
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path_factory.mktemp("runs"), model="tiny", threads=2)
    result = dojo.run_sync(
        "math", ScriptedAgent([_plan(LORA), _plan(FULL)]), budget=Budget(max_trials=2, max_seconds=900)
    )
    assert [t.feedback.ok for t in result.trials] == [True, True]
    return Path(result.run_dir)


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line]


def _trial(run_dir: Path, trial_id: str) -> dict[str, Any]:
    return next(
        r["trial"] for r in _records(run_dir) if r["kind"] == "trial" and r["trial"]["trial_id"] == trial_id
    )


def _base(ftdojo_home: Path) -> Path:
    path = resolve_local_model("tiny", ftdojo_home)
    assert path is not None
    return path


def _load(path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True).eval()


def _logits(model: Any, tokenizer_dir: Path) -> Any:
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with torch.no_grad():
        return model(**tokenizer(PROMPT, return_tensors="pt")).logits


def _front_matter(card: str) -> dict[str, str]:
    head = card.split("---\n")[1]
    return {k: v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()) if v.strip()}


def test_the_adapter_loads_with_peft(run_dir: Path, ftdojo_home: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors.torch import load_file

    out = export_run(run_dir, tmp_path / "adapter", trial_id="t001", home=ftdojo_home)
    assert out == tmp_path / "adapter"
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    trained = run_dir / "trials" / "t001" / "model"
    assert (out / "adapter_model.safetensors").read_bytes() == (
        trained / "adapter_model.safetensors"
    ).read_bytes()

    model = PeftModel.from_pretrained(_load(_base(ftdojo_home)), out).eval()
    weights = load_file(str(trained / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    assert loaded.keys() == weights.keys()
    for name, tensor in weights.items():
        assert torch.equal(loaded[name], tensor)
    card = (out / "README.md").read_text()
    assert _front_matter(card)["library_name"] == "peft"
    assert "PeftModel.from_pretrained" in card


def test_the_merged_model_loads_alone_and_matches_base_plus_adapter(
    run_dir: Path, ftdojo_home: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel

    out = export_run(run_dir, tmp_path / "merged", merge=True, trial_id="t001", home=ftdojo_home)
    names = {p.name for p in out.iterdir()}
    assert "adapter_config.json" not in names
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    trained = run_dir / "trials" / "t001" / "model"

    merged = _load(out)
    with_adapter = PeftModel.from_pretrained(_load(_base(ftdojo_home)), trained).eval()
    base = _load(_base(ftdojo_home))
    merged_logits = _logits(merged, out)
    adapter_logits = _logits(with_adapter, trained)
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4)
    # The adapter changed the model: the comparison above is not between two copies of the base.
    assert (merged_logits - _logits(base, trained)).abs().max() > 1e-4
    assert _front_matter((out / "README.md").read_text())["library_name"] == "transformers"


def test_the_card_holds_the_scores_license_plan_and_command(
    run_dir: Path, ftdojo_home: Path, tmp_path: Path
) -> None:
    records = _records(run_dir)
    finished = next(r for r in records if r["kind"] == "run_finished")["result"]
    final = finished["final_trial_id"]
    test = next(r for r in records if r["kind"] == "test_score")
    assert test["trial_id"] == final

    out = export_run(run_dir, tmp_path / "card", home=ftdojo_home)
    card = (out / "README.md").read_text()
    front = _front_matter(card)
    assert front["license"] == "apache-2.0"
    assert "ftdojo" in card.split("---\n")[1]
    assert f"trial `{final}`" in card
    assert "the final trial the run chose when it finished" in card
    assert "- license: Apache-2.0" in card
    assert "- metric: accuracy" in card
    assert f"| validation | {finished['validation_score']:.4f} |" in card
    assert f"| test (held out) | {test['score']:.4f} |" in card
    assert "ftdojo run math --model tiny --trials 2 --time 900 --seed 0" in card
    # The plan in the card is the trial's plan, exactly.
    block = re.search(r"```json\n(.*?)\n```", card, re.S)
    assert block is not None
    assert from_json(block.group(1), Plan) == structure(_trial(run_dir, final)["plan"], Plan)
    # The exported weights are the final trial's.
    method = _trial(run_dir, final)["plan"]["train"]["method"]
    assert (out / ("adapter_config.json" if method == "lora" else "config.json")).is_file()


def test_a_full_fine_tune_exports_a_standalone_model(
    run_dir: Path, ftdojo_home: Path, tmp_path: Path
) -> None:
    import torch

    trained = run_dir / "trials" / "t002" / "model"
    for merge in (False, True):
        out = export_run(run_dir, tmp_path / f"full-{merge}", merge=merge, trial_id="t002", home=ftdojo_home)
        assert (out / "model.safetensors").read_bytes() == (trained / "model.safetensors").read_bytes()
        assert torch.equal(_logits(_load(out), out), _logits(_load(trained), trained))
        card = (out / "README.md").read_text()
        assert "a fully fine-tuned model" in card
        assert "chosen by hand at export" in card


def test_an_existing_folder_is_kept_unless_forced(run_dir: Path, ftdojo_home: Path, tmp_path: Path) -> None:
    out = export_run(run_dir, tmp_path / "x", trial_id="t001", home=ftdojo_home)
    with pytest.raises(ConfigError, match="already exists"):
        export_run(run_dir, out, trial_id="t002", home=ftdojo_home)
    assert (out / "adapter_config.json").is_file()
    export_run(run_dir, out, trial_id="t002", home=ftdojo_home, overwrite=True)
    assert not (out / "adapter_config.json").exists()
    assert (out / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("export*"))
    return copy


def test_a_killed_run_exports_its_best_validated_trial(
    run_dir: Path, ftdojo_home: Path, tmp_path: Path
) -> None:
    killed = _copy(run_dir, tmp_path)
    lines = (killed / "journal.jsonl").read_text().splitlines(keepends=True)
    last_trial = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "trial")
    (killed / "journal.jsonl").write_text("".join(lines[: last_trial + 1]))
    scores = {t: _trial(run_dir, t)["feedback"]["evaluation"]["score"] for t in ("t001", "t002")}
    best = "t002" if scores["t002"] > scores["t001"] else "t001"  # earliest wins ties
    card = (export_run(killed, tmp_path / "out", home=ftdojo_home) / "README.md").read_text()
    assert f"trial `{best}`" in card
    assert "the best validated trial: the run did not finish" in card
    assert "| test (held out) | not scored" in card


def test_errors_name_the_problem(run_dir: Path, ftdojo_home: Path, tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        export_run(tmp_path, home=ftdojo_home)
    with pytest.raises(JournalError, match="not a directory"):
        export_run(tmp_path / "nothing", home=ftdojo_home)
    with pytest.raises(JournalError, match="no trial 't009'"):
        export_run(run_dir, tmp_path / "o", trial_id="t009", home=ftdojo_home)

    # Killed before any trial finished: nothing to export.
    empty = _copy(run_dir, tmp_path / "empty")
    first = (empty / "journal.jsonl").read_text().splitlines(keepends=True)[0]
    (empty / "journal.jsonl").write_text(first)
    with pytest.raises(JournalError, match="no trial of this run succeeded"):
        export_run(empty, tmp_path / "o", home=ftdojo_home)

    gone = _copy(run_dir, tmp_path / "gone")
    shutil.rmtree(gone / "trials" / "t001" / "model")
    with pytest.raises(ModelError, match="the files of trial t001 are gone"):
        export_run(gone, tmp_path / "o", trial_id="t001", home=ftdojo_home)

    linked = _copy(run_dir, tmp_path / "linked")
    tokenizer = linked / "trials" / "t001" / "model" / "tokenizer.json"
    tokenizer.unlink()
    os.symlink(run_dir / "trials" / "t001" / "model" / "tokenizer.json", tokenizer)
    with pytest.raises(ModelError, match="symbolic link"):
        export_run(linked, tmp_path / "o", trial_id="t001", home=ftdojo_home)

    pickled = _copy(run_dir, tmp_path / "pickled")
    (pickled / "trials" / "t002" / "model" / "pytorch_model.bin").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="pickle_artifact"):
        export_run(pickled, tmp_path / "o", trial_id="t002", home=ftdojo_home)
    assert not (tmp_path / "o").exists()


def test_the_export_command(run_dir: Path, ftdojo_home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = [
        "export",
        str(run_dir),
        "--out",
        str(out),
        "--merge",
        "--trial",
        "t001",
        "--home",
        str(ftdojo_home),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "already exists" in " ".join(again.output.split())  # rich wraps long lines
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    missing = runner.invoke(app, ["export", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "not a directory" in " ".join(missing.output.split())  # rich wraps long lines
