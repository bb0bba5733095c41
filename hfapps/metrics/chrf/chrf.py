"""chrF (character n-gram F-score) with sacreBLEU's defaults; `word_order=2` gives chrF++."""

import datasets
import evaluate
import sacrebleu as scb


class Chrf(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="sacreBLEU chrF corpus score (0-100), one reference per prediction.",
            citation="Popovic, 2015. chrF: character n-gram F-score for automatic MT evaluation.",
            inputs_description="predictions: list of str; references: list of str; word_order (0 = chrF, 2 = chrF++).",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, word_order=0):
        return {"chrf": scb.corpus_chrf(predictions, [references], word_order=word_order).score}
