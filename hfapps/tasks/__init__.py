"""One module per task. Importing this package registers the built-in tasks (see `registry`)."""

from __future__ import annotations

from . import (
    causal_lm,
    chat,
    classification,
    embedding,
    generation,
    instruction,
    masked_lm,
    question_answering,
    reranking,
    sentiment,
    summarization,
    translation,
    zero_shot,
)
from .base import Task
from .registry import NAMES, TASKS, TRAINING, commands, register, task_class, unregister
from .training import TaskTraining

del (
    causal_lm,
    chat,
    classification,
    embedding,
    generation,
    instruction,
    masked_lm,
    question_answering,
    reranking,
    sentiment,
    summarization,
    translation,
    zero_shot,
)

__all__ = ["NAMES", "TASKS", "TRAINING", "Task", "TaskTraining", "commands", "register", "task_class", "unregister"]
