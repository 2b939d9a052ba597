"""Metrics shipped with ftdojo, as local Hugging Face ``evaluate`` modules.

Each metric is a directory ``<name>/<name>.py`` next to this file, loaded **by path**:
``evaluate.load("accuracy")`` would look the name up on the Hub, which fails offline
(sandboxed workers have no network), whereas a path is read from disk only.

Importing this package is cheap: ``evaluate`` (which pulls in ``datasets`` and torch)
is imported inside :func:`load_metric`, so that specs and the Dojo's own process can
name metrics without paying for it.

``evaluate`` copies the script into its modules cache before importing it. That cache
is ``$HF_MODULES_CACHE`` or ``$HF_HOME/modules`` (default ``~/.cache/huggingface/modules``),
read when ``evaluate`` is first imported; point one of those variables at a writable
directory before the first :func:`load_metric` call in a process.

The contract every shipped metric keeps: ``compute(predictions=..., references=...)``
returns the score under the metric's own name, in [0, 1] (0.0 for empty input), and
``item_scores``, one value in [0, 1] per item, where 1.0 means the item is entirely
right (the evaluator shows items below 1.0 to the agent as error samples). Predictions
are what the task's ``extract_answer`` returned, ``None`` when the output missed the
answer format. References are strings; metrics that need more than a string to score
an item (the molecule to edit, the data a chart must show) take a JSON document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ftdojo.errors import ConfigError

if TYPE_CHECKING:
    import evaluate

__all__ = ["available_metrics", "load_metric", "metric_path"]

_HERE = Path(__file__).resolve().parent


def available_metrics() -> tuple[str, ...]:
    """Names of the metrics shipped in this package, sorted."""
    return tuple(sorted(p.name for p in _HERE.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file()))


def metric_path(name: str) -> Path:
    """The directory of metric ``name`` (what ``evaluate.load`` takes as its path).

    Raises :class:`ftdojo.errors.ConfigError` listing the available metrics for an
    unknown name; only shipped names are accepted, so a name cannot point elsewhere
    on disk (``"../x"``).
    """
    available = available_metrics()
    if name not in available:
        raise ConfigError(f"unknown metric {name!r}; available metrics: {', '.join(available) or '(none)'}")
    return _HERE / name


def load_metric(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    keep_in_memory: bool = True,
) -> evaluate.EvaluationModule:
    """Load the shipped metric ``name`` with ``evaluate``, from its path (no network).

    ``cache_dir`` is where the module keeps predictions and references while it
    computes (``evaluate``'s default is under ``$HF_HOME``); with ``keep_in_memory``
    (the default) nothing is written there, which also avoids file locks between
    concurrent workers. Where the script itself is copied is set by the environment,
    see the module docstring.
    """
    path = metric_path(name)
    import evaluate  # lazy: pulls in datasets and torch

    return evaluate.load(
        str(path),
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        keep_in_memory=keep_in_memory,
    )
