"""Reranking with a cross-encoder: one relevance score per (query, document) pair, read together by one model.

A cross-encoder is a sequence classifier over the pair (`...ForSequenceClassification` with one label, as
sentence-transformers' `CrossEncoder` saves it): its logit through a sigmoid is the score, as `CrossEncoder.predict`
gives it; a two-label model scores by the probability of its last label. `hfapps.rerank(query, documents)` sorts a
query's documents by it; `Index.search(..., rerank=...)` rereads the first hits with it. No cross-encoder ships
offline: `hfapps train recipes/reranker.yaml` trains one from MiniLM.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForSequenceClassification

from .. import models
from ..errors import DataError, InputError
from ..inference.inputs import check_text
from . import samples
from .base import Task
from .embedding import Lazy, mine_bm25
from .registry import register
from .training import TaskTraining

if TYPE_CHECKING:
    import argparse


#: Hard negatives mined per question (from the first `MINING_DEPTH` of BM25's ranking).
NEGATIVES = 3
#: Paragraphs besides its own that each sample question is ranked against when an export is verified.
SAMPLE_OTHERS = 3


class CrossEncoderLoader:
    """What the runner loads a model with: a sentence-transformers CrossEncoder with one output (a new head on a
    bi-encoder such as MiniLM), no model code unless asked."""

    @staticmethod
    def from_pretrained(path: str, *, trust_remote_code: bool = False, **_: Any) -> Any:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(path, num_labels=1, device="cpu", trust_remote_code=trust_remote_code)


class RerankingTraining(TaskTraining):
    """Train a cross-encoder on (question, passage, label) with sentence-transformers' CrossEncoderTrainer and
    BinaryCrossEntropyLoss: each question's own passage is the positive, the passages BM25 ranks highest for it
    (but are not its own) are hard negatives. SQuAD-format files give (question, paragraph) pairs; scored by
    CrossEncoderRerankingEvaluator (MRR@10, nDCG@10 of each validation question's mined candidates)."""

    auto_model = CrossEncoderLoader
    sample_file = "qa.json"
    sample_columns = {"question": "question_column", "context": "context_column"}
    trainer_class = Lazy("hfapps.tasks.reranking:reranking_trainer")
    arguments_class = Lazy("sentence_transformers:CrossEncoderTrainingArguments")

    def columns(self) -> list[str]:
        return ["query", "passage", "label"]

    def prepare(self, splits: Any) -> Any:
        from datasets import Dataset, DatasetDict

        question, context = self.args.question_column, self.args.context_column
        prepared = {}
        for name, split in splits.items():
            for column in (question, context):
                if column not in split.column_names:
                    raise DataError(f"The {name} split has no {column!r} column; its columns are {split.column_names}.")
            questions, passages = list(split[question]), list(split[context])
            if len(set(passages)) < 2:
                raise DataError(f"The {name} split has one passage only; hard negatives need several.")
            rows: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
            for q, own, mined in zip(questions, passages, mine_bm25(questions, passages)):
                negatives = [passages[j] for j in mined if passages[j] != own][:NEGATIVES]
                for text, label in [(own, 1.0)] + [(n, 0.0) for n in negatives]:
                    rows["query"].append(q)
                    rows["passage"].append(text)
                    rows["label"].append(label)
            prepared[name] = Dataset.from_dict(rows)
        return DatasetDict(prepared)

    def configure(self, model: Any) -> None:
        model.config = model.model.config  # what the runner reads (model.config) of any model
        model.max_length = self.args.max_seq_length

    def tokenize(self, split: Any, tokenizer: Any, model_config: Any) -> Any:
        return split  # the trainer tokenises each batch itself

    def collator(self, tokenizer: Any, model: Any) -> Any:
        return None

    def scorable(self) -> bool:
        return False  # the reranking evaluator's MRR and nDCG are the scores

    def meta(self, tokenizer: Any, model_config: Any) -> dict[str, Any]:
        return {"task": "reranking"}


def evaluation_samples(dataset: Any) -> list[dict[str, Any]]:
    """The reranking evaluator's samples from prepared (query, passage, label) rows: each query with its positives
    and its candidates in a fixed shuffled order. Listed positive first, a model that scores every pair alike (an
    untrained head) would rank each positive first and score a perfect MRR, since ties keep their order."""
    candidates: dict[str, dict[str, list[str]]] = {}
    for query, passage, label in zip(dataset["query"], dataset["passage"], dataset["label"]):
        entry = candidates.setdefault(query, {"positive": [], "documents": []})
        entry["documents"].append(passage)
        if label > 0.5:
            entry["positive"].append(passage)
    for query, entry in candidates.items():
        random.Random(query).shuffle(entry["documents"])
    return [{"query": query, **entry} for query, entry in candidates.items()]


def reranking_trainer() -> type:
    """A CrossEncoderTrainer that the runner builds as it builds a Trainer, with its loss and evaluator."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    class RerankingTrainer(CrossEncoderTrainer):
        def __init__(self, *, model, args, train_dataset, eval_dataset, callbacks=None, **_: Any) -> None:
            evaluator = CrossEncoderRerankingEvaluator(
                samples=evaluation_samples(eval_dataset), name="validation", write_csv=False
            )
            super().__init__(
                model=model,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                loss=BinaryCrossEntropyLoss(model),
                evaluator=evaluator,
                callbacks=callbacks,
            )

    return RerankingTrainer


@register
class Reranking(Task):
    """A float relevance score per `{"query", "document"}` (or `(query, document)`) pair, higher is more relevant."""

    name = "reranking"
    aliases = ("rerank", "cross-encoder", "text-ranking")
    command = "rerank"
    default_model = "cross-encoder/ms-marco-MiniLM-L6-v2"
    what = "pair"
    training = RerankingTraining
    input_fields = ("query", "document")
    export_format = "onnx"

    @classmethod
    def claims(cls, config: Any) -> int:
        """A sequence classifier with one output (a cross-encoder's relevance logit) exports as a reranker, before
        classification claims it."""
        one_label = int(getattr(config, "num_labels", 2)) == 1
        return 2 if one_label and models.has_head(config, "ForSequenceClassification") else 0

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForSequenceClassification

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        """Each sample question with its own paragraph and the next `SAMPLE_OTHERS` paragraphs of the sample: an
        export's ranking of each question's candidates is compared with its source's."""
        found = samples.questions()[: samples.CARD_QUESTIONS]
        paragraphs = sorted({q["context"] for q in samples.questions()})
        inputs = []
        for q in found:
            own = paragraphs.index(q["context"])
            for step in range(SAMPLE_OTHERS + 1):
                inputs.append({"query": q["question"], "document": paragraphs[(own + step) % len(paragraphs)]})
        return inputs, {}

    @classmethod
    def calibration_inputs(cls, path: str | os.PathLike | None = None) -> tuple[list[Any], str]:
        if path is None:
            found = samples.questions()[samples.CARD_QUESTIONS :]
            return [(q["question"], q["context"]) for q in found], samples.SAMPLE_DATA
        return super().calibration_inputs(path)

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config,
            self.ref,
            suffixes=("ForSequenceClassification",),
            task="reranking",
            hint="Pass a cross-encoder (a sequence classifier over (query, document) pairs), or train one with "
            "`hfapps train recipes/reranker.yaml`.",
        )
        self.model = self._load(AutoModelForSequenceClassification, allow_pickle=allow_pickle).eval()
        self.labels = int(getattr(self.config, "num_labels", 1))

    def _check(self, item: Any, index: int | None) -> tuple[str, str]:
        where = "" if index is None else f" at index {index}"
        if isinstance(item, dict) and {"query", "document"} <= item.keys():
            query, document = item["query"], item["document"]
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            query, document = item
        else:
            raise InputError(
                f"Each reranking input{where} is {{'query': ..., 'document': ...}} or a (query, document) pair, "
                f"got {item!r:.80}."
            )
        return check_text(query, index, what="query"), check_text(document, index, what="document")

    def _text_of(self, item: tuple[str, str]) -> str:
        return item[0] + " " + item[1]

    def _predict(self, batch: list[tuple[str, str]], options: Any) -> list[float]:
        encoded = self.tokenizer(
            [q for q, _ in batch],
            [d for _, d in batch],
            padding=True,
            truncation="longest_first",
            max_length=min(self.max_input_tokens, 512),
            return_tensors="pt",
        ).to(self.device)
        logits = self.model(**encoded).logits.float()
        scores = torch.sigmoid(logits[:, 0]) if self.labels == 1 else torch.softmax(logits, dim=-1)[:, -1]
        return [float(s) for s in scores.cpu()]

    # -- the command line: one query, several documents -----------------------------------------------

    @classmethod
    def add_input_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("documents", nargs="*", help="documents to score against --query (or use --input)")
        parser.add_argument("--query", help="the query the documents are scored against")
        parser.add_argument("--query-column", default="query", help="column holding the query in --input")
        parser.add_argument("--document-column", default="document", help="column holding the document in --input")

    @classmethod
    def input_columns(cls, args: argparse.Namespace) -> tuple[str, ...]:
        return (args.document_column, args.query_column)

    @classmethod
    def rows_from_arguments(cls, args: argparse.Namespace) -> list[dict[str, Any]]:
        if not args.query or not args.documents:
            raise InputError("rerank needs --query and documents, or --input with query/document columns.")
        return [{args.query_column: args.query, args.document_column: d} for d in args.documents]

    @classmethod
    def input_of(cls, row: dict[str, Any], args: argparse.Namespace) -> Any:
        return {"query": row[args.query_column], "document": row[args.document_column]}
