"""One module per task. `TASKS` maps the names `hfapps.load` takes to their classes."""

from __future__ import annotations

from .base import Task
from .classification import Classification
from .question_answering import QuestionAnswering
from .sentiment import Sentiment
from .summarization import Summarization
from .translation import Translation
from .zero_shot import ZeroShot

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Sentiment, Classification, ZeroShot, Summarization, Translation, QuestionAnswering)
}

__all__ = ["TASKS", "Task", *(cls.__name__ for cls in TASKS.values())]
