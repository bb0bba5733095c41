"""The tasks hfapps knows. Each task module registers its `Task` (or, for a task with no helper, its
`TaskTraining`) with `@register`; the helpers, the command line, `hfapps evaluate` and `hfapps train` read
these mappings and nothing else, so a new task is one module and one recipe."""

from __future__ import annotations

from typing import TypeVar

from ..errors import InputError
from .base import Task
from .training import TaskTraining

#: Helper tasks by name.
TASKS: dict[str, type[Task]] = {}
#: What `hfapps train` can train, by recipe `task:`.
TRAINING: dict[str, type[TaskTraining]] = {}
#: Every name `hfapps.load` takes (aliases, commands) -> the task's name.
NAMES: dict[str, str] = {}

T = TypeVar("T", bound=type)


def register(cls: T) -> T:
    """Make a task known everywhere; used as a class decorator in each task module."""
    if issubclass(cls, Task):
        TASKS[cls.name] = cls
        for name in (cls.name, *cls.aliases, *([cls.command] if cls.command else [])):
            NAMES[name] = cls.name
        if cls.training is not None:
            TRAINING[cls.name] = cls.training
            if cls.training.__dict__.get("helper") is None:  # its own, not one inherited from a parent's training
                cls.training.helper = cls
    elif issubclass(cls, TaskTraining) and cls.name:
        TRAINING[cls.name] = cls
    else:
        raise TypeError(f"register() takes a Task subclass, or a TaskTraining subclass with a name; got {cls!r}.")
    return cls


def unregister(name: str) -> None:
    """Forget a task (tests register toy tasks)."""
    task = TASKS.pop(name, None)
    training = TRAINING.pop(name, None)
    if task is not None and training is not None and training.__dict__.get("helper") is task:
        training.helper = None
    for alias in [alias for alias, target in NAMES.items() if target == name]:
        del NAMES[alias]


def task_class(name: str) -> type[Task]:
    """The task called `name` (or one of its aliases)."""
    if name not in NAMES:
        raise InputError(
            f"Unknown task {name!r}; choose one of {', '.join(sorted(TASKS))} "
            f"(or an alias: {', '.join(sorted(set(NAMES) - set(TASKS)))})."
        )
    return TASKS[NAMES[name]]


def commands() -> dict[str, type[Task]]:
    """The `hfapps` subcommands that run a task."""
    return {cls.command: cls for cls in TASKS.values() if cls.command}
