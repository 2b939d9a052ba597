"""HTML reports: one self-contained page per run, and one per benchmark.

:func:`write_run_report` reads nothing but a run directory's ``journal.jsonl``, so it
works for a finished run, a failed or killed one, a resumed one, and a run written by
an older ftdojo whose records lack later fields. The page holds the run's header
(task, model, budget and usage, stop reason, isolation, contamination audit, base
model), a chart of every trial's validation score with the final model's test score,
the loss curves, the tree of trials with each plan's difference from its parent, each
diagnosis the agent journalled, the data each trial built, the rejected plans and the
sandbox violations. :func:`write_bench_report` does the same for a folder written by
``ftdojo bench``: the paper-style table and a chart of test scores per task and agent.

A report is one file with no external resource: the CSS is inline, the charts are
PNG data URIs, and no script runs. Every string from a journal goes through
:func:`html.escape`: plans, hypotheses and diagnoses may hold an LLM's text.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ftdojo.errors import JournalError
from ftdojo.journal import Journal
from ftdojo.plans import DataRecipe, Plan, TrainConfig
from ftdojo.serialization import structure, unstructure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FieldChange", "plan_diff", "write_bench_report", "write_report", "write_run_report"]

REPORT_NAME = "report.html"
#: The plan sections a diff compares: what makes two plans different experiments.
_SECTIONS: tuple[tuple[str, type[Any]], ...] = (("data", DataRecipe), ("train", TrainConfig))


# -- the plan diff --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FieldChange:
    """One field of a plan's data recipe or training configuration that differs.

    ``field`` is dotted (``"train.learning_rate"``); ``before`` and ``after`` are the
    values as JSON data, ``None`` where a plan (of an older version) lacks the field.
    """

    field: str
    before: Any
    after: Any

    def describe(self) -> str:
        """``field: before → after`` in short words."""
        return f"{self.field}: {_short(self.field, self.before)} → {_short(self.field, self.after)}"


def _plan_data(plan: Plan | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(plan, Plan):
        return dict(unstructure(plan))
    data = dict(plan)
    try:
        # Fills in the defaults of fields an older journal's plan lacks, so that a field
        # added later does not show up as a change.
        return dict(unstructure(structure(data, Plan)))
    except Exception:  # a plan this version cannot read: compare it as it stands
        return data


def plan_diff(parent: Plan | Mapping[str, Any], child: Plan | Mapping[str, Any]) -> list[FieldChange]:
    """The fields of the data recipe and the training configuration where ``child``
    differs from ``parent``, in the order the plan declares them.

    Either plan may be a :class:`~ftdojo.Plan` or its JSON data as a journal holds it.
    The prose (hypothesis, focus) and the parent link are not compared: they do not
    change the experiment (see :meth:`ftdojo.Plan.fingerprint`).
    """
    before, after = _plan_data(parent), _plan_data(child)
    changes: list[FieldChange] = []
    for section, cls in _SECTIONS:
        old = before.get(section)
        new = after.get(section)
        old = old if isinstance(old, Mapping) else {}
        new = new if isinstance(new, Mapping) else {}
        declared = [f.name for f in attrs.fields(cls)]
        extra = sorted((set(old) | set(new)) - set(declared))
        for name in [*declared, *extra]:
            if name not in old and name not in new:
                continue
            if old.get(name) != new.get(name):
                changes.append(
                    FieldChange(field=f"{section}.{name}", before=old.get(name), after=new.get(name))
                )
    return changes


def _short(field: str, value: Any, limit: int = 120) -> str:
    if field == "data.sources" and isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, Mapping):
                cap = item.get("max_records")
                parts.append(f"{item.get('source')}" + (f" (≤{cap})" if cap else ""))
            else:
                parts.append(str(item))
        return ", ".join(parts) or "none"
    if isinstance(value, str):
        lines = value.strip().splitlines()
        if len(lines) > 1:
            return f"{lines[0][:limit]} … ({len(lines)} lines)"
        text = json.dumps(value)
    elif value is None:
        return "none"
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- reading a run ----------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@attrs.define
class _RunRecords:
    """What a journal says, read tolerantly: every field may be missing."""

    started: dict[str, Any] = attrs.Factory(dict)
    resumes: int = 0
    trials: list[dict[str, Any]] = attrs.Factory(list)
    #: Per trial id, the budget clock when the trial finished (seconds since the run began).
    elapsed: dict[str, float] = attrs.Factory(dict)
    annotations: dict[str, dict[str, Any]] = attrs.Factory(dict)
    rejections: list[dict[str, Any]] = attrs.Factory(list)
    violations: list[dict[str, Any]] = attrs.Factory(list)
    smokes: int = 0
    test: dict[str, Any] | None = None
    contamination: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    agent_failures: list[str] = attrs.Factory(list)
    finished: dict[str, Any] | None = None
    #: Tokens trained by the end of the last trial (the journal's running total).
    tokens: int | None = None


def _read_run(run_dir: Path) -> _RunRecords:
    path = run_dir / "journal.jsonl"
    if not path.is_file():
        raise JournalError(f"{path} does not exist: {run_dir} is not a run directory")
    run = _RunRecords()
    try:
        records = list(Journal(path).records())
    except (OSError, ValueError) as exc:  # ValueError: bytes that are not UTF-8
        raise JournalError(f"{path} cannot be read: {exc}") from exc
    if not records:
        raise JournalError(f"{path} holds no journal record")
    for record in records:
        kind = record.get("kind")
        if kind == "run_started":
            run.started = record
        elif kind == "run_resumed":
            run.resumes += 1
            # What an earlier finish chose no longer stands once the run goes on.
            run.finished, run.test, run.contamination = None, None, None
        elif kind == "trial" and isinstance(record.get("trial"), dict):
            trial = record["trial"]
            run.trials.append(trial)
            seconds = _num(record.get("seconds"))
            if seconds is not None:
                run.elapsed[str(trial.get("trial_id"))] = seconds
            tokens = _num(record.get("tokens_total"))
            run.tokens = int(tokens) if tokens is not None else run.tokens
        elif kind == "annotation":
            run.annotations.setdefault(str(record.get("trial_id")), {})[str(record.get("key"))] = record.get(
                "value"
            )
        elif kind == "rejection" and isinstance(record.get("rejection"), dict):
            run.rejections.append(record["rejection"])
        elif kind == "violation" and isinstance(record.get("violation"), dict):
            run.violations.append(record["violation"])
        elif kind == "smoke":
            run.smokes += 1
        elif kind == "test_score":
            run.test = record
        elif kind == "contamination" and isinstance(record.get("audit"), dict):
            run.contamination = record["audit"]
        elif kind == "baseline" and isinstance(record.get("baseline"), dict):
            run.baseline = record["baseline"]
        elif kind == "agent_failed":
            run.agent_failures.append(str(record.get("error", "")))
        elif kind == "run_finished" and isinstance(record.get("result"), dict):
            run.finished = record["result"]
    return run


# -- charts --------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    # A Figure with its own Agg canvas, never pyplot: no global backend is switched in the
    # caller's process (a notebook keeps its own), and the Dojo may draw in a worker thread.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _scores_chart(run: _RunRecords, final_id: str | None, test_score: float | None) -> str | None:
    if not run.trials:
        return None
    fig = _figure(min(11.0, max(8.0, 0.5 * len(run.trials) + 5)), 3.6)
    ax = fig.add_subplot()
    xs = list(range(1, len(run.trials) + 1))
    ids = [str(t.get("trial_id")) for t in run.trials]
    scores = [_num(_get(t, "feedback", "evaluation", "score")) for t in run.trials]
    ok = [(x, s) for x, s in zip(xs, scores, strict=True) if s is not None]
    failed = [x for x, s in zip(xs, scores, strict=True) if s is None]
    if ok:
        ax.plot([x for x, _ in ok], [s for _, s in ok], "o-", color="#1f77b4", label="validation score")
        best, steps = -math.inf, []
        for _, s in ok:
            best = max(best, s)
            steps.append(best)
        ax.step([x for x, _ in ok], steps, where="post", color="#1f77b4", alpha=0.35, label="best so far")
    if failed:
        ax.plot(failed, [0.0] * len(failed), "x", color="#d62728", markersize=10, label="failed trial")
    if final_id in ids:
        x = ids.index(final_id) + 1
        final_val = scores[x - 1]
        if final_val is not None:
            ax.plot([x], [final_val], "o", markersize=14, mfc="none", color="#2ca02c", label="final model")
        if test_score is not None:
            ax.plot(
                [x], [test_score], "*", markersize=16, color="#ff7f0e", label=f"test score {test_score:.3f}"
            )
    for key, style in (("validation_score", ":"), ("test_score", "--")):
        value = _num(_get(run.baseline, key))
        if value is not None:
            ax.axhline(
                value, linestyle=style, color="gray", label=f"base model {key.split('_')[0]} {value:.3f}"
            )
    every = math.ceil(len(ids) / 12)  # at most 12 labels: more would overlap
    ticks, labels = [], []
    for x, trial_id in list(zip(xs, ids, strict=True))[::every]:
        elapsed = run.elapsed.get(trial_id)
        ticks.append(x)
        labels.append(trial_id if elapsed is None else f"{trial_id}\n{elapsed / 60:.1f} min")
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_xlim(0.5, len(xs) + 0.5)
    top = max([s for s in scores if s is not None] + [test_score or 0.0, 0.05])
    ax.set_ylim(-0.03, min(1.05, top * 1.2 + 0.02))
    ax.set_xlabel("trial (and the run's clock when it finished)")
    ax.set_ylabel("score")
    ax.grid(alpha=0.3)
    # Beside the axes: inside, it would hide the points of a run whose scores sit high.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _loss_chart(run: _RunRecords) -> str | None:
    curves = []
    for trial in run.trials:
        points = [p for p in _list(_get(trial, "feedback", "training", "losses")) if isinstance(p, dict)]
        steps = [_num(p.get("step")) for p in points]
        losses = [_num(p.get("loss")) for p in points]
        pairs = [
            (s, loss) for s, loss in zip(steps, losses, strict=True) if s is not None and loss is not None
        ]
        if pairs:
            curves.append(
                (str(trial.get("trial_id")), bool(_get(trial, "feedback", "execution", "ok")), pairs)
            )
    if not curves:
        return None
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    for trial_id, ok, pairs in curves:
        ax.plot(
            [s for s, _ in pairs],
            [loss for _, loss in pairs],
            "-" if ok else "--",
            marker="." if len(pairs) < 30 else None,
            label=trial_id + ("" if ok else " (failed)"),
        )
    finite = [loss for _, _, pairs in curves for _, loss in pairs if math.isfinite(loss)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 50:
        ax.set_yscale("log")  # a diverged trial would flatten every other curve
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=max(1, len(curves) // 8))
    return _png(fig)


def _data_chart(run: _RunRecords) -> str | None:
    built = [
        (str(t.get("trial_id")), _dict(_get(t, "feedback", "data", "per_source")))
        for t in run.trials
        if _dict(_get(t, "feedback", "data", "per_source"))
    ]
    if not built:
        return None
    sources = sorted({s for _, counts in built for s in counts})
    fig = _figure(7.0, max(2.2, 0.45 * len(built) + 1.4))
    ax = fig.add_subplot()
    left = [0.0] * len(built)
    for source in sources:
        counts = [_num(c.get(source)) or 0.0 for _, c in built]
        ax.barh([tid for tid, _ in built], counts, left=left, label=source)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("training records per source")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}th{background:#f5f5f5}
pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap}
img{max-width:100%;height:auto}.ok{color:#2a7d2a}.fail{color:#b22}.muted{color:#777}
.diff{font-family:ui-monospace,monospace;font-size:.85rem}ul.tree ul{border-left:1px dashed #bbb}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
dl.head{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.head dt{font-weight:600}
dl.head dd{margin:0}td.num{white-space:nowrap}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, spec: str = ".3f") -> str:
    number = _num(value)
    return "—" if number is None else format(number, spec)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else _e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}"
        f"<p class='muted'>Written by ftdojo on {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>"
        "</body></html>\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _status(trial: Mapping[str, Any]) -> tuple[str, str]:
    """(text, css class) of a trial's outcome."""
    execution = _dict(_get(trial, "feedback", "execution"))
    if execution.get("ok"):
        return "ok", "ok"
    kind = execution.get("error_kind") or "failed"
    stage = execution.get("failed_stage")
    return (f"{kind} in {stage}" if stage else str(kind)), "fail"


def _isolation_text(data: Any) -> str:
    if not isinstance(data, dict):
        return "not recorded"
    from ftdojo.sandbox.isolation import Isolation

    try:
        return structure(data, Isolation).describe()
    except Exception:  # a record of another version: show what it says
        return ", ".join(f"{k}: {v}" for k, v in sorted(data.items()) if k != "notes")


def _contamination_text(audit: Mapping[str, Any] | None) -> str:
    if not audit:
        return "not audited (no final model)"
    if audit.get("problem"):
        return f"audit incomplete: {audit.get('problem')}"
    raw = _num(audit.get("raw_rate"))
    text = (
        f"{audit.get('overlapping_items', '?')}/{audit.get('test_items', '?')} test items overlap the "
        f"final training data ({audit.get('n', '?')}-grams, rate {_fmt(audit.get('rate'), '.1%')}"
        + (f"; the raw data alone: {raw:.1%}" if raw is not None else "")
        + ")"
    )
    return text + (" — FLAGGED" if audit.get("flagged") else "")


def _budget_text(budget: Any) -> str:
    budget = _dict(budget)
    parts = []
    if budget.get("max_trials") is not None:
        parts.append(f"{budget['max_trials']} trials")
    if budget.get("max_seconds") is not None:
        parts.append(f"{_fmt(budget['max_seconds'], '.0f')} s")
    if budget.get("max_train_tokens") is not None:
        parts.append(f"{budget['max_train_tokens']} trained tokens")
    return ", ".join(parts) or "not recorded"


def _diagnosis_html(annotations: Mapping[str, Any]) -> str:
    if not annotations:
        return "<p class='muted'>No diagnosis journalled.</p>"
    parts = []
    for key, value in annotations.items():
        findings = _list(_get(value, "findings")) if key == "diagnosis" else []
        if key == "diagnosis" and isinstance(value, dict):
            if not findings:
                parts.append("<p>Diagnosis: no findings.</p>")
                continue
            rows = [
                (
                    str(f.get("kind", "")),
                    str(f.get("subject", "")),
                    str(f.get("evidence", "")),
                    str(f.get("action", "")),
                )
                for f in findings
                if isinstance(f, dict)
            ]
            parts.append(
                "<p>Diagnosis:</p>" + _table(("finding", "subject", "evidence", "suggested action"), rows)
            )
        else:
            text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
            parts.append(f"<p>{_e(key)}:</p><pre>{_e(text)}</pre>")
    return "".join(parts)


def _data_html(data: Mapping[str, Any]) -> str:
    if not data:
        return "<p class='muted'>No data was built.</p>"
    steps = [s for s in _list(data.get("steps")) if isinstance(s, dict)]
    parts = [
        f"<p>{_e(data.get('records', '?'))} records, {_e(data.get('tokens', '?'))} tokens; "
        f"template {_e(data.get('template') or '?')}; lengths p50 {_e(_fmt(data.get('length_p50'), '.0f'))}, "
        f"p99 {_e(_fmt(data.get('length_p99'), '.0f'))}, max {_e(data.get('length_max', '?'))}; "
        f"duplicates removed {_e(data.get('duplicates_removed', 0))}, too long dropped "
        f"{_e(data.get('too_long_dropped', 0))}, failed verification "
        f"{_e(data.get('failed_verification', 0))}.</p>"
    ]
    if steps:
        parts.append(
            _table(
                ("step", "records in", "records out", "dropped"),
                [
                    (
                        str(s.get("step", "")),
                        str(s.get("records_in", "")),
                        str(s.get("records_out", "")),
                        str(_dropped(s)),
                    )
                    for s in steps
                ],
            )
        )
    per_source = _dict(data.get("per_source"))
    if per_source:
        verified = _dict(data.get("verified_per_source"))
        failed = _dict(data.get("failed_verification_per_source"))
        parts.append(
            _table(
                ("source", "records kept", "answers checked", "failed verification"),
                [
                    (s, str(n), str(verified.get(s, "—")), str(failed.get(s, "—")))
                    for s, n in sorted(per_source.items())
                ],
            )
        )
    return "".join(parts)


def _dropped(step: Mapping[str, Any]) -> str:
    a, b = _num(step.get("records_in")), _num(step.get("records_out"))
    return "—" if a is None or b is None else f"{a - b:.0f}"


def _training_html(training: Mapping[str, Any]) -> str:
    if not training:
        return ""
    losses = [p for p in _list(training.get("losses")) if isinstance(p, dict)]
    final = _num(losses[-1].get("loss")) if losses else None
    first = _num(losses[0].get("loss")) if losses else None
    stopped = training.get("stopped_early_reason")
    return (
        f"<p>Training: {_e(training.get('steps', '?'))} steps, "
        f"{_e(_fmt(training.get('epochs'), '.2f'))} epochs, {_e(training.get('tokens_trained', '?'))} "
        f"tokens at {_e(_fmt(training.get('tokens_per_second'), '.0f'))} "
        f"tokens/s; loss {_e(_fmt(first, '.4f'))} → {_e(_fmt(final, '.4f'))}; trainable parameters "
        f"{_e(training.get('trainable_parameters', '?'))} of {_e(training.get('total_parameters', '?'))}"
        + (" — diverged" if training.get("diverged") else "")
        + (f"; stopped early: {_e(stopped)}" if stopped else "")
        + ".</p>"
    )


def _evaluation_html(evaluation: Mapping[str, Any]) -> str:
    if not evaluation:
        return ""
    per_category = _dict(evaluation.get("per_category"))
    parts = [
        f"<p>Validation: {_e(evaluation.get('metric', 'score'))} {_e(_fmt(evaluation.get('score')))} on "
        f"{_e(evaluation.get('n', '?'))} items; format compliance "
        f"{_e(_fmt(evaluation.get('format_compliance'), '.0%'))}.</p>"
    ]
    if per_category:
        parts.append(_table(("category", "score"), [(k, _fmt(v)) for k, v in sorted(per_category.items())]))
    errors = [x for x in _list(evaluation.get("errors")) if isinstance(x, dict)][:3]
    if errors:
        rows = [
            (
                str(x.get("category", "")),
                str(x.get("prompt", ""))[:300],
                str(x.get("expected", "")),
                str(x.get("output", ""))[:300],
            )
            for x in errors
        ]
        parts.append(
            "<details><summary>First validation errors</summary>"
            + _table(("category", "prompt", "expected", "output"), rows)
            + "</details>"
        )
    return "".join(parts)


def _execution_html(execution: Mapping[str, Any]) -> str:
    parts = []
    if not execution.get("ok"):
        parts.append(
            f"<p class='fail'>Failed: {_e(execution.get('error_kind') or 'unknown kind')} in stage "
            f"{_e(execution.get('failed_stage') or '?')} (exit code {_e(execution.get('exit_code'))}). "
            "Root cause:</p>"
            f"<pre>{_e(execution.get('root_cause') or '(none recorded)')}</pre>"
        )
    stages = _dict(execution.get("stage_seconds"))
    memory = _dict(execution.get("peak_memory_mb"))
    launch = _dict(execution.get("launch"))
    if stages:
        parts.append(
            _table(
                ("stage", "seconds", "peak memory (MB)", "started by"),
                [
                    (s, _fmt(v, ".1f"), _fmt(memory.get(s), ".0f"), str(launch.get(s, "—")))
                    for s, v in stages.items()
                ],
            )
        )
    warnings = [str(w) for w in _list(execution.get("warnings"))]
    if warnings:
        parts.append("<p>Warnings:</p><ul>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    return "".join(parts)


def _tree_html(run: _RunRecords, by_id: Mapping[str, dict[str, Any]], final_id: str | None) -> str:
    children: dict[str | None, list[dict[str, Any]]] = {}
    for trial in run.trials:
        parent = _get(trial, "plan", "parent")
        key = parent if isinstance(parent, str) and parent in by_id else None
        children.setdefault(key, []).append(trial)

    def node(trial: dict[str, Any], seen: frozenset[str]) -> str:
        trial_id = str(trial.get("trial_id"))
        plan = _dict(trial.get("plan"))
        text, css = _status(trial)
        score = _num(_get(trial, "feedback", "evaluation", "score"))
        star = " ★ final" if trial_id == final_id else ""
        head = (
            f"<a href='#trial-{_e(trial_id)}'><b>{_e(trial_id)}</b></a> "
            f"<span class='{css}'>{_e(text)}</span>"
            + (f", validation {_e(_fmt(score))}" if score is not None else "")
            + f"{_e(star)} · focus {_e(plan.get('focus', '?'))}"
        )
        hypothesis = plan.get("hypothesis")
        lines = [f"<div>{head}</div>"]
        if hypothesis:
            lines.append(f"<div><i>{_e(hypothesis)}</i></div>")
        lines.append(_diff_html(plan, by_id))
        kids = [c for c in children.get(trial_id, []) if str(c.get("trial_id")) not in seen]
        sub = "".join(node(c, seen | {trial_id}) for c in kids)
        return "<li>" + "".join(lines) + (f"<ul>{sub}</ul>" if sub else "") + "</li>"

    roots = children.get(None, [])
    return "<ul class='tree'>" + "".join(node(t, frozenset()) for t in roots) + "</ul>"


def _diff_html(plan: Mapping[str, Any], by_id: Mapping[str, dict[str, Any]]) -> str:
    parent = plan.get("parent")
    if isinstance(parent, str) and parent in by_id:
        changes = plan_diff(_dict(by_id[parent].get("plan")), plan)
        if not changes:
            return f"<div class='diff muted'>same data recipe and training as {_e(parent)}</div>"
        items = "".join(f"<li>{_e(c.describe())}</li>" for c in changes)
        return f"<div class='diff'>changes from {_e(parent)}:<ul>{items}</ul></div>"
    if isinstance(parent, str):
        return f"<div class='diff muted'>parent {_e(parent)} is not in this journal</div>"
    # A first plan: its sources, and where it departs from the default recipe and training.
    sources = _short("data.sources", _get(plan, "data", "sources"))
    lines = [f"<li>{_e('data.sources: ' + sources)}</li>"]
    try:
        default = Plan(data=DataRecipe(sources=structure(plan["data"], DataRecipe).sources))
        lines += [
            f"<li>{_e(c.describe())}</li>" for c in plan_diff(default, plan) if c.field != "data.sources"
        ]
    except Exception:  # an unreadable plan: its sources are all there is to show
        pass
    return (
        "<div class='diff'>first plan: its sources, and where it departs from the defaults:"
        f"<ul>{''.join(lines)}</ul></div>"
    )


def _render_run(run_dir: Path, run: _RunRecords) -> str:
    started, finished = run.started, run.finished or {}
    run_id = finished.get("run_id") or started.get("run_id") or run_dir.name
    task = finished.get("task") or _get(started, "task", "name") or "?"
    model = finished.get("model") or started.get("model") or "?"
    by_id = {str(t.get("trial_id")): t for t in run.trials}
    final_id = finished.get("final_trial_id") or _get(run.test, "trial_id")
    final_id = str(final_id) if final_id is not None else None
    test_score = _num(finished.get("test_score"))
    if test_score is None:
        test_score = _num(_get(run.test, "score"))
    final_val = _num(_get(by_id.get(final_id or ""), "feedback", "evaluation", "score"))
    usage = _dict(finished.get("usage"))
    if not usage:
        # Not finished: what the last trial record says was spent.
        usage = {
            "trials": len(run.trials),
            "seconds": max(run.elapsed.values(), default=None),
            "train_tokens": run.tokens,
        }
    if finished:
        status = f"finished: {finished.get('stop_reason', '?')}"
    else:
        status = (
            "not finished: the journal ends without a run_finished record "
            "(the run was killed, failed or is still running)"
        )
    baseline = run.baseline or _dict(finished.get("baseline"))
    head = [
        ("task", str(task)),
        ("model", str(model)),
        ("run id", str(run_id)),
        (
            "status",
            status
            + (f" (resumed {run.resumes} time{'s' if run.resumes != 1 else ''})" if run.resumes else ""),
        ),
        ("budget", _budget_text(started.get("budget"))),
        (
            "used",
            f"{usage.get('trials', len(run.trials))} trials, {_fmt(usage.get('seconds'), '.0f')} s, "
            f"{usage.get('train_tokens') if usage.get('train_tokens') is not None else '—'} trained tokens",
        ),
        (
            "final model",
            f"{final_id}: validation {_fmt(final_val)}, test {_fmt(test_score)}" if final_id else "none",
        ),
        (
            "base model",
            f"validation {_fmt(baseline.get('validation_score'))}, test {_fmt(baseline.get('test_score'))}"
            if baseline
            else "not scored in this run",
        ),
        ("isolation", _isolation_text(finished.get("isolation") or started.get("isolation"))),
        (
            "contamination",
            _contamination_text(run.contamination or _dict(finished.get("contamination")) or None),
        ),
        (
            "plans",
            f"{len(run.trials)} trials, {len(run.rejections)} rejected before running, "
            f"{run.smokes} smoke runs",
        ),
    ]
    head += [("agent failed", error) for error in run.agent_failures]
    body = [
        f"<h1>ftdojo run {_e(run_id)}</h1>",
        "<dl class='head'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in head) + "</dl>",
    ]

    body.append("<h2 id='scores'>Validation scores</h2>")
    chart = _scores_chart(run, final_id, test_score)
    body.append(
        _img(chart, "validation score of every trial") if chart else "<p class='muted'>No trial ran.</p>"
    )
    rows = []
    for trial in run.trials:
        trial_id = str(trial.get("trial_id"))
        text, css = _status(trial)
        feedback = _dict(trial.get("feedback"))
        losses = _list(_get(feedback, "training", "losses"))
        final_loss = _get(losses[-1], "loss") if losses else None
        rows.append(
            (
                f"<a href='#trial-{_e(trial_id)}'>{_e(trial_id)}</a>"
                + (" ★" if trial_id == final_id else ""),
                _e(_get(trial, "plan", "parent") or "—"),
                _e(_get(trial, "plan", "focus") or "—"),
                f"<span class='{css}'>{_e(text)}</span>",
                _e(_fmt(_get(feedback, "evaluation", "score"))),
                _e(_fmt(final_loss, ".4f")),
                _e(
                    _get(feedback, "data", "records")
                    if _get(feedback, "data", "records") is not None
                    else "—"
                ),
                _e(_fmt(_get(feedback, "execution", "duration_s"), ".0f")),
            )
        )
    if rows:
        body.append(
            _table(
                ("trial", "parent", "focus", "status", "validation", "final loss", "records", "seconds"),
                rows,
                raw=True,
            )
        )

    body.append("<h2 id='tree'>Tree of trials</h2>")
    body.append(_tree_html(run, by_id, final_id) if run.trials else "<p class='muted'>No trial ran.</p>")

    body.append("<h2 id='loss'>Loss curves</h2>")
    chart = _loss_chart(run)
    body.append(
        _img(chart, "training loss of every trial") if chart else "<p class='muted'>No trial trained.</p>"
    )

    body.append("<h2 id='data'>Data built</h2>")
    chart = _data_chart(run)
    body.append(
        _img(chart, "training records per source") if chart else "<p class='muted'>No trial built data.</p>"
    )

    body.append("<h2 id='trials'>Trials</h2>")
    for trial in run.trials:
        trial_id = str(trial.get("trial_id"))
        plan = _dict(trial.get("plan"))
        feedback = _dict(trial.get("feedback"))
        text, css = _status(trial)
        section = [
            f"<div class='card' id='trial-{_e(trial_id)}'>",
            f"<h3>{_e(trial_id)} <span class='{css}'>{_e(text)}</span>"
            + (" ★ final model" if trial_id == final_id else "")
            + "</h3>",
            f"<p>Parent: {_e(plan.get('parent') or 'none')} · focus: {_e(plan.get('focus', '?'))}</p>",
            f"<p>Hypothesis: <i>{_e(plan.get('hypothesis') or '(none)')}</i></p>",
            _diff_html(plan, by_id),
            _execution_html(_dict(feedback.get("execution"))),
            _diagnosis_html(run.annotations.get(trial_id, {})),
            "<h4>Data</h4>" + _data_html(_dict(feedback.get("data"))),
            _training_html(_dict(feedback.get("training"))),
            _evaluation_html(_dict(feedback.get("evaluation"))),
            "<details><summary>Full plan (JSON)</summary>"
            f"<pre>{_e(json.dumps(plan, indent=1, sort_keys=True, default=str))}</pre></details>",
            "</div>",
        ]
        body.append("".join(section))
    if not run.trials:
        body.append("<p class='muted'>No trial ran.</p>")
    # Annotations of ids that are not trials of this journal (should not happen; kept visible).
    strays = {k: v for k, v in run.annotations.items() if k not in by_id}
    for trial_id, notes in strays.items():
        body.append(
            f"<div class='card'><h3>{_e(trial_id)} (not in this journal)</h3>{_diagnosis_html(notes)}</div>"
        )

    body.append("<h2 id='rejections'>Rejected plans</h2>")
    if run.rejections:
        rejected = []
        for rejection in run.rejections:
            reasons = "".join(f"<li>{_e(r)}</li>" for r in _list(rejection.get("reasons")))
            projected = _num(rejection.get("projected_seconds"))
            rejected.append(
                (
                    _e(_get(rejection, "plan", "hypothesis") or "(none)"),
                    f"<ul>{reasons}</ul>",
                    _e(_fmt(rejection.get("seconds"), ".1f")),
                    _e(_fmt(projected, ".0f")),
                )
            )
        body.append(
            _table(
                ("hypothesis", "reasons", "seconds to reject", "projected trial seconds"), rejected, raw=True
            )
        )
    else:
        body.append("<p class='muted'>None.</p>")

    body.append("<h2 id='violations'>Sandbox violations</h2>")
    if run.violations:
        body.append(
            _table(
                ("trial", "stage", "kind", "detail"),
                [
                    (
                        str(v.get("trial_id") or "—"),
                        str(v.get("stage") or "—"),
                        str(v.get("kind", "")),
                        str(v.get("detail", "")),
                    )
                    for v in run.violations
                ],
            )
        )
    else:
        body.append("<p class='muted'>None.</p>")
    return _page(f"ftdojo run {run_id}", "".join(body))


def write_run_report(run_dir: Path | str) -> Path:
    """Write ``report.html`` into ``run_dir`` from its journal alone, and return its path.

    Works for finished, failed, killed and resumed runs and for journals of older
    versions (missing fields are shown as missing). Raises :class:`JournalError`,
    naming the file, when the journal is missing or unreadable.
    """
    run_dir = Path(run_dir)
    run = _read_run(run_dir)
    path = run_dir / REPORT_NAME
    _write_atomic(path, _render_run(run_dir, run))
    return path


# -- benchmarks -----------------------------------------------------------------------------


def _bench_chart(tasks: Sequence[str], agents: Sequence[str], rows: Mapping[tuple[str, str], Any]) -> str:
    # Capped at the page's width: a wider image would only be scaled down, text and all.
    fig = _figure(min(11.0, max(6.0, 0.2 * len(tasks) * len(agents) + 2)), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(agents))
    for i, agent in enumerate(agents):
        xs, means, stds = [], [], []
        for j, task in enumerate(tasks):
            row = rows.get((task, agent))
            if row is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            means.append(row.test_mean)
            stds.append(row.test_std)
        ax.bar(xs, means, width=width, yerr=stds, capsize=2, label=agent)
    ax.set_xticks(range(len(tasks)), list(tasks), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test score (mean ± sd over seeds)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def write_bench_report(bench_dir: Path | str) -> Path:
    """Write ``report.html`` into a folder written by ``ftdojo bench`` and return its path.

    It holds the paper-style table (per task and agent the validation and test score as
    mean ± standard deviation over seeds, the best test mean per task in bold, the
    tasks each agent wins), a grouped bar chart of test scores, and every cell with a
    link to its run's report where the run folder has one. Raises :class:`JournalError`
    naming ``bench.json`` when it is missing or unreadable.
    """
    from ftdojo.bench import BASE, BenchCell, BenchResult

    bench_dir = Path(bench_dir)
    source = bench_dir / "bench.json"
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JournalError(f"{source} does not exist: {bench_dir} is not a benchmark folder") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JournalError(f"{source} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise JournalError(f"{source} is not a benchmark summary (no list of cells)")
    names = {f.name for f in attrs.fields(BenchCell)}
    try:
        cells = tuple(
            BenchCell(**{k: v for k, v in cell.items() if k in names})
            for cell in data["cells"]
            if isinstance(cell, dict)
        )
    except TypeError as exc:
        raise JournalError(f"{source}: a cell is unreadable: {exc}") from exc
    tasks = tuple(str(t) for t in _list(data.get("tasks"))) or tuple(dict.fromkeys(c.task for c in cells))
    agents = tuple(str(a) for a in _list(data.get("agents")) if a != BASE) or tuple(
        dict.fromkeys(c.agent for c in cells if c.agent != BASE)
    )
    bench = BenchResult(tasks=tasks, agents=agents, cells=cells)
    rows = {(r.task, r.agent): r for r in bench.rows()}
    shown = [a for a in (BASE, *agents) if any(c.agent == a for c in cells)]
    wins = bench.wins()
    seeds = sorted({c.seed for c in cells if c.agent != BASE})

    header = (
        "<tr><th rowspan='2'>task</th>" + "".join(f"<th colspan='2'>{_e(a)}</th>" for a in shown) + "</tr>"
    )
    header += "<tr>" + "<th>validation</th><th>test</th>" * len(shown) + "</tr>"
    lines = []
    for task in tasks:
        cells_html = []
        for agent in shown:
            row = rows.get((task, agent))
            if row is None:
                cells_html += ["<td>—</td>", "<td>—</td>"]
                continue
            test = f"{row.test_mean:.3f} ± {row.test_std:.3f}" + (
                f" ({row.failures} failed)" if row.failures else ""
            )
            cells_html.append(f"<td class='num'>{row.validation_mean:.3f} ± {row.validation_std:.3f}</td>")
            cells_html.append(
                f"<td class='num'><b>{_e(test)}</b></td>" if row.best else f"<td class='num'>{_e(test)}</td>"
            )
        lines.append(f"<tr><td>{_e(task)}</td>{''.join(cells_html)}</tr>")
    lines.append(
        "<tr><th>wins</th>" + "".join(f"<td></td><td>{wins.get(a, 0)}</td>" for a in shown) + "</tr>"
    )
    table = f"<table><thead>{header}</thead><tbody>{''.join(lines)}</tbody></table>"

    cell_rows = []
    for cell in sorted(cells, key=lambda c: (c.task, c.agent, c.seed)):
        report = bench_dir / "runs" / cell.run_id / REPORT_NAME if cell.run_id else None
        link = (
            f"<a href='{_e(f'runs/{cell.run_id}/{REPORT_NAME}')}'>{_e(cell.run_id)}</a>"
            if report is not None and report.is_file()
            else _e(cell.run_id or "—")
        )
        cell_rows.append(
            (
                _e(cell.task),
                _e(cell.agent),
                _e(cell.seed),
                link,
                _e(_fmt(cell.validation)),
                _e(_fmt(cell.test)),
                _e(cell.trials),
                _e(_fmt(cell.seconds, ".0f")),
                _e(cell.error or ""),
            )
        )
    body = [
        f"<h1>ftdojo benchmark {_e(bench_dir.resolve().name)}</h1>",
        f"<p>{len(tasks)} tasks × {len(agents)} agents × seeds {_e(seeds)}; {len(cells)} cells.</p>",
        "<h2>Table</h2>",
        table,
        "<p class='muted'>Mean ± standard deviation over seeds; bold: the best test mean per task "
        "(ties all bold; a failed run counts as 0).</p>",
        "<h2>Test scores per task and agent</h2>",
        _img(_bench_chart(tasks, shown, rows), "test score per task and agent") if tasks and shown else "",
        "<h2>Cells</h2>",
        f"<details><summary>Every run ({len(cell_rows)}), with a link to its report where there is one"
        "</summary>",
        _table(
            ("task", "agent", "seed", "run", "validation", "test", "trials", "seconds", "error"),
            cell_rows,
            raw=True,
        ),
        "</details>",
    ]
    path = bench_dir / REPORT_NAME
    _write_atomic(path, _page(f"ftdojo benchmark {bench_dir.resolve().name}", "".join(body)))
    return path


def write_report(path: Path | str) -> Path:
    """The report of ``path``: a run directory (holding ``journal.jsonl``) or a benchmark
    folder (holding ``bench.json``); raises :class:`JournalError` for anything else."""
    path = Path(path)
    if (path / "journal.jsonl").is_file():
        return write_run_report(path)
    if (path / "bench.json").is_file():
        return write_bench_report(path)
    raise JournalError(
        f"{path} is neither a run directory (no journal.jsonl) nor a benchmark folder (no bench.json)"
    )
