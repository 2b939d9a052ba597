"""The report of one run: its page, made from the run directory's journal alone.

The page holds the run's header (task, model, budget and usage, stop reason,
isolation, contamination audit, base model), a chart of every trial's validation
score with the final model's test score, the loss curves, the tree of trials with
each plan's difference from its parent, each diagnosis the agent journalled, the data
each trial built, the rejected plans and the sandbox violations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ftdojo.errors import JournalError
from ftdojo.journal import replay
from ftdojo.plans import DataRecipe, Plan, describe_value, plan_diff
from ftdojo.report.charts import data_chart, loss_chart, scores_chart
from ftdojo.report.html import REPORT_NAME, escape, fmt, img, page, table, write_page
from ftdojo.report.values import as_dict, as_list, lookup, number
from ftdojo.serialization import structure, to_json

__all__ = ["write_run_report"]


# -- reading the journal -------------------------------------------------------------------
# Everything the page needs from the journal is read here, once, into _RunPageData; the
# rendering below reads nothing else.


@attrs.define
class _RunPageData:
    """What the run page shows of a journal, read tolerantly: every field may be missing."""

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


def _plain(value: Any) -> Any:
    # JSON data exactly as the journal holds it (enums as their values): what the page reads.
    return json.loads(to_json(value))


def _read_run(run_dir: Path) -> _RunPageData:
    """The page's data from the journal's one reader, :func:`ftdojo.journal.replay`, in its
    tolerant mode: a record an older version wrote differently is skipped, not fatal."""
    path = run_dir / "journal.jsonl"
    if not path.is_file():
        raise JournalError(f"{path} does not exist: {run_dir} is not a run directory")
    record = replay(path, tolerant=True)
    test: dict[str, Any] | None = None
    if record.test_scores:
        trial_id, score = list(record.test_scores.items())[-1]
        test = {"trial_id": trial_id, "score": score}
    started = {
        "run_id": record.run_id,
        "task": record.task,
        "model": record.model,
        "budget": _plain(record.budget) if record.budget is not None else None,
        "isolation": _plain(record.isolation) if record.isolation is not None else None,
    }
    return _RunPageData(
        started=started,
        resumes=record.resumes,
        trials=[_plain(trial) for trial in record.trials],
        elapsed=dict(record.elapsed),
        annotations={k: dict(v) for k, v in record.annotations.items()},
        rejections=[_plain(r) for r in record.rejections],
        violations=[_plain(v) for v in record.violations],
        smokes=record.smokes,
        test=test,
        contamination=_plain(record.contamination) if record.contamination is not None else None,
        baseline=_plain(record.baseline) if record.baseline is not None else None,
        agent_failures=list(record.agent_failures),
        finished=record.result,
        tokens=record.tokens_spent if record.trials else None,
    )


# -- the page ------------------------------------------------------------------------------


def _status(trial: Mapping[str, Any]) -> tuple[str, str]:
    """(text, css class) of a trial's outcome."""
    execution = as_dict(lookup(trial, "feedback", "execution"))
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
    raw = number(audit.get("raw_rate"))
    text = (
        f"{audit.get('overlapping_items', '?')}/{audit.get('test_items', '?')} test items overlap the "
        f"final training data ({audit.get('n', '?')}-grams, rate {fmt(audit.get('rate'), '.1%')}"
        + (f"; the raw data alone: {raw:.1%}" if raw is not None else "")
        + ")"
    )
    return text + (" — FLAGGED" if audit.get("flagged") else "")


def _budget_text(budget: Any) -> str:
    budget = as_dict(budget)
    parts = []
    if budget.get("max_trials") is not None:
        parts.append(f"{budget['max_trials']} trials")
    if budget.get("max_seconds") is not None:
        parts.append(f"{fmt(budget['max_seconds'], '.0f')} s")
    if budget.get("max_train_tokens") is not None:
        parts.append(f"{budget['max_train_tokens']} trained tokens")
    return ", ".join(parts) or "not recorded"


def _diagnosis_html(annotations: Mapping[str, Any]) -> str:
    if not annotations:
        return "<p class='muted'>No diagnosis journalled.</p>"
    parts = []
    for key, value in annotations.items():
        findings = as_list(lookup(value, "findings")) if key == "diagnosis" else []
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
                "<p>Diagnosis:</p>" + table(("finding", "subject", "evidence", "suggested action"), rows)
            )
        else:
            text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
            parts.append(f"<p>{escape(key)}:</p><pre>{escape(text)}</pre>")
    return "".join(parts)


def _data_html(data: Mapping[str, Any]) -> str:
    if not data:
        return "<p class='muted'>No data was built.</p>"
    steps = [s for s in as_list(data.get("steps")) if isinstance(s, dict)]
    parts = [
        f"<p>{escape(data.get('records', '?'))} records, {escape(data.get('tokens', '?'))} tokens; "
        f"template {escape(data.get('template') or '?')}; "
        f"lengths p50 {escape(fmt(data.get('length_p50'), '.0f'))}, "
        f"p99 {escape(fmt(data.get('length_p99'), '.0f'))}, max {escape(data.get('length_max', '?'))}; "
        f"duplicates removed {escape(data.get('duplicates_removed', 0))}, too long dropped "
        f"{escape(data.get('too_long_dropped', 0))}, failed verification "
        f"{escape(data.get('failed_verification', 0))}.</p>"
    ]
    if steps:
        parts.append(
            table(
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
    per_source = as_dict(data.get("per_source"))
    if per_source:
        verified = as_dict(data.get("verified_per_source"))
        failed = as_dict(data.get("failed_verification_per_source"))
        parts.append(
            table(
                ("source", "records kept", "answers checked", "failed verification"),
                [
                    (s, str(n), str(verified.get(s, "—")), str(failed.get(s, "—")))
                    for s, n in sorted(per_source.items())
                ],
            )
        )
    return "".join(parts)


def _dropped(step: Mapping[str, Any]) -> str:
    a, b = number(step.get("records_in")), number(step.get("records_out"))
    return "—" if a is None or b is None else f"{a - b:.0f}"


def _training_html(training: Mapping[str, Any]) -> str:
    if not training:
        return ""
    losses = [p for p in as_list(training.get("losses")) if isinstance(p, dict)]
    final = number(losses[-1].get("loss")) if losses else None
    first = number(losses[0].get("loss")) if losses else None
    stopped = training.get("stopped_early_reason")
    return (
        f"<p>Training: {escape(training.get('steps', '?'))} steps, "
        f"{escape(fmt(training.get('epochs'), '.2f'))} epochs, {escape(training.get('tokens_trained', '?'))} "
        f"tokens at {escape(fmt(training.get('tokens_per_second'), '.0f'))} "
        f"tokens/s; loss {escape(fmt(first, '.4f'))} → {escape(fmt(final, '.4f'))}; trainable parameters "
        f"{escape(training.get('trainable_parameters', '?'))} "
        f"of {escape(training.get('total_parameters', '?'))}"
        + (" — diverged" if training.get("diverged") else "")
        + (f"; stopped early: {escape(stopped)}" if stopped else "")
        + ".</p>"
    )


def _evaluation_html(evaluation: Mapping[str, Any]) -> str:
    if not evaluation:
        return ""
    per_category = as_dict(evaluation.get("per_category"))
    parts = [
        f"<p>Validation: {escape(evaluation.get('metric', 'score'))} "
        f"{escape(fmt(evaluation.get('score')))} on "
        f"{escape(evaluation.get('n', '?'))} items; format compliance "
        f"{escape(fmt(evaluation.get('format_compliance'), '.0%'))}.</p>"
    ]
    if per_category:
        parts.append(table(("category", "score"), [(k, fmt(v)) for k, v in sorted(per_category.items())]))
    errors = [x for x in as_list(evaluation.get("errors")) if isinstance(x, dict)][:3]
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
            + table(("category", "prompt", "expected", "output"), rows)
            + "</details>"
        )
    return "".join(parts)


def _execution_html(execution: Mapping[str, Any]) -> str:
    parts = []
    if not execution.get("ok"):
        parts.append(
            f"<p class='fail'>Failed: {escape(execution.get('error_kind') or 'unknown kind')} in stage "
            f"{escape(execution.get('failed_stage') or '?')} "
            f"(exit code {escape(execution.get('exit_code'))}). "
            "Root cause:</p>"
            f"<pre>{escape(execution.get('root_cause') or '(none recorded)')}</pre>"
        )
    stages = as_dict(execution.get("stage_seconds"))
    memory = as_dict(execution.get("peak_memory_mb"))
    launch = as_dict(execution.get("launch"))
    if stages:
        parts.append(
            table(
                ("stage", "seconds", "peak memory (MB)", "started by"),
                [
                    (s, fmt(v, ".1f"), fmt(memory.get(s), ".0f"), str(launch.get(s, "—")))
                    for s, v in stages.items()
                ],
            )
        )
    warnings = [str(w) for w in as_list(execution.get("warnings"))]
    if warnings:
        parts.append("<p>Warnings:</p><ul>" + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>")
    return "".join(parts)


def _tree_html(run: _RunPageData, by_id: Mapping[str, dict[str, Any]], final_id: str | None) -> str:
    children: dict[str | None, list[dict[str, Any]]] = {}
    for trial in run.trials:
        parent = lookup(trial, "plan", "parent")
        key = parent if isinstance(parent, str) and parent in by_id else None
        children.setdefault(key, []).append(trial)

    def node(trial: dict[str, Any], seen: frozenset[str]) -> str:
        trial_id = str(trial.get("trial_id"))
        plan = as_dict(trial.get("plan"))
        text, css = _status(trial)
        score = number(lookup(trial, "feedback", "evaluation", "score"))
        star = " ★ final" if trial_id == final_id else ""
        head = (
            f"<a href='#trial-{escape(trial_id)}'><b>{escape(trial_id)}</b></a> "
            f"<span class='{css}'>{escape(text)}</span>"
            + (f", validation {escape(fmt(score))}" if score is not None else "")
            + f"{escape(star)} · focus {escape(plan.get('focus', '?'))}"
        )
        hypothesis = plan.get("hypothesis")
        lines = [f"<div>{head}</div>"]
        if hypothesis:
            lines.append(f"<div><i>{escape(hypothesis)}</i></div>")
        lines.append(_diff_html(plan, by_id))
        kids = [c for c in children.get(trial_id, []) if str(c.get("trial_id")) not in seen]
        sub = "".join(node(c, seen | {trial_id}) for c in kids)
        return "<li>" + "".join(lines) + (f"<ul>{sub}</ul>" if sub else "") + "</li>"

    roots = children.get(None, [])
    return "<ul class='tree'>" + "".join(node(t, frozenset()) for t in roots) + "</ul>"


def _diff_html(plan: Mapping[str, Any], by_id: Mapping[str, dict[str, Any]]) -> str:
    parent = plan.get("parent")
    if isinstance(parent, str) and parent in by_id:
        changes = plan_diff(as_dict(by_id[parent].get("plan")), plan)
        if not changes:
            return f"<div class='diff muted'>same data recipe and training as {escape(parent)}</div>"
        items = "".join(f"<li>{escape(c.describe())}</li>" for c in changes)
        return f"<div class='diff'>changes from {escape(parent)}:<ul>{items}</ul></div>"
    if isinstance(parent, str):
        return f"<div class='diff muted'>parent {escape(parent)} is not in this journal</div>"
    # A first plan: its sources, and where it departs from the default recipe and training.
    sources = describe_value("data.sources", lookup(plan, "data", "sources"))
    lines = [f"<li>{escape('data.sources: ' + sources)}</li>"]
    try:
        default = Plan(data=DataRecipe(sources=structure(plan["data"], DataRecipe).sources))
        lines += [
            f"<li>{escape(c.describe())}</li>" for c in plan_diff(default, plan) if c.field != "data.sources"
        ]
    except Exception:  # an unreadable plan: its sources are all there is to show
        pass
    return (
        "<div class='diff'>first plan: its sources, and where it departs from the defaults:"
        f"<ul>{''.join(lines)}</ul></div>"
    )


def _render_run(run_dir: Path, run: _RunPageData) -> str:
    started, finished = run.started, run.finished or {}
    run_id = finished.get("run_id") or started.get("run_id") or run_dir.name
    task = finished.get("task") or lookup(started, "task", "name") or "?"
    model = finished.get("model") or started.get("model") or "?"
    by_id = {str(t.get("trial_id")): t for t in run.trials}
    final_id = finished.get("final_trial_id") or lookup(run.test, "trial_id")
    final_id = str(final_id) if final_id is not None else None
    test_score = number(finished.get("test_score"))
    if test_score is None:
        test_score = number(lookup(run.test, "score"))
    final_val = number(lookup(by_id.get(final_id or ""), "feedback", "evaluation", "score"))
    usage = as_dict(finished.get("usage"))
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
    baseline = run.baseline or as_dict(finished.get("baseline"))
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
            f"{usage.get('trials', len(run.trials))} trials, {fmt(usage.get('seconds'), '.0f')} s, "
            f"{usage.get('train_tokens') if usage.get('train_tokens') is not None else '—'} trained tokens",
        ),
        (
            "final model",
            f"{final_id}: validation {fmt(final_val)}, test {fmt(test_score)}" if final_id else "none",
        ),
        (
            "base model",
            f"validation {fmt(baseline.get('validation_score'))}, test {fmt(baseline.get('test_score'))}"
            if baseline
            else "not scored in this run",
        ),
        ("isolation", _isolation_text(finished.get("isolation") or started.get("isolation"))),
        (
            "contamination",
            _contamination_text(run.contamination or as_dict(finished.get("contamination")) or None),
        ),
        (
            "plans",
            f"{len(run.trials)} trials, {len(run.rejections)} rejected before running, "
            f"{run.smokes} smoke runs",
        ),
    ]
    head += [("agent failed", error) for error in run.agent_failures]
    body = [
        f"<h1>ftdojo run {escape(run_id)}</h1>",
        "<dl class='head'>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in head) + "</dl>",
    ]

    body.append("<h2 id='scores'>Validation scores</h2>")
    chart = scores_chart(
        run.trials, elapsed=run.elapsed, baseline=run.baseline, final_id=final_id, test_score=test_score
    )
    body.append(
        img(chart, "validation score of every trial") if chart else "<p class='muted'>No trial ran.</p>"
    )
    rows = []
    for trial in run.trials:
        trial_id = str(trial.get("trial_id"))
        text, css = _status(trial)
        feedback = as_dict(trial.get("feedback"))
        losses = as_list(lookup(feedback, "training", "losses"))
        final_loss = lookup(losses[-1], "loss") if losses else None
        rows.append(
            (
                f"<a href='#trial-{escape(trial_id)}'>{escape(trial_id)}</a>"
                + (" ★" if trial_id == final_id else ""),
                escape(lookup(trial, "plan", "parent") or "—"),
                escape(lookup(trial, "plan", "focus") or "—"),
                f"<span class='{css}'>{escape(text)}</span>",
                escape(fmt(lookup(feedback, "evaluation", "score"))),
                escape(fmt(final_loss, ".4f")),
                escape(
                    lookup(feedback, "data", "records")
                    if lookup(feedback, "data", "records") is not None
                    else "—"
                ),
                escape(fmt(lookup(feedback, "execution", "duration_s"), ".0f")),
            )
        )
    if rows:
        body.append(
            table(
                ("trial", "parent", "focus", "status", "validation", "final loss", "records", "seconds"),
                rows,
                raw=True,
            )
        )

    body.append("<h2 id='tree'>Tree of trials</h2>")
    body.append(_tree_html(run, by_id, final_id) if run.trials else "<p class='muted'>No trial ran.</p>")

    body.append("<h2 id='loss'>Loss curves</h2>")
    chart = loss_chart(run.trials)
    body.append(
        img(chart, "training loss of every trial") if chart else "<p class='muted'>No trial trained.</p>"
    )

    body.append("<h2 id='data'>Data built</h2>")
    chart = data_chart(run.trials)
    body.append(
        img(chart, "training records per source") if chart else "<p class='muted'>No trial built data.</p>"
    )

    body.append("<h2 id='trials'>Trials</h2>")
    for trial in run.trials:
        trial_id = str(trial.get("trial_id"))
        plan = as_dict(trial.get("plan"))
        feedback = as_dict(trial.get("feedback"))
        text, css = _status(trial)
        section = [
            f"<div class='card' id='trial-{escape(trial_id)}'>",
            f"<h3>{escape(trial_id)} <span class='{css}'>{escape(text)}</span>"
            + (" ★ final model" if trial_id == final_id else "")
            + "</h3>",
            f"<p>Parent: {escape(plan.get('parent') or 'none')} · "
            f"focus: {escape(plan.get('focus', '?'))}</p>",
            f"<p>Hypothesis: <i>{escape(plan.get('hypothesis') or '(none)')}</i></p>",
            _diff_html(plan, by_id),
            _execution_html(as_dict(feedback.get("execution"))),
            _diagnosis_html(run.annotations.get(trial_id, {})),
            "<h4>Data</h4>" + _data_html(as_dict(feedback.get("data"))),
            _training_html(as_dict(feedback.get("training"))),
            _evaluation_html(as_dict(feedback.get("evaluation"))),
            "<details><summary>Full plan (JSON)</summary>"
            f"<pre>{escape(json.dumps(plan, indent=1, sort_keys=True, default=str))}</pre></details>",
            "</div>",
        ]
        body.append("".join(section))
    if not run.trials:
        body.append("<p class='muted'>No trial ran.</p>")
    # Annotations of ids that are not trials of this journal (should not happen; kept visible).
    strays = {k: v for k, v in run.annotations.items() if k not in by_id}
    for trial_id, notes in strays.items():
        body.append(
            f"<div class='card'><h3>{escape(trial_id)} (not in this journal)</h3>"
            f"{_diagnosis_html(notes)}</div>"
        )

    body.append("<h2 id='rejections'>Rejected plans</h2>")
    if run.rejections:
        rejected = []
        for rejection in run.rejections:
            reasons = "".join(f"<li>{escape(r)}</li>" for r in as_list(rejection.get("reasons")))
            projected = number(rejection.get("projected_seconds"))
            rejected.append(
                (
                    escape(lookup(rejection, "plan", "hypothesis") or "(none)"),
                    f"<ul>{reasons}</ul>",
                    escape(fmt(rejection.get("seconds"), ".1f")),
                    escape(fmt(projected, ".0f")),
                )
            )
        body.append(
            table(
                ("hypothesis", "reasons", "seconds to reject", "projected trial seconds"), rejected, raw=True
            )
        )
    else:
        body.append("<p class='muted'>None.</p>")

    body.append("<h2 id='violations'>Sandbox violations</h2>")
    if run.violations:
        body.append(
            table(
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
    return page(f"ftdojo run {run_id}", "".join(body))


def write_run_report(run_dir: Path | str) -> Path:
    """Write ``report.html`` into ``run_dir`` from its journal alone, and return its path.

    Works for finished, failed, killed and resumed runs and for journals of older
    versions (missing fields are shown as missing). Raises :class:`JournalError`,
    naming the file, when the journal is missing or unreadable.

    It is also the run finisher the Dojo calls when a run ends: a plain function of the
    run directory, blocking (the Dojo calls it in a worker thread), whose exceptions the
    caller logs instead of failing the run.
    """
    run_dir = Path(run_dir)
    run = _read_run(run_dir)
    path = run_dir / REPORT_NAME
    write_page(path, _render_run(run_dir, run))
    return path
