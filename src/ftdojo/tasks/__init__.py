"""Tasks: the built-in suite, hub datasets, entry-point plugins (group ``ftdojo.tasks``), folders."""

from ftdojo.tasks.registry import SUITE, available_tasks, get_task, register_task
from ftdojo.tasks.spec import EvalItem, Example, RawSource, Task, TaskSpec, normalize_text

__all__ = [
    "SUITE",
    "EvalItem",
    "Example",
    "RawSource",
    "Task",
    "TaskSpec",
    "available_tasks",
    "get_task",
    "normalize_text",
    "register_task",
]
