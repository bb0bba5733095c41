"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures (mean over examples), on the rouge-score package."""

import datasets
import evaluate
from rouge_score import rouge_scorer

TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE F-measures with Porter stemming; rougeLsum splits summaries on newlines.",
            citation="Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description="predictions: list of str; references: list of str. use_stemmer (default True).",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, use_stemmer=True):
        scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=use_stemmer)
        totals = dict.fromkeys(TYPES, 0.0)
        for prediction, reference in zip(predictions, references):
            scores = scorer.score(reference, prediction)
            for key in TYPES:
                totals[key] += scores[key].fmeasure
        n = max(len(predictions), 1)
        return {key: value / n for key, value in totals.items()}
