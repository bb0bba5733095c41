"""Sentiment: binary (or graded) text classification with a sentiment model by default."""

from __future__ import annotations

from .classification import Classification, ClassificationTraining
from .registry import register


class SentimentTraining(ClassificationTraining):
    sample_file = "sentiment.csv"


@register
class Sentiment(Classification):
    """`{"label": "POSITIVE", "score": 0.998}` per text, from a model fine-tuned for sentiment.

    The default is the SST-2 DistilBERT the transformers 4 `sentiment-analysis` pipeline used. Any
    sequence classifier works, e.g. the output folder of `hfapps train recipes/sentiment.yaml`.
    """

    name = "sentiment"
    aliases = ("sentiment-analysis",)
    command = "sentiment"
    default_model = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    training = SentimentTraining

    zero_shot = None
