"""The exported surface, the exception tree and the import cost."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import ftdojo
from ftdojo import errors


def test_all_names_resolve_and_are_sorted() -> None:
    assert list(ftdojo.__all__) == sorted(ftdojo.__all__)
    for name in ftdojo.__all__:
        assert getattr(ftdojo, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ftdojo.nope  # noqa: B018


def test_exported_types_belong_to_ftdojo() -> None:
    for name in ftdojo.__all__:
        value = getattr(ftdojo, name)
        if isinstance(value, type):
            assert value.__module__.startswith("ftdojo."), (name, value.__module__)


def test_every_error_derives_from_the_root() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.FTDojoError), name


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.ConfigError, ValueError),
        (errors.PlanError, ValueError),
        (errors.UnknownTaskError, KeyError),
        (errors.TaskSpecError, ValueError),
        (errors.DataError, ValueError),
        (errors.UnknownSourceError, KeyError),
        (errors.ModelError, OSError),
        (errors.SandboxError, RuntimeError),
        (errors.SandboxTimeout, TimeoutError),
    ],
)
def test_errors_subclass_the_matching_builtin(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, builtin)


def test_import_ftdojo_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, ftdojo\n"
        "from ftdojo import Dojo, FTAgent, Plan\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'evaluate') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _documented_tree() -> dict[str, tuple[str | None, set[str]]]:
    """The tree in the errors module's docstring: each class, its parent and the builtins
    named beside it."""
    assert errors.__doc__ is not None
    lines = errors.__doc__.split("FTDojoError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    tree: dict[str, tuple[str | None, set[str]]] = {"FTDojoError": (None, set())}
    path = ["FTDojoError"]
    for line in lines:
        found = re.match(r"^(?P<indent>[ │├└─]*)(?P<name>\w+)(?: \((?P<builtins>[\w, ]+)\))?", line)
        assert found is not None, line
        depth = len(found["indent"]) // 4 - 1  # the docstring indents the tree by 4
        del path[depth:]
        builtins = {b.strip() for b in (found["builtins"] or "").split(",") if b.strip()}
        tree[found["name"]] = (path[-1], builtins)
        path.append(found["name"])
    return tree


def _all_errors() -> list[type[errors.FTDojoError]]:
    # Classes of the tree defined outside errors.py are found once their module is imported.
    import ftdojo.sandbox.protocol
    import ftdojo.scoring.charts  # noqa: F401

    found, todo = [], [errors.FTDojoError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_the_docstring_tree_lists_every_error_under_its_parent() -> None:
    tree = _documented_tree()
    classes = _all_errors()
    assert sorted(tree) == sorted(cls.__name__ for cls in classes)
    for cls in classes:
        if cls is errors.FTDojoError:
            continue
        parent = next(base for base in cls.__mro__[1:] if issubclass(base, errors.FTDojoError))
        builtins = {b.__name__ for b in cls.__bases__ if not issubclass(b, errors.FTDojoError)}
        assert tree[cls.__name__] == (parent.__name__, builtins), cls
