"""The offline metrics: each agrees with the library it stands in for."""

import random

import pytest

from hfapps import metrics

from conftest import need_module


@pytest.fixture(scope="module")
def labels():
    rng = random.Random(0)
    references = [rng.randrange(4) for _ in range(200)]
    predictions = [r if rng.random() < 0.6 else rng.randrange(4) for r in references]
    return predictions, references


def test_accuracy_precision_recall_f1_match_scikit_learn(labels):
    sklearn = need_module("sklearn.metrics")
    predictions, references = labels
    acc = metrics.load("accuracy").compute(predictions=predictions, references=references)["accuracy"]
    assert acc == pytest.approx(sklearn.accuracy_score(references, predictions))
    ours = metrics.load("precision_recall_f1").compute(predictions=predictions, references=references)
    p, r, f, support = sklearn.precision_recall_fscore_support(references, predictions, average=None)
    for i in range(4):
        assert ours["per_class"][i]["precision"] == pytest.approx(p[i])
        assert ours["per_class"][i]["recall"] == pytest.approx(r[i])
        assert ours["per_class"][i]["f1"] == pytest.approx(f[i])
        assert ours["per_class"][i]["support"] == support[i]
    assert ours["f1"] == pytest.approx(sklearn.f1_score(references, predictions, average="macro"))
    assert ours["precision"] == pytest.approx(sklearn.precision_score(references, predictions, average="macro"))


def test_class_never_predicted_counts_as_zero_like_scikit_learn():
    sklearn = need_module("sklearn.metrics")
    predictions, references = [0, 0, 0, 1], [0, 1, 2, 1]
    ours = metrics.load("precision_recall_f1").compute(predictions=predictions, references=references, num_labels=3)
    assert ours["f1"] == pytest.approx(sklearn.f1_score(references, predictions, average="macro", zero_division=0))


def test_confusion_matrix_matches_scikit_learn(labels):
    sklearn = need_module("sklearn.metrics")
    predictions, references = labels
    ours = metrics.load("confusion_matrix").compute(predictions=predictions, references=references)
    assert ours["confusion_matrix"] == sklearn.confusion_matrix(references, predictions).tolist()
    padded = metrics.load("confusion_matrix").compute(predictions=[0], references=[0], num_labels=3)
    assert padded["confusion_matrix"] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


PREDICTIONS = ["the cat sat on the mat", "a quick brown fox jumps", "hello there general kenobi", "nothing matches"]


REFERENCES = ["the cat was sitting on the mat", "the quick brown fox jumped over", "hello there", "entirely different"]


def test_rouge_matches_rouge_score_directly():
    from rouge_score import rouge_scorer

    ours = metrics.load("rouge").compute(predictions=PREDICTIONS, references=REFERENCES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    scores = [scorer.score(r, p) for p, r in zip(PREDICTIONS, REFERENCES)]
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert ours[key] == pytest.approx(sum(s[key].fmeasure for s in scores) / len(scores))
    assert 0 < ours["rouge2"] < ours["rouge1"] < 1


def test_bleu_and_chrf_match_sacrebleu_directly():
    import sacrebleu

    bleu = metrics.load("sacrebleu").compute(predictions=PREDICTIONS, references=REFERENCES)
    assert bleu["bleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)
    chrf = metrics.load("chrf").compute(predictions=PREDICTIONS, references=REFERENCES)
    assert chrf["chrf"] == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score)
    perfect = metrics.load("sacrebleu").compute(predictions=REFERENCES, references=REFERENCES)
    assert perfect["bleu"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    "prediction, answers, em, f1",
    [
        ("The Eiffel Tower", ["Eiffel Tower"], 100.0, 100.0),  # article and case dropped
        ("eiffel tower!", ["the Eiffel Tower."], 100.0, 100.0),  # punctuation dropped
        ("in Paris, France", ["Paris"], 0.0, 50.0),  # P=1/3, R=1: F1 = 2PR/(P+R) = 1/2
        ("London", ["Paris", "the city of Paris"], 0.0, 0.0),
        ("city of Paris", ["Paris", "the city of Paris"], 100.0, 100.0),  # best over gold answers
        ("Paris Paris", ["Paris"], 0.0, 100 * 2 * (1 / 2) / (1 / 2 + 1)),  # counts are clipped: P=1/2, R=1
    ],
)
def test_squad_hand_worked_cases(prediction, answers, em, f1):
    scores = metrics.load("squad").compute(predictions=[prediction], references=[answers])
    assert scores["exact_match"] == pytest.approx(em)
    assert scores["f1"] == pytest.approx(f1)


def test_squad_averages_over_questions():
    scores = metrics.load("squad").compute(predictions=["Paris", "London"], references=[["Paris"], ["Rome"]])
    assert scores == {"exact_match": 50.0, "f1": 50.0}


def test_unknown_metric_names_the_ones_there_are():
    with pytest.raises(ValueError, match="rouge"):
        metrics.path("bertscore")
