"""nox sessions: tests, lint, typecheck (the default ones), and docs."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"

# The CPU build of torch: an unpinned torch pulls a multi-GB CUDA build.
TORCH = "torch==2.13.0"


@nox.session
def tests(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6", "import-linter>=2.0")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")
    # The layers of docs/architecture.md (the contracts live in pyproject.toml); it reads
    # the source tree, so ftdojo itself need not be installed.
    session.run("lint-imports", env={"PYTHONPATH": "src"})


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[dev]")
    session.run("mypy")


# Not among nox.options.sessions: a bare `nox` stays as fast as before; `nox -s docs`
# (and CI, in .ci/run) builds the site.
@nox.session
def docs(session: nox.Session) -> None:
    # The docs extra only: mkdocstrings reads src/ statically (mkdocs.yml: paths [src]),
    # so the site builds without torch and without installing ftdojo itself.
    # ruff formats the signatures of the API reference.
    session.install("mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "ruff>=0.6")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
