"""Accuracy: the fraction of predictions equal to their reference."""

import datasets
import evaluate

_DESCRIPTION = "Accuracy = correct predictions / all predictions."
_KWARGS = "predictions: list of int labels; references: list of int labels. Returns {'accuracy': float}."


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if not references:
            raise ValueError("accuracy needs at least one prediction")
        correct = sum(int(p == r) for p, r in zip(predictions, references))
        return {"accuracy": correct / len(references)}
