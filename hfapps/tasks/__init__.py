"""One module per task. `TASKS` maps the names `hfapps.load` takes to their classes; `TRAINING` maps
the `task:` of a recipe to what that task adds to the training runner."""

from __future__ import annotations

from .base import Task
from .classification import Classification, ClassificationTraining
from .masked_lm import MaskedLMTraining
from .question_answering import QuestionAnswering, QuestionAnsweringTraining
from .sentiment import Sentiment, SentimentTraining
from .summarization import Summarization, SummarizationTraining
from .training import TaskTraining
from .translation import Translation, TranslationTraining
from .zero_shot import ZeroShot

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (Sentiment, Classification, ZeroShot, Summarization, Translation, QuestionAnswering)
}

TRAINING: dict[str, type[TaskTraining]] = {
    "sentiment": SentimentTraining,
    "classification": ClassificationTraining,
    "summarization": SummarizationTraining,
    "translation": TranslationTraining,
    "question-answering": QuestionAnsweringTraining,
    "mlm": MaskedLMTraining,
}

__all__ = ["TASKS", "TRAINING", "Task", "TaskTraining", *(cls.__name__ for cls in TASKS.values())]
