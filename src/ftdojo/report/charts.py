"""The report's charts, drawn with matplotlib into PNG data URIs.

matplotlib is imported on first use only: ``import ftdojo`` and a run that writes no
report never pay for it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ftdojo.report.values import as_dict, as_list, lookup, number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ftdojo.bench import BenchRow

__all__ = ["bench_chart", "data_chart", "loss_chart", "scores_chart"]


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


def scores_chart(
    trials: Sequence[Mapping[str, Any]],
    *,
    elapsed: Mapping[str, float],
    baseline: Mapping[str, Any] | None,
    final_id: str | None,
    test_score: float | None,
) -> str | None:
    """Every trial's validation score over the run, the best so far, the final model's
    test score and the base model's scores; ``None`` when no trial ran."""
    if not trials:
        return None
    fig = _figure(min(11.0, max(8.0, 0.5 * len(trials) + 5)), 3.6)
    ax = fig.add_subplot()
    xs = list(range(1, len(trials) + 1))
    ids = [str(t.get("trial_id")) for t in trials]
    scores = [number(lookup(t, "feedback", "evaluation", "score")) for t in trials]
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
        value = number(lookup(baseline, key))
        if value is not None:
            ax.axhline(
                value, linestyle=style, color="gray", label=f"base model {key.split('_')[0]} {value:.3f}"
            )
    every = math.ceil(len(ids) / 12)  # at most 12 labels: more would overlap
    ticks, labels = [], []
    for x, trial_id in list(zip(xs, ids, strict=True))[::every]:
        seconds = elapsed.get(trial_id)
        ticks.append(x)
        labels.append(trial_id if seconds is None else f"{trial_id}\n{seconds / 60:.1f} min")
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


def loss_chart(trials: Sequence[Mapping[str, Any]]) -> str | None:
    """The training loss of every trial over its steps; ``None`` when no trial trained."""
    curves = []
    for trial in trials:
        points = [p for p in as_list(lookup(trial, "feedback", "training", "losses")) if isinstance(p, dict)]
        steps = [number(p.get("step")) for p in points]
        losses = [number(p.get("loss")) for p in points]
        pairs = [
            (s, loss) for s, loss in zip(steps, losses, strict=True) if s is not None and loss is not None
        ]
        if pairs:
            curves.append(
                (str(trial.get("trial_id")), bool(lookup(trial, "feedback", "execution", "ok")), pairs)
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


def data_chart(trials: Sequence[Mapping[str, Any]]) -> str | None:
    """The training records each trial took from each source; ``None`` when none built data."""
    built = [
        (str(t.get("trial_id")), as_dict(lookup(t, "feedback", "data", "per_source")))
        for t in trials
        if as_dict(lookup(t, "feedback", "data", "per_source"))
    ]
    if not built:
        return None
    sources = sorted({s for _, counts in built for s in counts})
    fig = _figure(7.0, max(2.2, 0.45 * len(built) + 1.4))
    ax = fig.add_subplot()
    left = [0.0] * len(built)
    for source in sources:
        counts = [number(c.get(source)) or 0.0 for _, c in built]
        ax.barh([tid for tid, _ in built], counts, left=left, label=source)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("training records per source")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def bench_chart(tasks: Sequence[str], agents: Sequence[str], rows: Mapping[tuple[str, str], BenchRow]) -> str:
    """Test score (mean ± sd over seeds) per task, one bar per agent; ``rows`` by (task, agent)."""
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
