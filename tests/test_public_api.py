"""The exported surface, the exception tree and the import cost."""

from __future__ import annotations

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
