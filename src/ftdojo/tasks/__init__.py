"""The task registry: built-in tasks, entry-point plugins (group ``ftdojo.tasks``)."""

from ftdojo.tasks.registry import available_tasks, get_task, register_task
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec

__all__ = ["EvalItem", "Example", "RawSource", "TaskSpec", "available_tasks", "get_task", "register_task"]
