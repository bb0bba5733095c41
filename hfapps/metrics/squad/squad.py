"""SQuAD v1.1 exact match and F1 (0-100), with the official answer normalisation."""

import collections
import re
import string

import datasets
import evaluate


def normalize_answer(text):
    """Lower-case, drop punctuation, articles (a, an, the) and extra whitespace, as the SQuAD v1.1 script does."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction, truth):
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


class Squad(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="SQuAD v1.1: per question, the best EM and F1 over its gold answers; averaged, x100.",
            citation="Rajpurkar et al., 2016. SQuAD: 100,000+ Questions for Machine Comprehension of Text.",
            inputs_description="predictions: list of str; references: list of lists of str (the gold answers).",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, predictions, references):
        n = max(len(predictions), 1)
        em = sum(max(exact_match(p, t) for t in truths) for p, truths in zip(predictions, references))
        f = sum(max(f1(p, t) for t in truths) for p, truths in zip(predictions, references))
        return {"exact_match": 100.0 * em / n, "f1": 100.0 * f / n}
