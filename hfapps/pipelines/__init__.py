"""transformers Pipelines for the tasks transformers 5 removed, registered under new names.

Importing this module registers them, after which `transformers.pipeline("hfapps-summarization",
model=...)`, `"hfapps-translation"` and `"hfapps-question-answering"` work.
"""

from __future__ import annotations

from transformers import AutoModelForQuestionAnswering, AutoModelForSeq2SeqLM
from transformers.pipelines import PIPELINE_REGISTRY

from .question_answering import QuestionAnsweringPipeline
from .text2text import SummarizationPipeline, Text2TextPipeline, TranslationPipeline

PIPELINES = {
    "hfapps-summarization": (SummarizationPipeline, AutoModelForSeq2SeqLM),
    "hfapps-translation": (TranslationPipeline, AutoModelForSeq2SeqLM),
    "hfapps-question-answering": (QuestionAnsweringPipeline, AutoModelForQuestionAnswering),
}


def register() -> None:
    """Register hfapps' pipelines with transformers (idempotent)."""
    for name, (pipeline_class, model_class) in PIPELINES.items():
        if name not in PIPELINE_REGISTRY.supported_tasks:
            PIPELINE_REGISTRY.register_pipeline(name, pipeline_class=pipeline_class, pt_model=model_class, type="text")


register()

__all__ = ["QuestionAnsweringPipeline", "SummarizationPipeline", "Text2TextPipeline", "TranslationPipeline", "register"]
