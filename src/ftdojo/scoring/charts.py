"""Run model-written plotting code in a sandbox and check the chart it draws against a table.

The table-visualisation task (:mod:`ftdojo.tasks.charts`) asks for a chart of one column
of a small table; the model answers with a short pandas + matplotlib snippet. A snippet
passes (scores 1.0) iff **all** of these hold:

1. It runs to completion, without an exception, inside the sandbox described below and
   within the wall-clock limit (default 5 s), with the table written to ``table.csv`` in
   its working directory and ``pd`` (pandas) and ``plt`` (matplotlib.pyplot, Agg
   backend) already imported.
2. The figure it leaves current (``plt.gcf()`` after the code ran) contains a chart
   element of the asked kind, read from every axes of that figure:

   - ``bar``: a ``BarContainer`` with vertical bars; its data are the bar heights.
   - ``horizontal_bar``: a ``BarContainer`` with horizontal bars; the data are the widths.
   - ``line``: a ``Line2D`` drawn with a line style (a markers-only line is not a line
     chart); the data are its y values, units converted (category strings become their
     positions, so they never equal a numeric column).
   - ``pie``: the ``Wedge`` patches of one axes; the data are the wedge fractions
     (angle / 360 degrees).
   - ``scatter``: a ``PathCollection`` (``plt.scatter``, ``ax.scatter``,
     ``df.plot(kind='scatter')``); the data are its (x, y) offsets.
3. That element's data equal the table's data **in table order**, every value within
   ``rel_tol=1e-6`` (``abs_tol=1e-9``): for bar, horizontal bar and line charts the
   y column; for a pie ``y / sum(y)``; for a scatter both the x column and the y column.
   Only the data are checked: labels, titles, colours and tick labels are not.
4. The figure contains no chart element of any *other* of the five kinds (so drawing
   every kind at once does not pass, and neither does a bar chart with a reference
   line drawn over it).

Both pyplot calls (``plt.bar(df['Symbol'], df['Mass'])``) and pandas plotting
(``df.plot(kind='bar', x='Symbol', y='Mass')``) pass when they draw the right data: the
check looks at what is on the figure, not at how it got there.

The sandbox
-----------
Model output is untrusted code. :class:`ChartExecutor` starts one *fork server*, a child
process that imports pandas and matplotlib once and then forks a grandchild per
snippet. The server is started with a scrubbed environment (an allowlist, see
:func:`ftdojo.sandbox.scrubbed_environment`) and, where ``unshare`` allows it, in
network and PID namespaces of its own (no network at all; and every process a snippet
leaves behind dies with the server, which also sweeps its namespace after each batch).
Each grandchild, before it runs a snippet:

- starts a new session (its own process group, killed as a whole when it is done);
- gets a fresh directory holding only ``table.csv`` as its working directory;
- closes every inherited file descriptor but its result pipe, reads stdin from
  ``/dev/null`` and writes stdout and stderr to a file capped by ``RLIMIT_FSIZE``;
- sets ``RLIMIT_AS`` (the server's own size plus ``memory_bytes``), ``RLIMIT_CPU``,
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_NPROC`` (0: no new processes or
  threads; the kernel does not apply it to root) and ``RLIMIT_CORE`` (0);
- installs an audit hook (:func:`sys.addaudithook`) that refuses sockets, process
  creation and signals, ``ctypes``, resource-limit changes, writes outside its
  directory, more than a few files written, and reads outside its directory and the
  Python installation.

The server kills a grandchild's process group when it has sent its result, exits, or
passes its wall-clock limit, so a crash, a time-out, a ``MemoryError``, ``os._exit``, a
flood of output or a garbled result fails that snippet alone. If the server itself dies
in a batch, the unfinished snippets are run again one by one on a fresh server, and a
snippet that takes a server down on its own fails.

The audit hook and the in-process extraction are defence in depth, not a security
boundary: Python code can reach around them (through ``ctypes`` loaded before the hook,
say), and a snippet written to *fake* a passing chart by tampering with matplotlib from
the inside could do so. What the process boundary guarantees is that no snippet can
crash, hang or flood the scorer.

Verdicts are cached per ``(code, reference)`` within a process, because the evaluator
recomputes the metric on each category's subset.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import csv
import gc
import io
import json
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NoReturn

import attrs

from ftdojo.errors import FTDojoError
from ftdojo.sandbox.paths import is_under
from ftdojo.sandbox.process import signal_group

__all__ = [
    "CHART_KINDS",
    "ChartElement",
    "ChartExecutor",
    "ChartExecutorError",
    "ChartReference",
    "ChartVerdict",
    "SnippetRun",
    "chart_item_scores",
    "chart_verdicts",
    "check_chart",
    "shared_executor",
]

#: The chart kinds a reference may ask for (also the task's categories).
CHART_KINDS = ("bar", "horizontal_bar", "line", "pie", "scatter")

RunStatus = Literal["ok", "error", "timeout", "died", "invalid"]

_REL_TOL = 1e-6
_ABS_TOL = 1e-9
_MAX_CODE_CHARS = 20_000
_MAX_CSV_CHARS = 1_000_000
_MAX_ELEMENTS = 64
_MAX_VALUES = 4096
_MAX_REASON_CHARS = 300
_MAX_FRAME_BYTES = 64 * 2**20
_START_SECONDS = 120.0
_CACHE_ENTRIES = 100_000
_SERVER_BOOT = "from ftdojo.scoring.charts import _serve; _serve()"


class ChartExecutorError(FTDojoError, RuntimeError):
    """The executor itself could not run (the server would not start): not a snippet's fault."""


# -- references and verdicts ---------------------------------------------------------------


def _floats_of(cells: Sequence[str], column: str) -> tuple[float, ...]:
    try:
        values = tuple(float(cell) for cell in cells)
    except ValueError as exc:
        raise ValueError(f"column {column!r} of the reference table is not numeric: {exc}") from exc
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"column {column!r} of the reference table has a non-finite value")
    return values


@attrs.frozen(kw_only=True)
class ChartReference:
    """What one item asks for: the table (CSV text), the chart kind and the two columns."""

    csv: str
    kind: str
    x: str
    y: str

    def __attrs_post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(
                f"the reference asks for an unknown chart kind {self.kind!r}; known: {', '.join(CHART_KINDS)}"
            )
        header, rows = self.table()
        for column in (self.x, self.y):
            if column not in header:
                raise ValueError(f"the reference table has no column {column!r} (columns: {header})")
        if not rows:
            raise ValueError("the reference table has no rows")
        self.expected()  # numeric where it must be; raises ValueError otherwise

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The header and the rows of :attr:`csv`."""
        rows = [row for row in csv.reader(io.StringIO(self.csv.strip())) if row]
        if not rows:
            raise ValueError("the reference table is empty")
        header, body = rows[0], rows[1:]
        if any(len(row) != len(header) for row in body):
            raise ValueError("a row of the reference table does not match its header")
        return header, body

    def column(self, name: str) -> list[str]:
        header, rows = self.table()
        k = header.index(name)
        return [row[k] for row in rows]

    def expected(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(values, x_values)`` a passing chart element holds; ``x_values`` only for a scatter."""
        ys = _floats_of(self.column(self.y), self.y)
        if self.kind == "pie":
            total = sum(ys)
            if total <= 0 or any(v < 0 for v in ys):
                raise ValueError("a pie chart needs non-negative values with a positive sum")
            return tuple(v / total for v in ys), ()
        if self.kind == "scatter":
            return ys, _floats_of(self.column(self.x), self.x)
        return ys, ()

    def to_json(self) -> str:
        return json.dumps({"csv": self.csv, "kind": self.kind, "x": self.x, "y": self.y}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ChartReference:
        """The reference a :meth:`to_json` document describes; ``ValueError`` if it is malformed."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a chart reference must be a JSON document: {exc}") from exc
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("csv", "kind", "x", "y")
        ):
            raise ValueError('a chart reference must be {"csv": str, "kind": str, "x": str, "y": str}')
        return cls(csv=data["csv"], kind=data["kind"], x=data["x"], y=data["y"])


@attrs.frozen(kw_only=True)
class ChartElement:
    """One chart element read off the figure: its kind and its data (``None`` for non-finite)."""

    kind: str
    values: tuple[float | None, ...]
    #: A scatter's x offsets; empty for the other kinds.
    x_values: tuple[float | None, ...] = ()


@attrs.frozen(kw_only=True)
class SnippetRun:
    """How one snippet ran: ``ok`` with the chart elements it left, or why not."""

    status: RunStatus
    elements: tuple[ChartElement, ...] = ()
    #: Why it failed (an exception line, "timed out after 5 s", ...); empty when ok.
    reason: str = ""
    seconds: float = 0.0


@attrs.frozen(kw_only=True)
class ChartVerdict:
    passed: bool
    #: Why it failed; empty when it passed.
    reason: str = ""


def _same(actual: Sequence[float | None], expected: Sequence[float]) -> bool:
    return len(actual) == len(expected) and all(
        a is not None and math.isclose(a, e, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
        for a, e in zip(actual, expected, strict=True)
    )


def check_chart(run: SnippetRun, reference: ChartReference) -> ChartVerdict:
    """Whether ``run`` drew the chart ``reference`` asks for (the rules in the module docstring)."""
    if run.status != "ok":
        return ChartVerdict(passed=False, reason=run.reason or run.status)
    others = sorted({e.kind for e in run.elements} - {reference.kind})
    if others:
        return ChartVerdict(passed=False, reason=f"the figure also holds a {', '.join(others)} chart")
    candidates = [e for e in run.elements if e.kind == reference.kind]
    if not candidates:
        return ChartVerdict(passed=False, reason=f"the figure holds no {reference.kind} chart")
    values, x_values = reference.expected()
    for element in candidates:
        if _same(element.values, values) and _same(element.x_values, x_values):
            return ChartVerdict(passed=True)
    return ChartVerdict(
        passed=False, reason=f"the {reference.kind} chart does not show column {reference.y!r}"
    )


# -- framing between the parent and the server ----------------------------------------------

_LENGTH = struct.Struct(">I")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_frame(fd: int, message: dict[str, Any]) -> None:
    body = json.dumps(message, allow_nan=False).encode()
    _write_all(fd, _LENGTH.pack(len(body)) + body)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame_blocking(fd: int) -> dict[str, Any] | None:
    head = _read_exact(fd, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > _MAX_FRAME_BYTES:
        return None
    body = _read_exact(fd, size)
    if body is None:
        return None
    message = json.loads(body)
    return message if isinstance(message, dict) else None


# -- the fork server (runs in the child process) ---------------------------------------------

_BLOCKED_EVENT_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.kill",
    "os.system",
    "os.startfile",
    "pty.",
    "ctypes.",
    "resource.",
    "webbrowser.",
    "urllib.",
    "http.client.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
)
# Audit events whose listed arguments are paths that must stay inside the job directory.
_WRITE_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.rename": (0, 1),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.symlink": (0, 1),
    "os.link": (0, 1),
    "os.chdir": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
}
_READ_PATH_EVENTS: dict[str, tuple[int, ...]] = {"os.listdir": (0,), "os.scandir": (0,), "glob.glob": (0,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_MAX_FILES_WRITTEN = 32
_PR_SET_PDEATHSIG = 1


def _install_guard(job_dir: str, read_roots: Sequence[str]) -> None:
    """An audit hook refusing what a chart snippet has no business doing (see the module docstring).

    It raises PermissionError inside the offending call, so the snippet fails with a
    clear message. Paths are resolved (symlinks followed) before they are compared.

    Not the worker's :class:`ftdojo.sandbox.guard.Guard`, whose rules are the other way
    round: a job may read anything but the hidden folders, and most of what it crosses is
    reported rather than refused; a snippet may read only its folder and the Python
    installation, and everything it crosses is refused.
    """
    write_roots = (job_dir,)
    all_read_roots = (job_dir, *read_roots)
    state = {"busy": False, "writes": 0}

    def resolved(value: Any) -> str | None:
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        return os.path.realpath(value) if isinstance(value, str) else None

    def refuse(event: str, detail: str = "") -> NoReturn:
        raise PermissionError(f"not allowed in a chart snippet: {event}{detail}")

    def check_paths(
        event: str, args: tuple[Any, ...], positions: tuple[int, ...], roots: Sequence[str]
    ) -> None:
        for k in positions:
            if k < len(args) and args[k] is not None:
                path = resolved(args[k])
                if path is None or not is_under(path, roots):
                    refuse(event, f" ({args[k]!r})")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if state["busy"]:
            return
        state["busy"] = True
        try:
            if event.startswith(_BLOCKED_EVENT_PREFIXES):
                refuse(event)
            if event == "open":
                path, mode, flags = (*args, None, None, None)[:3]
                if isinstance(path, int):
                    return
                writing = bool(isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                    isinstance(mode, str) and any(c in mode for c in "wax+")
                )
                if writing:
                    state["writes"] += 1
                    if state["writes"] > _MAX_FILES_WRITTEN:
                        refuse(event, f": more than {_MAX_FILES_WRITTEN} files written")
                check_paths(event, (path,), (0,), write_roots if writing else all_read_roots)
            elif event in _WRITE_PATH_EVENTS:
                check_paths(event, args, _WRITE_PATH_EVENTS[event], write_roots)
            elif event in _READ_PATH_EVENTS:
                check_paths(event, args, _READ_PATH_EVENTS[event], all_read_roots)
        finally:
            state["busy"] = False

    sys.addaudithook(hook)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _describe_exception(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return text[:_MAX_REASON_CHARS]


@attrs.define
class _Running:
    job_id: int
    pid: int
    fd: int
    job_dir: Path
    started: float
    deadline: float
    buffer: bytearray = attrs.Factory(bytearray)
    too_big: bool = False


class _Runtime:
    """The server's side: pandas and matplotlib imported once, one forked grandchild per snippet."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.timeout = float(settings["timeout"])
        self.memory_bytes = int(settings["memory_bytes"])
        self.output_bytes = int(settings["output_bytes"])
        self.result_bytes = int(settings["result_bytes"])
        self.parallel = max(1, int(settings["parallel"]))
        self.pid_namespace = bool(settings["pid_namespace"]) and os.getpid() == 1
        self.jobs_dir = Path(settings["jobs_dir"])
        self.exited: dict[int, int] = {}
        self._ours: set[int] = set()
        self._counter = 0
        self._server_pid = os.getpid()
        self._prctl = self._find_prctl()

        import matplotlib

        matplotlib.use("Agg", force=True)
        import importlib

        import matplotlib.pyplot as plt
        from matplotlib.collections import PathCollection
        from matplotlib.container import BarContainer
        from matplotlib.patches import Wedge

        # pandas is only handed to snippets, never called through typed code here.
        self.pd: ModuleType = importlib.import_module("pandas")
        self.plt = plt
        self._bar_container = BarContainer
        self._path_collection = PathCollection
        self._wedge = Wedge
        self._gcf = plt.gcf
        plt.ioff()
        self._warm_up()
        self.read_roots = self._read_roots(matplotlib)
        self.address_space = self.memory_bytes + self._own_address_space()

    # -- preparation ---------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Draw every chart kind once both ways, so forks inherit loaded modules and caches.

        Whatever pandas or matplotlib import or read lazily is then already in memory
        when a grandchild, under its audit hook, first draws.
        """
        df = self.pd.read_csv(io.StringIO("k,v,w\na,1,2.5\nb,2,3.5\n"))
        plt = self.plt
        draws: list[Callable[[], Any]] = [
            lambda: plt.bar(df["k"], df["v"]),
            lambda: plt.barh(df["k"], df["v"]),
            lambda: plt.plot(df["k"], df["v"]),
            lambda: plt.pie(df["v"], labels=df["k"]),
            lambda: plt.scatter(df["v"], df["w"]),
            lambda: df.plot(kind="bar", x="k", y="v"),
            lambda: df.plot(kind="barh", x="k", y="v"),
            lambda: df.plot(kind="line", x="k", y="v"),
            lambda: df.plot(kind="pie", y="v", labels=df["k"]),
            lambda: df.plot(kind="scatter", x="v", y="w"),
            lambda: df.plot.bar(x="k", y="v"),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, draw in enumerate(draws):
                plt.figure()
                draw()
                plt.title("t")
                plt.legend()
                self._extract()
                if k == 0:  # rendering once loads the fonts (savefig needs them); more adds nothing
                    plt.gcf().canvas.draw()
                plt.close("all")
        # A current figure with axes, made once here instead of in every grandchild.
        plt.figure()
        plt.gca()
        # Objects that exist now are never collected in a grandchild, so its garbage
        # collector does not write to (and copy) every page it inherited.
        gc.collect()
        gc.freeze()

    @staticmethod
    def _find_prctl() -> Callable[..., int] | None:
        """Linux's prctl(2), looked up here because the grandchild's audit hook refuses ctypes."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            import ctypes

            prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
        return prctl

    def _die_with_server(self) -> None:
        """SIGKILL this grandchild when the server dies, so no snippet outlives a killed server."""
        if self._prctl is not None:
            self._prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self._server_pid:  # the server died before prctl took effect
            os._exit(1)

    @staticmethod
    def _read_roots(matplotlib: ModuleType) -> tuple[str, ...]:
        candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
        candidates += [matplotlib.get_data_path(), matplotlib.get_configdir(), matplotlib.get_cachedir()]
        candidates += ["/usr/share/fonts", "/usr/share/zoneinfo", "/usr/lib/locale", os.devnull]
        roots = {os.path.realpath(p) for p in candidates if p and os.path.isabs(p)}
        return tuple(sorted(roots))

    @staticmethod
    def _own_address_space() -> int:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 1 * 2**30  # no /proc (macOS): assume the size pandas + matplotlib usually take

    # -- the grandchild --------------------------------------------------------------------

    def _extract(self) -> list[dict[str, Any]]:
        import numpy as np

        elements: list[dict[str, Any]] = []

        def add(kind: str, values: Any, x_values: Any = ()) -> None:
            if len(elements) < _MAX_ELEMENTS:
                elements.append(
                    {
                        "kind": kind,
                        "values": [_finite(v) for v in list(values)[:_MAX_VALUES]],
                        "x_values": [_finite(v) for v in list(x_values)[:_MAX_VALUES]],
                    }
                )

        for ax in self._gcf().axes:
            for container in ax.containers:
                if isinstance(container, self._bar_container):
                    horizontal = getattr(container, "orientation", "vertical") == "horizontal"
                    bars = container.patches
                    add(
                        "horizontal_bar" if horizontal else "bar",
                        [bar.get_width() if horizontal else bar.get_height() for bar in bars],
                    )
            wedges = [p for p in ax.patches if isinstance(p, self._wedge)]
            if wedges:
                add("pie", [abs(w.theta2 - w.theta1) / 360.0 for w in wedges])
            for line in ax.get_lines():
                if str(line.get_linestyle()).lower() in ("none", "", " "):
                    continue
                try:
                    ys = np.asarray(line.get_ydata(orig=False), dtype=float).ravel()
                except (TypeError, ValueError):
                    ys = np.full(len(np.atleast_1d(line.get_ydata())), np.nan)
                add("line", ys.tolist())
            for collection in ax.collections:
                if isinstance(collection, self._path_collection):
                    offsets = np.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2)
                    add("scatter", offsets[:, 1].tolist(), offsets[:, 0].tolist())
        return elements

    def _execute(self, code: str) -> dict[str, Any]:
        try:
            compiled = compile(code, "<snippet>", "exec")
            namespace: dict[str, Any] = {
                "__name__": "__main__",
                "__builtins__": builtins,
                "pd": self.pd,
                "plt": self.plt,
            }
            exec(compiled, namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt fail the snippet too
            return {"status": "error", "reason": _describe_exception(exc)}
        try:
            elements = self._extract()
        except BaseException as exc:
            return {"status": "error", "reason": "cannot read the figure: " + _describe_exception(exc)}
        return {"status": "ok", "elements": elements}

    def _limit(self) -> None:
        import resource

        cpu = math.ceil(self.timeout) + 1
        limits = [
            (resource.RLIMIT_AS, self.address_space),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, self.output_bytes),
            (resource.RLIMIT_NOFILE, 64),
            (resource.RLIMIT_NPROC, 0),
            (resource.RLIMIT_CORE, 0),
        ]
        for which, value in limits:
            # A limit the platform refuses (or one already lower) is left as it is.
            with contextlib.suppress(ValueError, OSError):
                _soft, hard = resource.getrlimit(which)
                capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (capped, capped))

    def _grandchild(self, code: str, job_dir: Path, result_fd: int) -> NoReturn:
        message: dict[str, Any]
        try:
            os.setsid()
            self._die_with_server()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            log = os.open(job_dir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.closerange(3, result_fd)
            os.closerange(result_fd + 1, 1 << 16)
            # Over RLIMIT_FSIZE a write then fails with EFBIG instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            self._limit()
            os.chdir(job_dir / "work")
            _install_guard(str(job_dir.resolve()), self.read_roots)
            message = self._execute(code)
        except BaseException as exc:
            message = {"status": "error", "reason": "sandbox setup failed: " + _describe_exception(exc)}
        try:
            body = json.dumps(message, allow_nan=False).encode()
            if len(body) > self.result_bytes:
                body = json.dumps({"status": "error", "reason": "the chart data are too large"}).encode()
            _write_all(result_fd, body)
        finally:
            os._exit(0)

    # -- the server loop -------------------------------------------------------------------

    def _start(self, job: dict[str, Any]) -> _Running | dict[str, Any]:
        job_id = int(job["id"])
        code, table = job.get("code"), job.get("csv")
        if not isinstance(code, str) or not isinstance(table, str):
            return {"id": job_id, "status": "invalid", "reason": "a job needs code and csv text"}
        if len(code) > _MAX_CODE_CHARS:
            return {
                "id": job_id,
                "status": "error",
                "reason": f"the code is over {_MAX_CODE_CHARS} characters",
            }
        self._counter += 1
        job_dir = self.jobs_dir / f"job{self._counter}"
        (job_dir / "work").mkdir(parents=True)
        (job_dir / "work" / "table.csv").write_text(table[:_MAX_CSV_CHARS], encoding="utf-8")
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            self._grandchild(code, job_dir, write_fd)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._ours.add(pid)
        return _Running(
            job_id=job_id,
            pid=pid,
            fd=read_fd,
            job_dir=job_dir,
            started=started,
            deadline=started + self.timeout,
        )

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._ours:  # strays reparented to us (PID namespace) are only reaped
                self.exited[pid] = status

    def _exit_status(self, pid: int, *, grace: float) -> int | None:
        """The grandchild's wait status if it exits within ``grace`` seconds by itself."""
        deadline = time.monotonic() + grace
        while True:
            self._reap()
            if pid in self.exited:
                return self.exited[pid]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.001)

    def _finish(self, run: _Running, *, timed_out: bool) -> dict[str, Any]:
        natural = None if timed_out else self._exit_status(run.pid, grace=0.05)
        # No SIGTERM and grace period first: a snippet has nothing to save, and the server
        # reaps synchronously between snippets (see ftdojo.sandbox.process for the runner's).
        signal_group(run.pid, signal.SIGKILL)
        while run.pid not in self.exited:
            try:
                _, status = os.waitpid(run.pid, 0)
            except ChildProcessError:
                break
            self.exited[run.pid] = status
        self.exited.pop(run.pid, None)
        self._ours.discard(run.pid)
        os.close(run.fd)
        shutil.rmtree(run.job_dir, ignore_errors=True)
        seconds = time.monotonic() - run.started
        result: dict[str, Any] = {"id": run.job_id, "seconds": seconds}
        if timed_out:
            return {**result, "status": "timeout", "reason": f"timed out after {self.timeout:g} s"}
        if run.too_big:
            return {**result, "status": "invalid", "reason": "the result is too large"}
        try:
            message = json.loads(bytes(run.buffer)) if run.buffer else None
        except (ValueError, RecursionError):
            message = None
        if not run.buffer:
            return {**result, "status": "died", "reason": _describe_wait(natural)}
        if not isinstance(message, dict) or message.get("status") not in ("ok", "error"):
            return {**result, "status": "invalid", "reason": "the result is not readable"}
        return {**message, **result}

    def run_batch(self, jobs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        queue = list(reversed(jobs))
        running: dict[int, _Running] = {}
        try:
            while queue or running:
                while queue and len(running) < self.parallel:
                    started = self._start(queue.pop())
                    if isinstance(started, dict):
                        yield started
                    else:
                        running[started.fd] = started
                if not running:
                    continue
                wait = max(0.0, min(r.deadline for r in running.values()) - time.monotonic())
                ready, _, _ = select.select(list(running), [], [], wait)
                for fd in ready:
                    run = running[fd]
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if chunk and len(run.buffer) + len(chunk) <= self.result_bytes:
                        run.buffer += chunk
                        continue
                    run.too_big = bool(chunk)
                    yield self._finish(running.pop(fd), timed_out=False)
                now = time.monotonic()
                for fd in [fd for fd, r in running.items() if now >= r.deadline]:
                    yield self._finish(running.pop(fd), timed_out=True)
        finally:
            for run in running.values():
                signal_group(run.pid, signal.SIGKILL)
            self._sweep()

    def _sweep(self) -> None:
        """Kill whatever snippets left behind (outside their process groups), if we can see it all."""
        if self.pid_namespace:
            # As PID 1 of our own namespace, -1 reaches every other process in it and nothing outside.
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        self._reap()


def _describe_wait(status: int | None) -> str:
    if status is None:
        return "ended without a result"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with code {code} without a result"
    if -code == signal.SIGXCPU:
        return "ran past its CPU time limit"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name} without a result"


def _serve() -> None:
    """The fork server's main loop: one request (a batch of jobs) at a time from stdin."""
    settings = json.loads(sys.argv[1])
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    # Nothing printed by a library can corrupt the protocol, and nothing can read it.
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.set_inheritable(protocol_in, False)
    os.set_inheritable(protocol_out, False)
    runtime = _Runtime(settings)
    _write_frame(protocol_out, {"ready": True, "pid_namespace": runtime.pid_namespace})
    while True:
        try:
            request = _read_frame_blocking(protocol_in)
        except ValueError:
            request = None
        if request is None:
            return
        jobs = request.get("jobs")
        for result in runtime.run_batch(jobs if isinstance(jobs, list) else []):
            _write_frame(protocol_out, result)
        _write_frame(protocol_out, {"done": True})


# -- the parent side -----------------------------------------------------------------------


class _ServerDied(Exception):
    def __init__(self, partial: dict[int, dict[str, Any]], why: str) -> None:
        super().__init__(why)
        self.partial = partial


def _isolation_prefix() -> tuple[tuple[str, ...], bool]:
    """``(command prefix, whether it adds a PID namespace)`` for the server; ``((), False)`` without."""
    from ftdojo.sandbox.isolation import network_isolation_prefix

    base = network_isolation_prefix()
    if base is None:
        return (), False
    with_pid = (*base, "--pid", "--fork", "--kill-child")
    try:
        probe = subprocess.run(
            [*with_pid, "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return base, False
    return (with_pid, True) if probe.returncode == 0 else (base, False)


_PREFIX_LOCK = threading.Lock()
_PREFIX: tuple[tuple[str, ...], bool] | None = None


def _cached_isolation_prefix() -> tuple[tuple[str, ...], bool]:
    global _PREFIX
    with _PREFIX_LOCK:
        if _PREFIX is None:
            _PREFIX = _isolation_prefix()
        return _PREFIX


class _Server:
    """One fork-server process, spoken to through length-prefixed JSON frames."""

    def __init__(self, settings: dict[str, Any], workspace: Path, mpl_config: Path, isolate: bool) -> None:
        from ftdojo.sandbox.environment import scrubbed_environment
        from ftdojo.sandbox.jobs import Limits

        prefix, pid_namespace = _cached_isolation_prefix() if isolate else ((), False)
        self.network_isolated = bool(prefix)
        self.pid_namespace = pid_namespace
        jobs_dir = workspace / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        env = scrubbed_environment(
            workspace=workspace,
            limits=Limits(threads=1),
            extra={
                "PYTHONPATH": python_path,
                "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": str(mpl_config),
                "OPENBLAS_NUM_THREADS": "1",
                "NUMEXPR_NUM_THREADS": "1",
            },
        )
        settings = {**settings, "pid_namespace": pid_namespace, "jobs_dir": str(jobs_dir)}
        self._log = open(workspace / "server.log", "wb")  # noqa: SIM115  # closed in close()
        self._process = subprocess.Popen(
            [*prefix, sys.executable, "-s", "-B", "-c", _SERVER_BOOT, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=workspace,
            env=env,
        )
        self._workspace = workspace
        self._buffer = bytearray()
        try:
            ready = self._next_frame(time.monotonic() + _START_SECONDS)
        except _ServerDied as exc:
            self.close()
            raise ChartExecutorError(f"the chart executor did not start: {exc}; {self.log_tail()}") from exc
        if not ready.get("ready"):
            self.close()
            raise ChartExecutorError(f"the chart executor sent {ready!r} instead of a ready message")

    def log_tail(self) -> str:
        try:
            return (self._workspace / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _next_frame(self, deadline: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (size,) = _LENGTH.unpack(self._buffer[: _LENGTH.size])
                if size > _MAX_FRAME_BYTES:
                    raise _ServerDied({}, "the server sent an oversized frame")
                end = _LENGTH.size + size
                if len(self._buffer) >= end:
                    body = bytes(self._buffer[_LENGTH.size : end])
                    del self._buffer[:end]
                    try:
                        message = json.loads(body)
                    except ValueError as exc:
                        raise _ServerDied({}, "the server sent an unreadable frame") from exc
                    if not isinstance(message, dict):
                        raise _ServerDied({}, "the server sent a frame that is not an object")
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ServerDied({}, "the server stopped answering")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _ServerDied({}, "the server exited")
                self._buffer += chunk

    def run_batch(self, jobs: list[dict[str, Any]], deadline: float) -> dict[int, dict[str, Any]]:
        assert self._process.stdin is not None
        results: dict[int, dict[str, Any]] = {}
        try:
            self._process.stdin.write(_frame_bytes({"jobs": jobs}))
            self._process.stdin.flush()
        except OSError as exc:
            raise _ServerDied(results, f"cannot send to the server: {exc}") from exc
        while True:
            try:
                message = self._next_frame(deadline)
            except _ServerDied as exc:
                raise _ServerDied(results, str(exc)) from exc
            if message.get("done"):
                return results
            if isinstance(message.get("id"), int):
                results[message["id"]] = message

    def close(self) -> None:
        # The server (or unshare, whose --kill-child takes the server and its PID namespace
        # with it); grandchildren die with the server (PR_SET_PDEATHSIG). The server is a
        # plain blocking Popen (the executor is called from synchronous scoring code) and
        # no group leader, so ftdojo.sandbox.process's asynchronous group helpers do not apply.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=30)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()


def _frame_bytes(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, allow_nan=False).encode()
    return _LENGTH.pack(len(body)) + body


def _default_parallel() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _run_result(message: dict[str, Any]) -> SnippetRun:
    status = message.get("status")
    reason = str(message.get("reason") or "")[:_MAX_REASON_CHARS]
    seconds = float(message.get("seconds") or 0.0)
    if status != "ok":
        known: tuple[RunStatus, ...] = ("error", "timeout", "died", "invalid")
        return SnippetRun(status=status if status in known else "invalid", reason=reason, seconds=seconds)
    elements = []
    raw = message.get("elements")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("kind") not in CHART_KINDS:
            return SnippetRun(status="invalid", reason="the chart data are malformed", seconds=seconds)
        values, x_values = item.get("values"), item.get("x_values", [])
        if not isinstance(values, list) or not isinstance(x_values, list):
            return SnippetRun(status="invalid", reason="the chart data are malformed", seconds=seconds)
        elements.append(
            ChartElement(
                kind=item["kind"],
                values=tuple(_finite(v) for v in values),
                x_values=tuple(_finite(v) for v in x_values),
            )
        )
    return SnippetRun(status="ok", elements=tuple(elements), seconds=seconds)


class ChartExecutor:
    """Runs snippets against tables in a sandboxed fork server (see the module docstring).

    ``timeout_s`` is each snippet's wall-clock limit (its CPU limit is one second more);
    ``memory_bytes`` is what a snippet may allocate beyond what pandas and matplotlib
    already take; ``parallel`` snippets run at once (default: the cores, at most 4).
    ``isolate`` runs the server without network (and in a PID namespace) where
    ``unshare`` allows it. The server starts on first use and is reused; :meth:`close`
    (or leaving a ``with`` block) ends it and removes its files.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        memory_bytes: int = 2**30,
        output_bytes: int = 8 * 2**20,
        parallel: int | None = None,
        isolate: bool = True,
    ) -> None:
        if not timeout_s > 0 or memory_bytes <= 0 or output_bytes <= 0:
            raise ValueError("timeout_s, memory_bytes and output_bytes must be positive")
        self.timeout_s = float(timeout_s)
        self._settings = {
            "timeout": self.timeout_s,
            "memory_bytes": int(memory_bytes),
            "output_bytes": int(output_bytes),
            "result_bytes": 4 * 2**20,
            "parallel": parallel or _default_parallel(),
        }
        self._parallel = int(self._settings["parallel"])
        self._isolate = isolate
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._workspace: Path | None = None
        self.servers_started = 0

    def __enter__(self) -> ChartExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def network_isolated(self) -> bool:
        """Whether the current server runs without network (``False`` before it starts)."""
        return self._server is not None and self._server.network_isolated

    @property
    def pid_namespace(self) -> bool:
        return self._server is not None and self._server.pid_namespace

    def _ensure_server(self) -> _Server:
        if self._server is None:
            if self._workspace is None:
                self._workspace = Path(tempfile.mkdtemp(prefix="ftdojo-charts-"))
            server_dir = self._workspace / f"server{self.servers_started}"
            server_dir.mkdir()
            # Shared by the executor's servers, so a restart does not rebuild the font cache.
            mpl_config = self._workspace / "matplotlib"
            mpl_config.mkdir(exist_ok=True)
            self._server = _Server(self._settings, server_dir, mpl_config, self._isolate)
            self.servers_started += 1
        return self._server

    def _drop_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _deadline(self, n_jobs: int) -> float:
        rounds = math.ceil(n_jobs / self._parallel)
        return time.monotonic() + rounds * (self.timeout_s + 2.0) + 30.0

    def run(self, snippets: Sequence[tuple[str, str]]) -> list[SnippetRun]:
        """Run each ``(code, csv)`` pair; one :class:`SnippetRun` per pair, in order.

        Raises :class:`ChartExecutorError` only when the executor cannot start at all.
        """
        if not snippets:
            return []
        with self._lock:
            unique: dict[tuple[str, str], int] = {}
            for pair in snippets:
                unique.setdefault(pair, len(unique))
            jobs = [{"id": k, "code": code, "csv": table} for (code, table), k in unique.items()]
            results = self._run_jobs(jobs)
            return [results[unique[pair]] for pair in snippets]

    def _run_jobs(self, jobs: list[dict[str, Any]]) -> dict[int, SnippetRun]:
        done: dict[int, SnippetRun] = {}
        try:
            raw = self._ensure_server().run_batch(jobs, self._deadline(len(jobs)))
            done.update((k, _run_result(v)) for k, v in raw.items())
        except _ServerDied as died:
            done.update((k, _run_result(v)) for k, v in died.partial.items())
            self._drop_server()
        # Whatever a dead server left unfinished runs again alone, so that one snippet
        # that brings a server down fails by itself and takes no neighbour with it.
        for job in jobs:
            if job["id"] in done:
                continue
            try:
                raw = self._ensure_server().run_batch([job], self._deadline(1))
                done[job["id"]] = _run_result(raw[job["id"]])
            except (_ServerDied, KeyError):
                self._drop_server()
                done[job["id"]] = SnippetRun(status="died", reason="the snippet brought the executor down")
        return done

    def close(self) -> None:
        with self._lock:
            self._drop_server()
            if self._workspace is not None:
                shutil.rmtree(self._workspace, ignore_errors=True)
                self._workspace = None


_SHARED_LOCK = threading.Lock()
_SHARED: ChartExecutor | None = None


def shared_executor() -> ChartExecutor:
    """The process's default executor (created on first use, closed at exit)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ChartExecutor()
            atexit.register(_SHARED.close)
        return _SHARED


_VERDICTS: OrderedDict[tuple[str, str], ChartVerdict] = OrderedDict()
_VERDICTS_LOCK = threading.Lock()


def chart_verdicts(
    predictions: Sequence[str | None],
    references: Sequence[str],
    *,
    executor: ChartExecutor | None = None,
) -> list[ChartVerdict]:
    """One :class:`ChartVerdict` per item; ``None`` predictions fail without running anything.

    References are :meth:`ChartReference.to_json` documents; a malformed one raises
    ``ValueError`` (a broken benchmark item is not the model's fault). Verdicts are cached
    per ``(code, reference)`` in this process.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    parsed = [ChartReference.from_json(r) for r in references]
    verdicts: list[ChartVerdict | None] = [None] * len(predictions)
    to_run: list[int] = []
    with _VERDICTS_LOCK:
        for k, (code, reference) in enumerate(zip(predictions, references, strict=True)):
            if code is None:
                verdicts[k] = ChartVerdict(passed=False, reason="no code block")
            elif (code, reference) in _VERDICTS:
                _VERDICTS.move_to_end((code, reference))
                verdicts[k] = _VERDICTS[(code, reference)]
            else:
                to_run.append(k)
    if to_run:
        runner = executor or shared_executor()
        runs = runner.run([(str(predictions[k]), parsed[k].csv) for k in to_run])
        with _VERDICTS_LOCK:
            for k, run in zip(to_run, runs, strict=True):
                verdict = check_chart(run, parsed[k])
                verdicts[k] = verdict
                _VERDICTS[(str(predictions[k]), references[k])] = verdict
            while len(_VERDICTS) > _CACHE_ENTRIES:
                _VERDICTS.popitem(last=False)
    return [v if v is not None else ChartVerdict(passed=False, reason="not scored") for v in verdicts]


def chart_item_scores(
    predictions: Sequence[str | None],
    references: Sequence[str],
    *,
    executor: ChartExecutor | None = None,
) -> list[float]:
    """1.0 for each passing snippet, 0.0 otherwise (see :func:`chart_verdicts`)."""
    return [1.0 if v.passed else 0.0 for v in chart_verdicts(predictions, references, executor=executor)]
