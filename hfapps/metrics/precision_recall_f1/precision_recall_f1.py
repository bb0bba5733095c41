"""Precision, recall and F1: macro averages over the classes, and per class."""

import datasets
import evaluate

_KWARGS = (
    "predictions, references: lists of int labels. num_labels (optional): count classes absent from both. "
    "Returns precision/recall/f1 (macro) and per_class: {label: {precision, recall, f1, support}}."
)


class PrecisionRecallF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Macro and per-class precision, recall and F1 (a class never predicted has precision 0).",
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels=None):
        labels = sorted(set(references) | set(predictions) | set(range(num_labels or 0)))
        per_class = {}
        for label in labels:
            tp = sum(1 for p, r in zip(predictions, references) if p == label and r == label)
            fp = sum(1 for p, r in zip(predictions, references) if p == label and r != label)
            fn = sum(1 for p, r in zip(predictions, references) if p != label and r == label)
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
        n = len(labels) or 1
        return {
            "precision": sum(c["precision"] for c in per_class.values()) / n,
            "recall": sum(c["recall"] for c in per_class.values()) / n,
            "f1": sum(c["f1"] for c in per_class.values()) / n,
            "per_class": per_class,
        }
