"""The HTML reports: plan diffs, a real run's page, killed and old journals, the browser."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ftdojo import Budget, DataRecipe, Dojo, JournalError, Plan, RunResult, SourceSelection, TrainConfig
from ftdojo.cli import app
from ftdojo.plans import FieldChange, plan_diff
from ftdojo.report import write_report, write_run_report
from ftdojo.serialization import unstructure

BENCH_TINY = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench-tiny"
SCRIPT = "<script>alert('hypothesis')</script>"
CRASH = "def transform(record):\n    raise RuntimeError('recipe bug: no such field')\n"
SMALL = TrainConfig(method="full", learning_rate=1e-3, max_steps=3, batch_size=8, max_length=256)


def _plan(**changes: Any) -> Plan:
    plan = Plan(
        data=DataRecipe(sources=[SourceSelection(source="worked_solutions")], max_records=48),
        train=SMALL,
        hypothesis="start small",
        focus="both",
    )
    return attrs.evolve(plan, **changes)


# -- the plan diff ------------------------------------------------------------------------


def test_plan_diff_names_each_changed_field_in_declared_order() -> None:
    parent = _plan()
    child = _plan(
        data=attrs.evolve(parent.data, max_records=40, transform_code=CRASH),
        train=attrs.evolve(parent.train, learning_rate=2e-3),
        hypothesis="other prose",
        parent="t001",
    )
    changes = plan_diff(parent, child)
    assert changes == [
        FieldChange(field="data.max_records", before=48, after=40),
        FieldChange(field="data.transform_code", before=None, after=CRASH),
        FieldChange(field="train.learning_rate", before=1e-3, after=2e-3),
    ]
    assert [c.describe() for c in changes] == [
        "data.max_records: 48 → 40",
        "data.transform_code: none → def transform(record): … (2 lines)",
        "train.learning_rate: 0.001 → 0.002",
    ]
    sources = plan_diff(parent, _plan(data=DataRecipe(sources=[SourceSelection(source="a", max_records=5)])))
    assert sources[0].describe() == "data.sources: worked_solutions → a (≤5)"


def test_plan_diff_reads_journal_data_and_fills_fields_an_old_version_lacked() -> None:
    parent = unstructure(_plan())
    del parent["data"]["stratify"], parent["train"]["precision"]  # fields a later version added
    assert plan_diff(parent, _plan()) == []
    # A plan this version cannot read is compared as it stands, unknown fields included.
    odd = unstructure(_plan())
    odd["train"]["future_knob"] = 3
    assert plan_diff(_plan(), odd) == [FieldChange(field="train.future_knob", before=None, after=3)]


names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
recipes = st.builds(
    DataRecipe,
    sources=st.lists(
        st.builds(SourceSelection, source=names, max_records=st.none() | st.integers(1, 50)),
        min_size=1,
        max_size=3,
        unique_by=lambda s: s.source,
    ),
    dedupe=st.booleans(),
    verified_only=st.booleans(),
    template=st.sampled_from(["auto", "chat", "plain"]),
    max_records=st.integers(1, 5),
    transform_code=st.none() | st.sampled_from(["a", "b\nc"]),
)
configs = st.builds(
    TrainConfig,
    method=st.sampled_from(["full", "lora"]),
    lora_rank=st.integers(1, 3),
    learning_rate=st.sampled_from([1e-4, 2e-4, 1e-3]),
    max_steps=st.none() | st.integers(1, 3),
    batch_size=st.integers(1, 3),
    lora_targets=st.sampled_from([("all-linear",), ("q_proj", "v_proj")]),
)
plans = st.builds(Plan, data=recipes, train=configs, hypothesis=st.text(max_size=10))


@given(plans, plans)
def test_plan_diff_lists_exactly_the_fields_that_differ(a: Plan, b: Plan) -> None:
    assert plan_diff(a, a) == []
    expected = [
        f"{section}.{field.name}"
        for section in ("data", "train")
        for field in attrs.fields(type(getattr(a, section)))
        if getattr(getattr(a, section), field.name) != getattr(getattr(b, section), field.name)
    ]
    changes = plan_diff(a, b)
    assert [c.field for c in changes] == expected
    before, after = unstructure(a), unstructure(b)
    for change in changes:
        section, name = change.field.split(".")
        assert (change.before, change.after) == (before[section][name], after[section][name])


# -- a real run ------------------------------------------------------------------------------


class _DiagnosingAgent:
    """Submits scripted plans and journals the reference analyzer's diagnosis of each,
    as FT-Agent does; also records one rejected plan and a note with markup in it."""

    def __init__(self, plans: list[Plan], rejected: Plan) -> None:
        self.plans = plans
        self.rejected = rejected

    async def run(self, session: Any) -> None:
        from ftdojo.agent.analyzer import RuleAnalyzer

        analyzer = RuleAnalyzer()
        session.record_rejection(
            self.rejected, ["<b>too long</b> for the budget"], seconds=0.5, projected_seconds=900.0
        )
        for plan in self.plans:
            feedback = await session.submit(plan)
            trial = next(t for t in session.history if t.trial_id == feedback.trial_id)
            parent = next((t for t in session.history if t.trial_id == plan.parent), None)
            session.annotate(trial.trial_id, "diagnosis", unstructure(analyzer.analyze(trial, parent)))
        session.annotate("t001", "note", "<script>alert('note')</script>")


@pytest.fixture(scope="module")
def finished_run(ftdojo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    first = _plan(hypothesis=f"start small {SCRIPT}")
    second = _plan(
        parent="t001",
        focus="training",
        hypothesis="a higher learning rate on fewer records",
        data=attrs.evolve(first.data, max_records=40),
        train=attrs.evolve(SMALL, learning_rate=2e-3),
    )
    broken = _plan(parent="t002", focus="data", data=attrs.evolve(first.data, transform_code=CRASH))
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path_factory.mktemp("runs"), model="tiny", threads=2)
    agent = _DiagnosingAgent([first, second, broken], rejected=_plan(hypothesis="rejected <plan>"))
    return dojo.run_sync("math", agent, budget=Budget(max_trials=3, max_seconds=900), with_baseline=True)


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_the_dojo_writes_the_report_of_a_run(finished_run: RunResult) -> None:
    from PIL import Image

    run_dir = Path(finished_run.run_dir)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert [t.trial_id for t in finished_run.trials] == ["t001", "t002", "t003"]
    assert finished_run.trials[2].feedback.execution.error_kind is not None
    for trial_id in ("t001", "t002", "t003"):
        assert f"id='trial-{trial_id}'" in page
    # The tree: t002 under t001, t003 under t002, each with its changes from its parent.
    tree = page[page.index("Tree of trials") : page.index("Loss curves")]
    assert tree.index("t001") < tree.index("t002") < tree.index("t003")
    assert tree.count("<ul>") >= 2
    assert "data.max_records: 48 → 40" in tree
    assert "train.learning_rate: 0.001 → 0.002" in tree
    assert html.escape("data.transform_code: none → def transform(record): … (2 lines)") in tree
    # Agent text is escaped, never live markup.
    assert SCRIPT not in page
    assert "<script" not in page
    assert html.escape(SCRIPT) in page
    assert html.escape("<script>alert('note')</script>") in page
    assert "&lt;b&gt;too long&lt;/b&gt; for the budget" in page
    # The header: final model, its test score, the base model, the budget.
    assert finished_run.test_score is not None
    assert finished_run.baseline is not None
    assert f"test {finished_run.test_score:.3f}" in page
    assert f"validation {finished_run.baseline.validation_score:.3f}" in page
    assert "3 trials, 900 s" in page
    assert "finished: " in page
    # The failure, the data built and the diagnoses.
    assert "recipe bug: no such field" in page
    assert "DATA in build" in page
    assert "worked_solutions" in page
    assert "dedupe" in page
    assert "length_filter" in page
    for trial in finished_run.trials:
        diagnosis = finished_run.annotations[trial.trial_id]["diagnosis"]
        for finding in diagnosis["findings"]:
            assert html.escape(finding["evidence"]) in page
    # Three charts (scores, losses, data), each a PNG that decodes.
    images = _images(page)
    assert len(images) == 3
    for data in images:
        image = Image.open(io.BytesIO(data))
        image.verify()
        assert image.format == "PNG"
        assert image.size[0] > 100
        assert image.size[1] > 100
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"(src|href)=['\"](https?:)?//", page)


def test_ftdojo_report_regenerates_the_page(finished_run: RunResult) -> None:
    run_dir = Path(finished_run.run_dir)
    (run_dir / "report.html").unlink()
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run_dir / "report.html")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "id='trial-t003'" in page
    print(f"report of a 3-trial run: {seconds:.2f} s, {len(page.encode()) / 1024:.0f} KB")


def _copy_run(run: RunResult, tmp_path: Path) -> Path:
    target = tmp_path / Path(run.run_dir).name
    target.mkdir()
    shutil.copy(Path(run.run_dir) / "journal.jsonl", target / "journal.jsonl")
    return target


def test_the_report_of_a_killed_run(finished_run: RunResult, tmp_path: Path) -> None:
    run_dir = _copy_run(finished_run, tmp_path)
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    # Killed after the second trial: nothing after it, and a record torn mid-write.
    second = next(i for i, line in enumerate(lines) if '"kind": "trial"' in line and '"t002"' in line)
    (run_dir / "journal.jsonl").write_text("\n".join(lines[: second + 1]) + '\n{"kind": "trial", "tri')
    page = write_run_report(run_dir).read_text(encoding="utf-8")
    assert "not finished" in page
    assert "id='trial-t002'" in page
    assert "id='trial-t003'" not in page
    assert "final model</dt><dd>none" in page
    assert len(_images(page)) == 3


def test_the_report_of_a_journal_from_an_older_version(finished_run: RunResult, tmp_path: Path) -> None:
    run_dir = _copy_run(finished_run, tmp_path)
    old = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        # Fields later versions added: isolation, launch, tokens, the contamination audit.
        record.pop("isolation", None)
        record.pop("tokens_total", None)
        if record["kind"] == "trial":
            record["trial"]["feedback"]["execution"].pop("launch", None)
            record["trial"]["plan"]["data"].pop("stratify", None)
        if record["kind"] in ("contamination", "rejection", "annotation"):
            continue
        if record["kind"] == "run_finished":
            record["result"] = {
                k: record["result"][k] for k in ("run_id", "task", "test_score", "stop_reason")
            }
        old.append(json.dumps(record))
    (run_dir / "journal.jsonl").write_text("\n".join(old) + "\n")
    page = write_run_report(run_dir).read_text(encoding="utf-8")
    assert "id='trial-t003'" in page
    assert "isolation</dt><dd>not recorded" in page
    assert "No diagnosis journalled" in page
    # The added field is filled with its default, not shown as a change.
    assert "data.stratify" not in page


def test_a_missing_or_corrupt_journal_is_a_typed_error(finished_run: RunResult, tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=re.escape(str(tmp_path / "journal.jsonl"))):
        write_run_report(tmp_path)
    run_dir = _copy_run(finished_run, tmp_path)
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]
    (run_dir / "journal.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match=r"journal.jsonl, line 3"):
        write_run_report(run_dir)
    (run_dir / "journal.jsonl").write_bytes(b"\xff\xfe\n{}\n")
    with pytest.raises(JournalError, match=r"journal\.jsonl"):
        write_run_report(run_dir)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "neither a run directory" in result.output
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "bench.json").write_text("{not json")
    with pytest.raises(JournalError, match=r"bench\.json"):
        write_report(tmp_path / "bench")


def test_a_report_failure_never_costs_the_run(
    ftdojo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ftdojo.report

    def broken(run_dir: Path) -> Path:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ftdojo.report, "write_run_report", broken)
    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny", threads=2)
    from ftdojo.testing import ScriptedAgent

    result = dojo.run_sync(
        "math",
        ScriptedAgent([_plan(data=attrs.evolve(_plan().data, transform_code=CRASH))]),
        budget=Budget(max_trials=1),
    )
    assert len(result.trials) == 1
    run_dir = Path(result.run_dir)
    assert '"kind": "run_finished"' in (run_dir / "journal.jsonl").read_text()
    assert (run_dir / "result.json").is_file()
    assert not (run_dir / "report.html").exists()


def test_the_benchmark_report(tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench-tiny"
    shutil.copytree(BENCH_TINY, bench_dir)
    run = bench_dir / "runs" / "bench-math-naive-s0"
    run.mkdir(parents=True)
    (run / "report.html").write_text("<!DOCTYPE html><title>run</title>")
    path = write_report(bench_dir)
    page = path.read_text(encoding="utf-8")
    bench = json.loads((bench_dir / "bench.json").read_text())
    for task in bench["tasks"]:
        assert f"<td>{task}</td>" in page
    # The same bold cells as bench.md: the best test mean per task.
    markdown = (bench_dir / "bench.md").read_text()
    assert page.count("<b>") == markdown.count("**") // 2
    assert "<b>0.110 ± 0.018</b>" in page
    assert "href='runs/bench-math-naive-s0/report.html'" in page
    assert len(_images(page)) == 1


# -- in a browser -------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _open_in_browser(pages: list[Path]) -> list[dict[str, Any]]:
    """Each page in headless Chromium: its console errors, page errors and images."""
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium binary on PATH (apt-get install chromium; .ci/run does)")
    # Not skipped when missing: playwright is in the test extra.
    from playwright import sync_api

    seen = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            # No sandbox: CI runs as root, where Chromium's own sandbox refuses to start;
            # /dev/shm of a container is often too small for it.
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            for path in pages:
                page = browser.new_page()
                errors: list[str] = []
                page.on(
                    "console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None
                )
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                failed: list[str] = []
                page.on("requestfailed", lambda r, failed=failed: failed.append(r.url[:80]))
                page.goto(path.as_uri(), wait_until="load")
                # Every image drawn on a canvas: a truncated PNG still reports its full
                # size from its header, but the rows it lacks stay transparent, whereas a
                # chart's background is opaque white.
                images = page.evaluate(
                    """async () => Promise.all([...document.querySelectorAll('img, svg')].map(async e => {
                        const box = e.getBoundingClientRect();
                        if (e.tagName !== 'IMG') return {tag: e.tagName, box: [box.width, box.height],
                                                         natural: [box.width, box.height], painted: 1};
                        await e.decode();
                        const canvas = document.createElement('canvas');
                        canvas.width = e.naturalWidth; canvas.height = e.naturalHeight;
                        const context = canvas.getContext('2d');
                        context.drawImage(e, 0, 0);
                        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
                        let opaque = 0;
                        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) opaque++;
                        return {tag: e.tagName, box: [box.width, box.height],
                                natural: [e.naturalWidth, e.naturalHeight],
                                painted: opaque / Math.max(1, pixels.length / 4)};
                    }))"""
                )
                seen.append(
                    {
                        "errors": errors,
                        "failed": failed,
                        "images": images,
                        "title": page.title(),
                        "text": page.inner_text("body"),
                    }
                )
                page.close()
        finally:
            browser.close()
    return seen


def test_the_reports_render_in_a_browser(finished_run: RunResult, tmp_path: Path) -> None:
    bench_dir = tmp_path / "bench-tiny"
    shutil.copytree(BENCH_TINY, bench_dir)
    result = CliRunner().invoke(app, ["report", str(bench_dir)])
    assert result.exit_code == 0, result.output
    run_page = Path(finished_run.run_dir) / "report.html"
    started = time.perf_counter()
    run_view, bench_view = _open_in_browser([run_page, Path(result.output.strip())])
    print(f"browser check of two reports: {time.perf_counter() - started:.2f} s")
    for view, count in ((run_view, 3), (bench_view, 1)):
        assert view["errors"] == []
        assert view["failed"] == []
        assert len(view["images"]) == count
        for image in view["images"]:
            assert image["painted"] == 1.0
            assert image["natural"][0] > 100
            assert image["natural"][1] > 100
            assert image["box"][0] > 100
            assert image["box"][1] > 50
    assert run_view["title"] == f"ftdojo run {finished_run.run_id}"
    assert SCRIPT in run_view["text"]  # shown as text, not run
    assert "t003" in run_view["text"]
    assert "recipe bug" in run_view["text"]
    assert bench_view["title"] == "ftdojo benchmark bench-tiny"
    assert "0.110 ± 0.018" in bench_view["text"]
