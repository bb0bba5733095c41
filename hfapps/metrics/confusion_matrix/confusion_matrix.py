"""Confusion matrix: rows are the true labels, columns the predicted ones."""

import datasets
import evaluate


class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="matrix[i][j] = how many examples of true label i were predicted as label j.",
            citation="",
            inputs_description="predictions, references: lists of int labels; num_labels (optional).",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels=None):
        size = max([num_labels or 0, *(p + 1 for p in predictions), *(r + 1 for r in references)])
        matrix = [[0] * size for _ in range(size)]
        for p, r in zip(predictions, references):
            matrix[r][p] += 1
        return {"confusion_matrix": matrix}
