"""The ``ftdojo`` command line."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import structlog
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ftdojo._version import __version__
from ftdojo.models import DEFAULT_MODEL

app = typer.Typer(
    name="ftdojo",
    help="Autonomous LLM fine-tuning: run an agent on a task and score it on held-out data.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="FTDOJO_MODEL",
        help="Base model: 'smollm2-135m' (default), 'tiny' (fast, for tests), a folder or a HF id.",
    ),
]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="FTDOJO_HOME", help="Cache directory (default: $FTDOJO_HOME or ~/.cache/ftdojo)."
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", envvar="FTDOJO_THREADS", help="CPU threads per worker (default: all)."),
]


def _read_config(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    """``--config FILE.toml``: the file's keys become the command's defaults.

    Eager, so it runs before the other options are read: a flag on the command line or an
    ``FTDOJO_*`` variable still wins over the file (click reads the command line, then the
    environment, then these defaults). Keys are the options' long names (``time``,
    ``runs-dir`` or ``runs_dir``, ...) and ``task``, at the top level or in a table named
    after the command (``[run]``).
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # not installed on 3.11+

    if value is None or ctx.resilient_parsing:
        return value
    try:
        data = tomllib.loads(value.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {value}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{value} is not valid TOML: {exc}") from exc
    command = ctx.info_name or ""
    table = data.get(command, data) if isinstance(data.get(command), dict) else data
    names: dict[str, str] = {}
    for option in ctx.command.params:
        if option.name in (None, "config"):
            continue
        names[option.name] = option.name
        for flag in option.opts:
            if flag.startswith("--"):
                names[flag[2:].replace("-", "_")] = option.name
    defaults: dict[str, Any] = {}
    for key, item in table.items():
        if isinstance(item, dict):
            continue  # another command's table
        name = names.get(key.replace("-", "_"))
        if name is None:
            raise typer.BadParameter(f"{value}: unknown key {key!r}; known keys: {', '.join(sorted(names))}")
        defaults[name] = str(item) if isinstance(item, Path) else item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        is_eager=True,
        callback=_read_config,
        envvar="FTDOJO_CONFIG",
        help="A TOML file of option values (flags and FTDOJO_* variables win over it).",
    ),
]


@contextlib.contextmanager
def _cli_errors(prefix: str = "") -> Iterator[None]:
    """Turn an ftdojo error into one red line on stderr and exit status 2.

    An :class:`~ftdojo.FTDojoError` is something the user can fix (a setting, a task,
    a run directory), so it gets its message, not a traceback; anything else is a bug
    and keeps its traceback.
    """
    from ftdojo.errors import FTDojoError

    try:
        yield
    except FTDojoError as exc:
        err_console.print(f"[red]error:[/red] {prefix}{exc}")
        raise typer.Exit(2) from exc


def _version(value: bool) -> None:
    if value:
        console.print(f"ftdojo {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", envvar="FTDOJO_LOG_JSON", help="Logs as JSON lines on stderr.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="FTDOJO_LOG_LEVEL", help="debug, info, warning or error.")
    ] = "warning",
) -> None:
    from ftdojo.logs import configure_logging

    configure_logging(json=log_json, level=log_level)


@app.command("tasks")
def tasks_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the registered tasks: the built-in suite first, then hub datasets and plugins."""
    from ftdojo.errors import TaskSpecError
    from ftdojo.tasks.registry import SUITE, available_tasks, get_task_class

    rows: list[dict[str, str]] = []
    for name in [*SUITE, *(n for n in available_tasks() if n not in SUITE)]:
        group = "suite" if name in SUITE else "other"
        try:
            cls = get_task_class(name)
        except TaskSpecError as exc:  # a broken plugin must not hide the others
            rows.append({"task": name, "group": group, "domain": "?", "metric": "?", "description": str(exc)})
            continue
        group = getattr(cls, "GROUP", group)
        rows.append(
            {
                "task": name,
                "group": group,
                "domain": cls.domain,
                "metric": cls.metric,
                "description": cls.description,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    suite = [r for r in rows if r["group"] == "suite"]
    table = Table("task", "domain", "metric", "description", title="Built-in suite")
    for row in suite:
        table.add_row(row["task"], row["domain"], row["metric"], row["description"])
    console.print(table)
    console.print(f"{len(suite)} tasks in {len({r['domain'] for r in suite})} domains")
    others = [r for r in rows if r["group"] != "suite"]
    if others:
        table = Table("task", "group", "domain", "metric", "description", title="Other registered tasks")
        for row in others:
            table.add_row(row["task"], row["group"], row["domain"], row["metric"], row["description"])
        console.print(table)


class _Progress:
    """Live view of a run: trial, stage, step, loss, time left in the budget."""

    def __init__(self, max_seconds: float | None) -> None:
        self.started = time.monotonic()
        self.max_seconds = max_seconds
        self.trial = "-"
        self.stage = "preparing"
        self.step = ""
        self.loss = ""
        self.finished: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if "trial_id" in event:
            self.trial = str(event["trial_id"])
        if "stage" in event:
            self.stage = str(event["stage"])
        if kind == "loss":
            self.step = f"{event.get('step')}/{event.get('max_steps')}"
            self.loss = (
                f"{event.get('loss'):.4f}" if isinstance(event.get("loss"), float) else str(event.get("loss"))
            )
        elif kind == "progress" and event.get("step") == "generate":
            self.step = f"{event.get('done')}/{event.get('total')} prompts"
        elif kind == "trial_finished":
            score = event.get("score")
            outcome = f"{score:.3f}" if isinstance(score, float) else f"failed ({event.get('error_kind')})"
            self.finished.append(f"{event['trial_id']}: {outcome}")
            self.stage, self.step, self.loss = "planning", "", ""

    def __rich__(self) -> Text:
        elapsed = time.monotonic() - self.started
        left = f"{max(0.0, self.max_seconds - elapsed):.0f}s left" if self.max_seconds else ""
        loss = self.loss or "-"
        line = f"trial {self.trial} · {self.stage} · {self.step} · loss {loss} · {elapsed:.0f}s {left}"
        done = ("  done: " + ", ".join(self.finished[-6:])) if self.finished else ""
        return Text(line + ("\n" + done if done else ""))


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("run")
def run_command(
    task: Annotated[str, typer.Argument(help="Task name (see `ftdojo tasks`).")] = "math",
    model: ModelOption = DEFAULT_MODEL,
    # Defaults sized for a 2-core CPU and the 135M default model: two LoRA trials of a
    # few minutes each, so that a whole run with its baseline stays under 15 minutes.
    trials: Annotated[
        int, typer.Option("--trials", envvar="FTDOJO_TRIALS", help="Most trials the agent may run.")
    ] = 2,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time", envvar="FTDOJO_TIME", help="Wall-time budget of the agent's trials, in seconds."
        ),
    ] = 600.0,
    tokens: Annotated[
        int | None, typer.Option("--tokens", envvar="FTDOJO_TOKENS", help="Budget of trained tokens.")
    ] = None,
    runs_dir: Annotated[
        Path, typer.Option("--runs-dir", envvar="FTDOJO_RUNS_DIR", help="Where run directories go.")
    ] = Path("ftdojo-runs"),
    home: HomeOption = None,
    threads: ThreadsOption = None,
    baseline: Annotated[bool, typer.Option(help="Also score the untouched base model.")] = True,
    resume: Annotated[str | None, typer.Option("--resume", help="Run id to resume.")] = None,
    planner: Annotated[
        str,
        typer.Option(
            "--planner",
            envvar="FTDOJO_PLANNER",
            help="rule (no LLM), tpe (Optuna search), llm (an OpenAI endpoint from FTDOJO_LLM_*) "
            "or a planner from the ftdojo.planners entry points.",
        ),
    ] = "rule",
    seed: Annotated[
        int, typer.Option("--seed", envvar="FTDOJO_SEED", help="Seed of the plans (data sampling, training).")
    ] = 0,
    llm_rationales: Annotated[
        int,
        typer.Option(
            "--llm-rationales",
            help="With --planner llm: most requests for rationales of answer-only records (0: none).",
        ),
    ] = 0,
    strict_isolation: Annotated[
        bool,
        typer.Option(
            "--strict-isolation",
            help="Refuse to run without network namespace, filesystem view and pid namespace.",
        ),
    ] = False,
    mlflow: Annotated[
        str | None,
        typer.Option(
            "--mlflow",
            envvar="FTDOJO_MLFLOW",
            help="When the run ends, log it and each trial (nested) to this MLflow tracking URI, "
            "e.g. sqlite:///mlflow.db (needs ftdojo[mlflow]).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run FT-Agent on TASK and print its trials and held-out score."""
    from ftdojo import Budget, Dojo, FTAgent

    chosen = _make_planner(planner, seed, llm_rationales)

    progress = _Progress(time_limit)
    dojo = Dojo(
        home=home,
        runs_dir=runs_dir,
        model=model,
        threads=threads,
        on_event=progress,
        strict_isolation=strict_isolation,
    )
    budget = Budget(max_trials=trials, max_seconds=time_limit, max_train_tokens=tokens)

    async def main() -> Any:
        return await dojo.run(
            task, FTAgent(planner=chosen, seed=seed), budget=budget, run_id=resume, with_baseline=baseline
        )

    with _cli_errors(), Live(progress, console=err_console, refresh_per_second=4, transient=True):
        result = anyio.run(main)

    table = Table(
        "trial", "parent", "focus", "status", "validation", "train loss", "seconds", title=f"{task} · {model}"
    )
    for trial in result.trials:
        fb = trial.feedback
        status = (
            "ok" if fb.ok else f"{fb.execution.error_kind.value if fb.execution.error_kind else 'failed'}"
        )
        loss = fb.training.final_loss if fb.training else None
        marker = " *" if trial.trial_id == result.final_trial_id else ""
        table.add_row(
            trial.trial_id + marker,
            trial.plan.parent or "-",
            trial.plan.focus,
            status,
            _score(fb.score),
            "-" if loss is None else f"{loss:.4f}",
            f"{fb.execution.duration_s:.0f}",
        )
    console.print(table)
    if result.baseline is not None:
        console.print(
            f"base model:  validation {_score(result.baseline.validation_score)}  "
            f"test {_score(result.baseline.test_score)}"
        )
    console.print(
        f"final model: {result.final_trial_id or 'none'}  validation {_score(result.validation_score)}  "
        f"test {_score(result.test_score)}"
    )
    console.print(
        f"stopped: {result.stop_reason}; used {result.usage.trials} trials, {result.usage.seconds:.0f}s"
    )
    if result.isolation is not None:
        console.print(f"isolation: {result.isolation.describe()}")
    if result.contamination is not None and not result.contamination.problem:
        audit = result.contamination
        raw = f"; the raw data alone: {audit.raw_rate:.0%}" if audit.raw_rate is not None else ""
        flag = "  [red]FLAGGED[/red]" if audit.flagged else ""
        near = f", {audit.near_duplicates} of them edited copies" if audit.near_duplicates else ""
        method = f"{audit.n}-grams" + (
            f" and near-duplicates of {audit.near_n}-word shingles" if audit.near_n else ""
        )
        console.print(
            f"contamination: {audit.overlapping_items}/{audit.test_items} test items overlap"
            f" the training data{near} ({method}{raw}){flag}"
        )
    for violation in result.violations:
        console.print(
            f"[red]violation[/red] in {violation.trial_id}: {violation.kind}: {violation.detail[:160]}"
        )
    console.print(f"run directory: {result.run_dir}")
    report = Path(result.run_dir) / "report.html"
    if report.is_file():
        console.print(f"report: {report}")
    if mlflow:
        from ftdojo.integrations.mlflow import log_run_to_mlflow

        # The run is on disk whatever happens here; `ftdojo mlflow RUN_DIR` logs it later.
        with _cli_errors("not logged to MLflow: "):
            parent = log_run_to_mlflow(result.run_dir, tracking_uri=mlflow)
        console.print(f"MLflow: parent run {parent} in {mlflow}")


@app.command("resume")
def resume_command(
    run_dir: Annotated[Path, typer.Argument(help="The run's directory (holding journal.jsonl).")],
    home: HomeOption = None,
    threads: ThreadsOption = None,
    planner: Annotated[str, typer.Option("--planner", help="rule, tpe or llm (as the run used).")] = "rule",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the plans (as the run used).")] = 0,
    baseline: Annotated[bool, typer.Option(help="Also score the untouched base model.")] = False,
) -> None:
    """Continue a killed or finished run with FT-Agent: its finished trials are kept."""
    from ftdojo import Dojo, FTAgent

    chosen = _make_planner(planner, seed, 0)
    run_dir = run_dir.expanduser().resolve()
    with _cli_errors():
        dojo = Dojo(home=home, runs_dir=run_dir.parent, threads=threads)
        result = anyio.run(
            functools.partial(
                dojo.resume, run_dir, FTAgent(planner=chosen, seed=seed), with_baseline=baseline
            )
        )
    console.print(
        f"{result.run_id}: {len(result.trials)} trials; final {result.final_trial_id or 'none'}  "
        f"validation {_score(result.validation_score)}  test {_score(result.test_score)}"
    )
    console.print(f"stopped: {result.stop_reason}")


@app.command("baseline")
def baseline_command(
    task: Annotated[str, typer.Argument(help="Task name.")] = "math",
    model: ModelOption = DEFAULT_MODEL,
    home: HomeOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Score the untouched base model on the validation and test splits."""
    from ftdojo import Dojo

    dojo = Dojo(home=home, model=model, threads=threads)
    with _cli_errors():
        result = anyio.run(dojo.baseline, task)
    console.print(
        f"{result.task} · {result.model}: validation {_score(result.validation_score)}  "
        f"test {_score(result.test_score)}"
    )


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command("bench")
def bench_command(
    tasks: Annotated[
        str, typer.Option("--tasks", help="Comma-separated task names (default: the 13 suite tasks).")
    ] = "",
    agents: Annotated[
        str,
        typer.Option(
            "--agents",
            help="Comma-separated: ft-agent, naive, random, tpe, llm, or package.module:factory "
            "(called with seed=; run in untrusted mode).",
        ),
    ] = "ft-agent,naive,random",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1,2",
    out: Annotated[
        Path, typer.Option("--out", help="Benchmark folder: cells, table and runs (resumed if present).")
    ] = Path("ftdojo-bench"),
    model: ModelOption = DEFAULT_MODEL,
    trials: Annotated[int, typer.Option("--trials", help="Most trials per run.")] = 3,
    time_limit: Annotated[
        float, typer.Option("--time", help="Wall-time budget per run, in seconds.")
    ] = 1800.0,
    tokens: Annotated[int | None, typer.Option("--tokens", help="Trained-token budget per run.")] = None,
    base: Annotated[bool, typer.Option(help="Also score the untouched base model per task.")] = True,
    home: HomeOption = None,
    threads: ThreadsOption = None,
    unsafe_without_filesystem_view: Annotated[
        bool,
        typer.Option(
            "--unsafe-without-filesystem-view",
            help="Run package.module:factory agents even where their process gets no filesystem "
            "view (no bubblewrap): they can then read every file you can.",
        ),
    ] = False,
) -> None:
    """Run every agent on every task for every seed with equal budgets, and print the table."""
    from ftdojo import Budget, Dojo
    from ftdojo.bench import builtin_agents, run_bench
    from ftdojo.report import write_bench_report
    from ftdojo.tasks.registry import SUITE

    known: dict[str, Any] = dict(builtin_agents())
    chosen = _names(agents)
    for name in chosen:
        if ":" in name and name not in known:
            # An agent ftdojo did not ship runs in untrusted mode: a sandboxed process of its own.

            known[name] = functools.partial(
                _untrusted_factory, name, unsafe_without_filesystem_view=unsafe_without_filesystem_view
            )
    unknown = [a for a in chosen if a not in known]
    if unknown:
        err_console.print(f"[red]error:[/red] unknown agent(s) {unknown}; known: {sorted(known)}")
        raise typer.Exit(2)
    try:
        seed_list = [int(s) for s in _names(seeds)]
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --seeds must be integers, got {seeds!r}")
        raise typer.Exit(2) from exc
    dojo = Dojo(home=home, runs_dir=out / "runs", model=model, threads=threads)
    budget = Budget(max_trials=trials, max_seconds=time_limit, max_train_tokens=tokens)

    def report(cell: Any) -> None:
        score = (
            "failed: " + cell.error
            if cell.error
            else f"val {_score(cell.validation)} test {_score(cell.test)}"
        )
        err_console.print(f"{cell.task} · {cell.agent} · seed {cell.seed}: {score} ({cell.seconds:.0f}s)")

    async def main() -> Any:
        return await run_bench(
            dojo,
            tasks=_names(tasks) or list(SUITE),
            agents={name: known[name] for name in chosen},
            seeds=seed_list,
            budget=budget,
            out_dir=out,
            model=model,
            with_base=base,
            on_cell=report,
        )

    with _cli_errors():
        result = anyio.run(main)
    try:
        write_bench_report(out)
    except Exception as exc:  # the HTML page is a convenience: the table is already written
        structlog.get_logger("ftdojo").warning("benchmark report not written", error=repr(exc))
    console.print(result.to_markdown(), markup=False)
    console.print(f"table: {out / 'bench.md'}  data: {out / 'bench.json'}")


@app.command("report")
def report_command(
    path: Annotated[
        Path,
        typer.Argument(help="A run directory (holding journal.jsonl) or a benchmark folder (bench.json)."),
    ],
) -> None:
    """Write the HTML report of a run or a benchmark again, and print its path."""
    from ftdojo.report import write_report

    with _cli_errors():
        written = write_report(path.expanduser())
    typer.echo(str(written))


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="The run's directory (holding journal.jsonl).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write (default: RUN_DIR/export or export-merged).")
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge a LoRA adapter into the base model: a standalone folder.")
    ] = False,
    trial: Annotated[
        str | None, typer.Option("--trial", help="Export this trial instead of the run's final one.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    home: HomeOption = None,
) -> None:
    """Export the final trial's adapter (or, with --merge, a merged model) with a model card."""
    from ftdojo.export import export_run

    with _cli_errors():
        path = export_run(run_dir, out, merge=merge, trial_id=trial, home=home, overwrite=force)
    console.print(f"exported to {path} (model card: {path / 'README.md'})")


@app.command("mlflow")
def mlflow_command(
    run_dir: Annotated[Path, typer.Argument(help="The run's directory (holding journal.jsonl).")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI, e.g. sqlite:///mlflow.db (default: $MLFLOW_TRACKING_URI).",
        ),
    ] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")] = "ftdojo",
    all_models: Annotated[
        bool, typer.Option("--all-models", help="Log every successful trial's model, not only the final one.")
    ] = False,
    artifact_location: Annotated[
        str | None,
        typer.Option(
            "--artifact-location",
            help="Where a new experiment stores artifacts (default: MLflow's, ./mlruns).",
        ),
    ] = None,
) -> None:
    """Log a run to MLflow: a parent run, and one nested run per trial (needs ftdojo[mlflow])."""
    from ftdojo.integrations.mlflow import log_run_to_mlflow

    with _cli_errors():
        run_id = log_run_to_mlflow(
            run_dir,
            tracking_uri=tracking_uri,
            experiment=experiment,
            all_models=all_models,
            artifact_location=artifact_location,
        )
    console.print(f"logged {run_dir} to MLflow experiment {experiment!r}: parent run {run_id}")


def _make_planner(name: str, seed: int, llm_rationales: int) -> Any:
    """The planner ``--planner NAME`` asks for; exits with a clear error for an unknown one."""
    from ftdojo.agent.registry import PlannerOptions, make_planner

    with _cli_errors():
        return make_planner(name, PlannerOptions(seed=seed, synthesize_rationales=llm_rationales))


def _untrusted_factory(entry: str, seed: int, *, unsafe_without_filesystem_view: bool = False) -> Any:
    from ftdojo.sandbox.untrusted import UntrustedAgent

    return UntrustedAgent(
        entry,
        kwargs={"seed": seed},
        python_path=[Path.cwd()],
        unsafe_without_filesystem_view=unsafe_without_filesystem_view,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
