"""The table-visualisation task, its sandboxed chart executor and the chart_pass_at_1 metric."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.errors import DataError
from ftdojo.metrics import load_metric
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.sandbox.isolation import network_isolation_prefix
from ftdojo.scoring.charts import (
    CHART_KINDS,
    ChartElement,
    ChartExecutor,
    ChartReference,
    SnippetRun,
    chart_item_scores,
    chart_verdicts,
    check_chart,
)
from ftdojo.tasks.charts import (
    INSTRUCTION,
    TableVisualization,
    canonical_code,
    format_prompt,
    parse_request,
    table_identity,
)
from ftdojo.tasks.registry import get_task, get_task_class, task_reference
from ftdojo.tasks.spec import normalize_text

SOURCE_IDS = ("curated_snippets", "forum_scrape", "notebook_cells", "pandas_plot", "code_help")
CHART_SOURCES = ("curated_snippets", "forum_scrape", "notebook_cells", "pandas_plot")
TABLE = "Symbol,Mass\nNa,22.99\nMg,24.305\nAl,26.982"
BAR = "df = pd.read_csv('table.csv')\nplt.bar(df['Symbol'], df['Mass'])"


def ref(kind: str = "bar", table: str = TABLE, x: str = "Symbol", y: str = "Mass") -> str:
    return ChartReference(csv=table, kind=kind, x=x, y=y).to_json()


def small(seed: int = 0) -> TableVisualization:
    return TableVisualization(
        seed,
        curated_snippets=40,
        forum_scrape=60,
        notebook_cells=20,
        pandas_plot=25,
        code_help=20,
        validation_size=25,
        test_size=25,
    )


def prompt_of(task: TableVisualization, record: dict[str, Any]) -> str:
    example = task.to_example(record, include_rationale=False)
    assert example is not None
    return example.prompt


def response_of(task: TableVisualization, record: dict[str, Any]) -> str:
    example = task.to_example(record, include_rationale=False)
    assert example is not None
    return example.response


@pytest.fixture(scope="module")
def task() -> TableVisualization:
    return TableVisualization()


@pytest.fixture(scope="module")
def executor() -> Any:
    with ChartExecutor(timeout_s=2.0) as ex:
        yield ex


# -- the class as the registry sees it -------------------------------------------------------


def test_class_attributes_and_registry() -> None:
    assert get_task_class("table_visualization") is TableVisualization
    task = get_task("table_visualization", seed=3, curated_snippets=10, forum_scrape=10)
    assert isinstance(task, TableVisualization)
    assert task.domain == "table_qa"
    assert task.metric == "chart_pass_at_1"
    assert task.categories == CHART_KINDS
    assert task.stop_strings == (")\n```",)
    clone = get_task("table_visualization", **task_reference(task)["params"])
    assert clone.raw_sources() == task.raw_sources()
    assert clone.eval_splits() == task.eval_splits()


# -- determinism, splits, disjointness -------------------------------------------------------


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    a, b, c = small(7), small(7), small(8)
    assert a.raw_sources() == b.raw_sources()
    assert a.eval_splits() == b.eval_splits()
    assert a.version() == b.version()
    for src_a, src_c in zip(a.raw_sources(), c.raw_sources(), strict=True):
        assert src_a.records != src_c.records
    assert a.eval_splits() != c.eval_splits()
    assert a.version() != c.version()


def test_sources_sizes_formats_and_quality(task: TableVisualization) -> None:
    sources = {s.source_id: s for s in task.raw_sources()}
    assert tuple(sources) == SOURCE_IDS
    for sid in SOURCE_IDS:
        assert len(sources[sid].records) == task.sizes[sid]
        assert sid in task.quality
    assert {s.format for s in sources.values()} >= {"jsonl", "csv", "markdown"}
    assert task.quality["code_help"].off_domain
    assert task.quality["curated_snippets"].has_rationale
    assert 0.3 <= task.quality["forum_scrape"].wrong_label_rate <= 0.4
    # Notes tell what a look shows, never the exact rates.
    for source in sources.values():
        assert not re.search(r"\d+(\.\d+)?\s*%", source.note)


def test_splits_are_balanced_and_disjoint(task: TableVisualization) -> None:
    validation, test = task.eval_splits()
    assert len(validation) == len(test) == 100
    for split in (validation, test):
        assert Counter(item.category for item in split) == dict.fromkeys(CHART_KINDS, 20)
    val_prompts = {normalize_text(i.prompt) for i in validation}
    test_prompts = {normalize_text(i.prompt) for i in test}
    assert not val_prompts & test_prompts
    raw_prompts = {
        normalize_text(e.prompt)
        for s in task.raw_sources()
        for r in s.records
        if (e := task.to_example(r, include_rationale=False)) is not None
    }
    assert not (val_prompts | test_prompts) & raw_prompts


def test_evaluation_tables_never_appear_in_any_raw_source(task: TableVisualization) -> None:
    validation, test = task.eval_splits()
    val_tables = {table_identity(ChartReference.from_json(i.reference).csv) for i in validation}
    test_tables = {table_identity(ChartReference.from_json(i.reference).csv) for i in test}
    assert len(val_tables) == len(validation)
    assert len(test_tables) == len(test)
    assert not val_tables & test_tables
    raw_tables = {table_identity(r["table"]) for s in task.raw_sources() for r in s.records}
    assert not (val_tables | test_tables) & raw_tables


def test_table_identity_ignores_row_order_case_and_spacing() -> None:
    assert table_identity("A,B\nx,1\ny,2") == table_identity(" a, b\nY ,2\nx,1\n")
    assert table_identity("A,B\nx,1\ny,2") != table_identity("A,B\nx,1\ny,3")
    assert table_identity("A,B\nx,1") != table_identity("A,C\nx,1")


def test_prompts_and_responses_fit_the_tiny_model(task: TableVisualization) -> None:
    validation, test = task.eval_splits()
    for item in [*validation, *test]:
        assert len(item.prompt) <= 300
        assert item.prompt.endswith(INSTRUCTION)
        assert item.prompt.startswith("table.csv:\n")
    sources = {s.source_id: s for s in task.raw_sources()}
    for record in sources["curated_snippets"].records:
        example = task.to_example(record, include_rationale=True)
        assert example is not None
        assert len(example.prompt) <= 300
        assert len(example.response) <= 120
        assert example.response.endswith(")\n```")  # the stop string closes every taught answer
    # The verbose cells really are too long for the generation budget.
    lengths = [len(response_of(task, r)) for r in sources["notebook_cells"].records]
    assert min(lengths) > 140
    assert max(lengths) > task.max_new_tokens


def test_every_source_round_trips_through_its_file_format(task: TableVisualization) -> None:
    for source in task.raw_sources():
        data = dump_records(list(source.records), source.format, where=source.source_id)
        back = parse_records(data, source.format, where=source.source_id)
        assert len(back) == len(source.records)
        for original, parsed in zip(source.records, back, strict=True):
            for rationale in (True, False):
                assert task.to_example(parsed, include_rationale=rationale) == task.to_example(
                    original, include_rationale=rationale
                )


def test_near_duplicates_normalise_to_an_existing_prompt(task: TableVisualization) -> None:
    forum = next(s for s in task.raw_sources() if s.source_id == "forum_scrape")
    prompts = [normalize_text(prompt_of(task, r)) for r in forum.records]
    exact = Counter((r["table"], r["request"], r["code"]) for r in forum.records)
    assert sum(n - 1 for n in exact.values()) >= task.quality["forum_scrape"].exact_duplicates
    assert len(prompts) - len(set(prompts)) >= (
        task.quality["forum_scrape"].exact_duplicates + task.quality["forum_scrape"].near_duplicates
    )


# -- requests, examples and answers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("Draw a bar chart of Mass by Symbol.", ("bar", "Symbol", "Mass")),
        ("draw a horizontal bar chart of Sales by Country", ("horizontal_bar", "Country", "Sales")),
        ("Draw  a line chart of Score by Code.\n", ("line", "Code", "Score")),
        ("Plot Mass by Number as a scatter plot.", ("scatter", "Number", "Mass")),
        ("PLOT Sales by Country as a pie chart!", ("pie", "Country", "Sales")),
        ("What is the mean of Mass?", None),
        ("Draw a bar chart of Mass.", None),
        ("", None),
    ],
)
def test_parse_request(request_text: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_request(request_text) == expected


def test_to_example_fences_code_once_and_adds_the_comment_on_request(task: TableVisualization) -> None:
    record = {"table": TABLE, "request": "Draw a bar chart of Mass by Symbol.", "code": BAR, "comment": "# c"}
    with_comment = task.to_example(record, include_rationale=True)
    without = task.to_example(record, include_rationale=False)
    assert with_comment is not None
    assert without is not None
    assert with_comment.prompt == without.prompt == format_prompt(TABLE, record["request"])
    assert without.response == f"```python\n{BAR}\n```"
    assert with_comment.response == f"```python\n# c\n{BAR}\n```"
    fenced = task.to_example({**record, "code": f"```python\n{BAR}\n```"}, include_rationale=False)
    assert fenced == without
    assert task.to_example({**record, "code": "  "}, include_rationale=False) is None
    with pytest.raises(DataError, match="'code'"):
        task.to_example({"table": TABLE, "request": "x"}, include_rationale=False)
    with pytest.raises(DataError, match="'table'"):
        task.to_example({**record, "table": 3}, include_rationale=False)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (f"```python\n{BAR}\n```", BAR),
        (f"Here you go:\n```python\n{BAR}\n```\nDone.", BAR),
        (f"```py\n{BAR}\n```", BAR),
        (f"```\n{BAR}\n```", BAR),
        (f"```Python\n{BAR}\n```\n```python\nprint(1)\n```", BAR),
        (f"```python\n{BAR}\n", None),  # cut off before the closing fence
        (BAR, None),
        ("```python\n\n```", None),
        ("", None),
    ],
)
def test_extract_answer(task: TableVisualization, output: str, expected: str | None) -> None:
    assert task.extract_answer(output) == expected


def test_display_reference_shows_the_chart_the_data_and_an_answer(task: TableVisualization) -> None:
    shown = task.display_reference(ref("pie"))
    assert "pie chart of Mass by Symbol" in shown
    assert "22.99, 24.305, 26.982" in shown
    assert "plt.pie(df['Mass'], labels=df['Symbol'])" in shown
    assert task.display_reference("not json") == "not json"


# -- verification by execution ---------------------------------------------------------------


def _canonical_answers(record: dict[str, Any]) -> set[str]:
    parsed = parse_request(record["request"])
    assert parsed is not None
    kind, x, y = parsed
    return {canonical_code(kind, x, y, style) for style in ("pyplot", "pandas", "axes")}


def _body(code: str) -> str:
    return code.removeprefix("```python\n").removesuffix("\n```")


def test_verify_catches_exactly_the_wrong_forum_answers() -> None:
    task = small(1)
    forum = next(s for s in task.raw_sources() if s.source_id == "forum_scrape")
    # Oracle independent of the executor: a forum answer is right iff it is a canonical one.
    expected = [_body(r["code"]) in _canonical_answers(r) for r in forum.records]
    verdicts = [task.verify(r) for r in forum.records]
    assert verdicts == expected
    wrong = verdicts.count(False)
    assert wrong == round(task.quality["forum_scrape"].wrong_label_rate * len(forum.records))
    # The wrong answers concentrate on horizontal bars and scatter plots.
    wrong_kinds = Counter(r["category"] for r, v in zip(forum.records, verdicts, strict=True) if not v)
    assert wrong_kinds["horizontal_bar"] + wrong_kinds["scatter"] > wrong / 2


def test_verify_passes_the_clean_sources_and_skips_off_domain_records() -> None:
    task = small(2)
    sources = {s.source_id: s for s in task.raw_sources()}
    for sid in ("curated_snippets", "notebook_cells", "pandas_plot"):
        assert all(task.verify(r) is True for r in sources[sid].records[:8]), sid
    assert all(task.verify(r) is None for r in sources["code_help"].records)


def test_verify_accepts_string_forms_and_rejects_broken_records(task: TableVisualization) -> None:
    record = {
        "table": TABLE,
        "request": "draw a BAR chart of mass by symbol",
        "code": f"```python\n{BAR}\n```",
    }
    assert task.verify(record) is True
    assert task.verify({**record, "request": "Draw a bar chart of Weight by Symbol."}) is False
    assert task.verify({**record, "code": ""}) is False
    assert task.verify({**record, "code": BAR.replace("bar", "barh")}) is False
    assert task.verify({"table": TABLE, "request": "Draw a bar chart of Mass by Symbol."}) is None


# -- the checker on hand-made runs (no execution) --------------------------------------------


def element(
    kind: str, values: list[float | None], x_values: list[float | None] | None = None
) -> ChartElement:
    return ChartElement(kind=kind, values=tuple(values), x_values=tuple(x_values or ()))


def test_check_chart_rules() -> None:
    reference = ChartReference.from_json(ref("bar"))
    ys = [22.99, 24.305, 26.982]

    def verdict(*elements: ChartElement, status: Any = "ok") -> bool:
        return check_chart(SnippetRun(status=status, elements=elements), reference).passed

    assert verdict(element("bar", ys))
    assert verdict(element("bar", [22.99 * (1 + 1e-9), 24.305, 26.982]))  # float noise
    assert not verdict(element("bar", [22.99, 24.31, 26.982]))
    assert not verdict(element("bar", ys[::-1]))  # table order
    assert not verdict(element("bar", ys[:2]))
    assert not verdict(element("bar", [None, 24.305, 26.982]))
    assert not verdict(element("horizontal_bar", ys))
    assert not verdict(element("bar", ys), element("line", ys))  # another kind too
    assert verdict(element("bar", [0.0, 1.0, 2.0]), element("bar", ys))  # any element of the kind
    assert not verdict()
    assert not verdict(element("bar", ys), status="error")

    pie = ChartReference.from_json(ref("pie"))
    total = sum(ys)
    assert check_chart(
        SnippetRun(status="ok", elements=(element("pie", [v / total for v in ys]),)), pie
    ).passed
    assert not check_chart(SnippetRun(status="ok", elements=(element("pie", ys),)), pie).passed

    table = "Number,Mass\n11,22.99\n12,24.305"
    scatter = ChartReference.from_json(ref("scatter", table, "Number", "Mass"))
    good = element("scatter", [22.99, 24.305], [11, 12])
    swapped = element("scatter", [11, 12], [22.99, 24.305])
    assert check_chart(SnippetRun(status="ok", elements=(good,)), scatter).passed
    assert not check_chart(SnippetRun(status="ok", elements=(swapped,)), scatter).passed


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        json.dumps({"csv": TABLE, "kind": "bar", "x": "Symbol"}),
        json.dumps({"csv": TABLE, "kind": "histogram", "x": "Symbol", "y": "Mass"}),
        json.dumps({"csv": TABLE, "kind": "bar", "x": "Symbol", "y": "Weight"}),
        json.dumps({"csv": TABLE, "kind": "bar", "x": "Mass", "y": "Symbol"}),  # y not numeric
        json.dumps({"csv": "Symbol,Mass", "kind": "bar", "x": "Symbol", "y": "Mass"}),
    ],
)
def test_malformed_references_are_rejected(document: str) -> None:
    with pytest.raises(ValueError, match="reference"):
        ChartReference.from_json(document)


# -- the sandboxed executor ------------------------------------------------------------------

GOOD_ANSWERS = {
    "bar": BAR,
    "horizontal_bar": "df = pd.read_csv('table.csv')\ndf.plot(kind='barh', x='Symbol', y='Mass')",
    "line": "df = pd.read_csv('table.csv')\nfig, ax = plt.subplots()\nax.plot(df['Symbol'], df['Mass'])",
    "pie": "df = pd.read_csv('table.csv')\nplt.pie(df['Mass'], labels=df['Symbol'])",
}


def test_every_kind_and_style_passes(executor: ChartExecutor) -> None:
    kinds = list(GOOD_ANSWERS)
    scores = chart_item_scores(list(GOOD_ANSWERS.values()), [ref(k) for k in kinds], executor=executor)
    assert scores == [1.0] * len(kinds)
    table = "Number,Mass\n11,22.99\n12,24.305\n13,26.982"
    scatter = [
        "df = pd.read_csv('table.csv')\nplt.scatter(df['Number'], df['Mass'])",
        "df = pd.read_csv('table.csv')\ndf.plot(kind='scatter', x='Number', y='Mass')",
        "df = pd.read_csv('table.csv')\nplt.plot(df['Number'], df['Mass'], 'o')",  # markers are no scatter
        "df = pd.read_csv('table.csv')\nplt.scatter(df['Mass'], df['Number'])",
    ]
    scores = chart_item_scores(scatter, [ref("scatter", table, "Number", "Mass")] * 4, executor=executor)
    assert scores == [1.0, 1.0, 0.0, 0.0]


# Outside every snippet's directory, named so that nothing else could have made it.
ESCAPE = Path(tempfile.gettempdir()) / f"ftdojo-chart-escape-{uuid.uuid4().hex}"
HOSTILE = {
    "loops forever": "while True:\n    pass",
    "allocates 10 GB": "blob = bytearray(10 * 1024**3)",
    "grows until the limit": "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))",
    "calls os._exit": "import os\nos._exit(3)",
    "writes 100 MB of output": "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)",
    "raises": "raise ValueError('boom')",
    "exits": "import sys\nsys.exit(0)",
    "opens a socket": "import socket\nsocket.socket().connect(('127.0.0.1', 9))",
    "reads outside its directory": "print(open('/etc/passwd').read())",
    "writes outside its directory": f"open({str(ESCAPE)!r}, 'w').write('x')",
    "forks": "import os\nos.fork()",
    "runs a command": "import subprocess\nsubprocess.run(['true'])",
    "signals its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "closes its result pipe": "import os\nos.closerange(3, 64)\nwhile True:\n    pass",
    "is not python": "plt.bar(df['Symbol'] df['Mass'])",
    "draws nothing": "x = 1",
}


def test_hostile_snippets_fail_alone_and_the_scorer_returns(executor: ChartExecutor) -> None:
    codes = [BAR, *HOSTILE.values(), BAR]
    started = time.monotonic()
    scores = chart_item_scores(codes, [ref()] * len(codes), executor=executor)
    elapsed = time.monotonic() - started
    assert scores[0] == scores[-1] == 1.0
    assert dict(zip(HOSTILE, scores[1:-1], strict=True)) == dict.fromkeys(HOSTILE, 0.0)
    assert not ESCAPE.exists()
    assert elapsed < 30
    # The same executor (the same server, unless one died) still scores good code.
    assert chart_item_scores([BAR + "\n"], [ref()], executor=executor) == [1.0]


def test_failures_say_why(executor: ChartExecutor) -> None:
    expected = {
        "loops forever": ("timeout", "timed out after 2 s"),
        "allocates 10 GB": ("error", "MemoryError"),
        "calls os._exit": ("died", "exited with code 3"),
        "raises": ("error", "ValueError: boom"),
        "writes 100 MB of output": ("error", "File too large"),
        "opens a socket": ("error", "not allowed in a chart snippet: socket."),
        "reads outside its directory": ("error", "not allowed in a chart snippet: open ('/etc/passwd')"),
        "forks": ("error", "not allowed in a chart snippet: os.fork"),
        "signals its parent": ("error", "not allowed in a chart snippet: os.kill"),
    }
    runs = executor.run([(HOSTILE[name], TABLE) for name in expected])
    for (name, (status, reason)), run in zip(expected.items(), runs, strict=True):
        assert run.status == status, name
        assert reason in run.reason, name


def test_snippets_see_only_their_table_and_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTDOJO_TEST_API_TOKEN", "hunter2")
    probe = (
        "import os\n"
        "assert os.listdir('.') == ['table.csv'], os.listdir('.')\n"
        "assert 'FTDOJO_TEST_API_TOKEN' not in os.environ\n"
        "assert os.environ.get('MPLBACKEND') == 'Agg'\n" + BAR
    )
    with ChartExecutor(timeout_s=2.0) as fresh:
        assert chart_item_scores([probe], [ref()], executor=fresh) == [1.0]
        if network_isolation_prefix() is not None:
            assert fresh.network_isolated


def test_a_server_that_dies_mid_batch_is_replaced_and_unfinished_snippets_rerun() -> None:
    slow = "import time\ntime.sleep(0.3)\n" + BAR
    with ChartExecutor(timeout_s=3.0, parallel=1) as fresh:
        fresh.run([(BAR, TABLE)])  # started
        server = fresh._server
        assert server is not None
        killer = threading.Timer(0.15, server._process.kill)
        killer.start()
        try:
            runs = fresh.run([(slow + f"\n# {k}", TABLE) for k in range(4)])
        finally:
            killer.cancel()
        assert [r.status for r in runs] == ["ok"] * 4
        assert fresh.servers_started >= 2


def test_no_snippet_outlives_a_killed_server() -> None:
    # Without namespaces, so that the pid the snippet sees is the one this process sees.
    sleeper = "import os, time\nopen('pid.txt', 'w').write(str(os.getpid()))\ntime.sleep(600)"
    with ChartExecutor(timeout_s=4.0, isolate=False) as fresh:
        fresh.run([(BAR, TABLE)])
        server = fresh._server
        workspace = fresh._workspace
        assert server is not None
        assert workspace is not None
        worker = threading.Thread(target=fresh.run, args=([(sleeper, TABLE)],))
        started = time.monotonic()
        worker.start()
        deadline = started + 30
        while not (found := list(workspace.glob("server*/jobs/*/work/pid.txt"))) or not found[0].read_text():
            assert time.monotonic() < deadline, "the sleeper never started"
            time.sleep(0.05)
        pid = int(found[0].read_text())
        server._process.kill()
        # Killed before its own time limit, so only the server's death can end it.
        assert time.monotonic() - started < 3.5
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline, "the snippet outlived its server"
            time.sleep(0.05)
        worker.join(timeout=120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead; only its parent (gone) could reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_hundred_snippets_take_seconds_and_verdicts_are_cached(executor: ChartExecutor) -> None:
    codes = [BAR + f"\n# {k}" for k in range(100)]
    references = [ref()] * 100
    started = time.monotonic()
    assert chart_item_scores(codes, references, executor=executor) == [1.0] * 100
    assert time.monotonic() - started < 20  # ~3 s on 2 cores; generous for a loaded CI machine

    class Refusing(ChartExecutor):
        def run(self, snippets: Any) -> Any:
            raise AssertionError("a cached verdict was recomputed")

    # The evaluator rescores category subsets: served from the cache, in any order.
    assert chart_item_scores(codes[::-1][:10], references[:10], executor=Refusing()) == [1.0] * 10


# -- the metric ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metric(tmp_path_factory: pytest.TempPathFactory) -> Any:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted while loading a local metric")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        return load_metric("chart_pass_at_1", cache_dir=tmp_path_factory.mktemp("metric-cache"))


def test_metric_hand_written_cases(metric: Any) -> None:
    wrong_kind = BAR.replace("plt.bar", "plt.plot")
    wrong_column = "df = pd.read_csv('table.csv')\nplt.bar(df['Symbol'], df['Symbol'])"
    predictions = [BAR, None, wrong_kind, wrong_column, "raise SystemExit", GOOD_ANSWERS["pie"]]
    references = [ref(), ref(), ref(), ref(), ref(), ref("pie")]
    result = metric.compute(predictions=predictions, references=references)
    assert set(result) == {"chart_pass_at_1", "item_scores"}
    assert result["item_scores"] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert result["chart_pass_at_1"] == pytest.approx(2 / 6)
    assert metric.compute(predictions=[None], references=[ref()])["chart_pass_at_1"] == 0.0
    assert metric.compute(predictions=[], references=[]) == {"chart_pass_at_1": 0.0, "item_scores": []}


# A pool of items whose verdicts are known, so the property test runs no new code after its first example.
POOL: list[tuple[str, str, float]] = [
    (BAR, ref(), 1.0),
    (BAR.replace("bar", "barh"), ref(), 0.0),
    (BAR.replace("bar", "barh"), ref("horizontal_bar"), 1.0),
    (GOOD_ANSWERS["pie"], ref("pie"), 1.0),
    (GOOD_ANSWERS["pie"], ref("line"), 0.0),
    (GOOD_ANSWERS["line"], ref("line"), 1.0),
    ("raise ValueError", ref(), 0.0),
]


@settings(max_examples=40, deadline=None)
@given(
    picks=st.lists(st.tuples(st.sampled_from(range(len(POOL))), st.booleans()), max_size=12),
    seed=st.randoms(use_true_random=False),
)
def test_metric_properties(picks: list[tuple[int, bool]], seed: Any) -> None:
    predictions = [None if drop else POOL[k][0] for k, drop in picks]
    references = [POOL[k][1] for k, _ in picks]
    scores = chart_item_scores(predictions, references)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == [0.0 if drop else POOL[k][2] for k, drop in picks]
    # Perfect answers score 1: the canonical code for every reference.
    perfect = [canonical_code(*_kind_x_y(r)) for r in references]
    assert chart_item_scores(perfect, references) == [1.0] * len(references)
    # The aggregate does not depend on the order of the items.
    order = list(range(len(picks)))
    seed.shuffle(order)
    shuffled = chart_item_scores([predictions[k] for k in order], [references[k] for k in order])
    assert sum(shuffled) == sum(scores)


def _kind_x_y(reference: str) -> tuple[str, str, str]:
    parsed = ChartReference.from_json(reference)
    return parsed.kind, parsed.x, parsed.y


def test_metric_through_evaluate_matches_the_direct_scores(metric: Any) -> None:
    predictions = [p for p, _, _ in POOL]
    references = [r for _, r, _ in POOL]
    result = metric.compute(predictions=predictions, references=references)
    assert result["item_scores"] == [s for _, _, s in POOL]
    assert result["item_scores"] == chart_item_scores(predictions, references)
    verdicts = chart_verdicts(predictions, references)
    assert all(v.reason == "" for v in verdicts if v.passed)
    assert all(v.reason for v in verdicts if not v.passed)
