"""The shape of the house: layers, no import cycles, no reaching into private names, one Session.

The import-linter contracts in ``pyproject.toml`` state which way the layers point; the
checks here add what import-linter does not: cycles among module-level imports
(``TYPE_CHECKING`` blocks included, imports inside functions excluded), and imports of
another module's ``_private`` names.
"""

from __future__ import annotations

import ast
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ftdojo
from ftdojo.local_session import LocalSession
from ftdojo.sandbox.agent_host import RemoteSession
from ftdojo.session import Session
from ftdojo.testing import _RecordingSession

SRC = Path(ftdojo.__file__).parent
ROOT = SRC.parent.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(SRC.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _module_level_imports(name: str, tree: ast.Module, known: set[str], is_package: bool) -> set[str]:
    """ftdojo modules ``name`` imports outside any function (``if TYPE_CHECKING`` included)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # an import inside a function runs when called: no cycle at import
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in known)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, node, is_package)
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in known else target)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    visit(
                        [n for n in inner if isinstance(n, ast.stmt)]
                        + [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body]
                    )

    visit(tree.body)
    return {m for m in found if m in known and m != name}


def test_no_import_cycle_among_module_level_imports() -> None:
    modules = _modules()
    known = set(modules)
    packages = {_module_name(p) for p in SRC.rglob("__init__.py")}
    graph = {
        name: _module_level_imports(name, tree, known, name in packages) for name, tree in modules.items()
    }
    # The package roots only re-export lazily (TYPE_CHECKING imports of their members): an
    # edge from a member back to its package is a re-export, not a dependency of the member.
    for name in graph:
        graph[name] -= {p for p in packages if name.startswith(p + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ftdojo"):
                private = [
                    a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    offenders.append(f"{name}: from {node.module} import {', '.join(private)}")
    assert offenders == []


def test_the_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.skip("import-linter is not installed (it comes with the test extra)")
    out = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout


def _members(protocol: type) -> set[str]:
    return {
        name
        for name in dir(protocol)
        if not name.startswith("_") and name not in dir(object) and name not in {"register"}
    }


@pytest.mark.parametrize("implementation", [LocalSession, RemoteSession, _RecordingSession])
def test_every_session_declares_the_protocol_with_its_signatures(implementation: type) -> None:
    set_in_init = set(re.findall(r"self\.(\w+)\s*[:=]", inspect.getsource(implementation.__init__)))
    for name in _members(Session):
        declared = inspect.getattr_static(Session, name)
        if isinstance(declared, property):
            # A property in the protocol; an attribute set in __init__ also satisfies it.
            assert hasattr(implementation, name) or name in set_in_init, f"{implementation.__name__}: {name}"
            continue
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
        actual = inspect.getattr_static(implementation, name)
        assert callable(actual), f"{implementation.__name__}.{name} is not a method"
        assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(declared), name
        expected = list(inspect.signature(declared).parameters)
        assert list(inspect.signature(actual).parameters) == expected, f"{implementation.__name__}.{name}"
