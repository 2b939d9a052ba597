"""A run directory read back from its journal, for tools that work on finished runs.

Exporting a model and logging a run to an experiment tracker both need the same facts:
the task, the model, the budget, every trial, the final trial, its held-out score and
the base model's scores. They all live in ``journal.jsonl`` (``result.json`` is only a
summary of a finished run); this module reads them through the journal's one
:func:`~ftdojo.journal.replay`, for finished, resumed and killed runs alike. It never
imports torch.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ftdojo.errors import JournalError, ModelError
from ftdojo.journal import RunRecord, best_validated, replay

__all__ = ["RunRecord", "best_validated", "plain_files", "read_run", "trial_model_dir"]


def read_run(run_dir: Path | str) -> RunRecord:
    """Read ``run_dir/journal.jsonl``; :class:`JournalError` when it is not a run directory."""
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise JournalError(f"{run_dir} is not a directory")
    journal = run_dir / "journal.jsonl"
    if not journal.is_file():
        raise JournalError(f"{run_dir} is not a run directory: it has no journal.jsonl")
    return replay(journal)


def trial_model_dir(run: RunRecord, trial_id: str) -> Path:
    """Where trial ``trial_id`` saved its model or adapter (as ``jobs/train.py`` writes it)."""
    return run.run_dir / "trials" / trial_id / "model"


def plain_files(folder: Path) -> list[Path]:
    """The files of a flat model folder; :class:`ModelError` for a link or anything but a file.

    A trial's job wrote the folder: a symbolic or hard link in it could make a tool that
    copies it (into an export or a tracking store) copy a file the job could not read.
    """
    try:
        info = os.lstat(folder)
    except FileNotFoundError as exc:
        raise ModelError(f"{folder} does not exist: the trial saved no model") from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ModelError(f"{folder} is not a plain folder")
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        entry_info = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(entry_info.st_mode):
            raise ModelError(f"{entry.path} is a symbolic link")
        if not stat.S_ISREG(entry_info.st_mode):
            raise ModelError(f"{entry.path} is not a plain file")
        if entry_info.st_nlink != 1:
            raise ModelError(f"{entry.path} is a hard link ({entry_info.st_nlink} names)")
        files.append(Path(entry.path))
    return files
