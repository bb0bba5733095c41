"""Corpus BLEU with sacreBLEU's standard settings (13a tokenisation), against your own references."""

import datasets
import evaluate
import sacrebleu as scb


class SacreBleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="sacreBLEU corpus score (0-100), one reference per prediction.",
            citation="Post, 2018. A Call for Clarity in Reporting BLEU Scores.",
            inputs_description="predictions: list of str; references: list of str.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False):
        result = scb.corpus_bleu(predictions, [references], tokenize=tokenize, lowercase=lowercase)
        return {"bleu": result.score, "precisions": list(result.precisions), "brevity_penalty": result.bp}
