"""Sentence embeddings: one float32 vector per text, pooled and normalised as the model's own folder says.

A sentence-transformers folder (or Hub id) describes its pipeline in `modules.json`: the transformer, then
`1_Pooling/config.json` (mean, CLS, max, last token), then an optional `Normalize`; `sentence_bert_config.json`
holds the longest input and `config_sentence_transformers.json` the named prompts ("query: "). hfapps reads
those files and runs the encoder itself, so embeddings get the helpers' length-sorted token-budget batching,
input rules and exports; a plain encoder without them gets mean pooling and no normalisation. The vectors equal
`SentenceTransformer(folder).encode(texts)` (tests/tasks/test_embedding.py runs both).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoModel

from .. import models
from ..errors import DataError, InputError, TaskMismatchError
from . import samples
from .base import Task
from .call_options import option
from .registry import register
from .training import TaskTraining

#: The module types of `modules.json` that hfapps runs itself (old and new sentence-transformers names).
TRANSFORMER = ("Transformer",)
POOLING = ("Pooling",)
NORMALIZE = ("Normalize",)
#: The files of a sentence-transformers folder that describe its pipeline (modules.json first), and those of a
#: module's own folder (pooling, normalisation), which an export carries.
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
MODULE_FILES = ("config.json",)
#: Pooling modes hfapps implements, by the key of `1_Pooling/config.json` that turns each on.
POOLING_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class EmbeddingOptions:
    prompt_name: str | None = option(
        None, help="one of the model's named prompts (config_sentence_transformers.json), e.g. query or document"
    )
    prompt: str | None = option(None, help="text put before every input (e.g. 'query: '); overrides prompt_name")


@dataclass(frozen=True)
class Layout:
    """What a sentence-transformers folder asks for beyond its encoder (a plain encoder: mean, not normalised)."""

    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    include_prompt: bool = True
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    sentence_transformers: bool = False


def _file(ref: models.ModelRef, name: str) -> str | None:
    """A file of the model's folder (local, or from the Hub cache), or None when it has none."""
    if ref.is_local:
        path = os.path.join(ref.path, name)
        return path if os.path.isfile(path) else None
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(ref.path, name)
    except Exception:  # noqa: BLE001 - a missing optional file, offline or online, means "not a module of it"
        return None


def _json(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        loaded = json.load(f)
    return loaded if isinstance(loaded, dict) else {}


def read_layout(ref: models.ModelRef) -> Layout:
    """The pooling, normalisation, length and prompts a model folder declares (`modules.json` and friends)."""
    modules_path = _file(ref, "modules.json")
    if modules_path is None:
        return Layout()
    with open(modules_path, encoding="utf-8") as f:
        modules = json.load(f)
    pooling, normalize, include_prompt = "mean", False, True
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind in TRANSFORMER:
            if module.get("path", "") not in ("", "0_Transformer"):
                raise TaskMismatchError(f"{ref.name!r}: a transformer module in {module['path']!r} is not supported.")
        elif kind in POOLING:
            config = _json(_file(ref, f"{module['path']}/config.json"))
            modes = [mode for key, mode in POOLING_MODES.items() if config.get(key)]
            if config.get("pooling_mode"):  # newer folders name the mode instead of switching it on
                modes = [str(config["pooling_mode"]).removesuffix("_tokens").removesuffix("_token")]
            if len(modes) != 1 or modes[0] not in POOLING_MODES.values():
                raise TaskMismatchError(
                    f"{ref.name!r} pools its tokens as {modes or 'nothing'}; hfapps embeds with exactly one of "
                    f"{', '.join(POOLING_MODES.values())}. Use sentence-transformers itself for this model."
                )
            pooling = modes[0]
            include_prompt = bool(config.get("include_prompt", True))
        elif kind in NORMALIZE:
            normalize = True
        else:
            raise TaskMismatchError(
                f"{ref.name!r} has a {kind} module, which hfapps does not run (it runs Transformer, Pooling and "
                "Normalize). Use sentence-transformers itself for this model."
            )
    bert = _json(_file(ref, "sentence_bert_config.json"))
    st = _json(_file(ref, "config_sentence_transformers.json"))
    prompts = tuple(sorted((str(k), str(v)) for k, v in (st.get("prompts") or {}).items()))
    return Layout(
        pooling=pooling,
        normalize=normalize,
        max_seq_length=bert.get("max_seq_length"),
        do_lower_case=bool(bert.get("do_lower_case", False)),
        include_prompt=include_prompt,
        prompts=prompts,
        default_prompt_name=st.get("default_prompt_name"),
        sentence_transformers=True,
    )


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One vector per row of `hidden` (batch, tokens, width) from the tokens `mask` keeps."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
    if mode == "lasttoken":  # the last kept token of each row, wherever the padding is
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return summed / (counts.sqrt() if mode == "mean_sqrt_len" else counts)


def fingerprint(ref: models.ModelRef) -> str:
    """A short hash of the model's weights, config and sentence-transformers modules: the same embedding wherever
    its folder is, another one (a fine-tuned model under the same name, or other pooling) otherwise."""
    digest = hashlib.sha256()
    names = ["config.json", "model.safetensors", "model.onnx", "pytorch_model.bin", "modules.json"]
    names += ["sentence_bert_config.json", "1_Pooling/config.json"]
    for name in names:
        path = _file(ref, name)
        if path is None:
            continue
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


class Lazy:
    """A class attribute imported on first use ("module:name", called when it names a function): sentence-transformers
    loads only when something trains, and importing hfapps stays cheap."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __get__(self, instance: Any, owner: Any) -> Any:
        import importlib

        module, _, name = self.target.partition(":")
        found = getattr(importlib.import_module(module), name)
        return found() if callable(found) and not isinstance(found, type) else found


class SentenceTransformerLoader:
    """What the runner loads a model with (`auto_model.from_pretrained`): a sentence-transformers model, its pooling
    and normalisation from the folder (a plain encoder gets mean pooling), in float32 on the CPU until the Trainer
    moves it. hfapps' safety rules hold: no model code unless asked."""

    @staticmethod
    def from_pretrained(path: str, *, trust_remote_code: bool = False, **_: Any) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(path, device="cpu", trust_remote_code=trust_remote_code)


#: How deep in BM25's ranking hard negatives are drawn from.
MINING_DEPTH = 10


def mine_bm25(questions: list[str], passages: list[str], k: int = MINING_DEPTH) -> list[list[int]]:
    """For each question, the indices of the `k` passages BM25 (bm25s, English stop words) ranks first."""
    import bm25s

    unique = list(dict.fromkeys(passages))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(unique, stopwords="en", show_progress=False), show_progress=False)
    found, _ = retriever.retrieve(
        bm25s.tokenize(questions, stopwords="en", show_progress=False), k=min(k, len(unique)), show_progress=False
    )
    where = {text: passages.index(text) for text in unique}
    return [[where[unique[j]] for j in row] for row in found.tolist()]


class EmbeddingTraining(TaskTraining):
    """Fine-tune an embedder on (query, passage) pairs with sentence-transformers' trainer: in-batch negatives
    (MultipleNegativesRankingLoss, no duplicate texts in a batch), scored by its InformationRetrievalEvaluator on
    the validation pairs (each query against every validation passage). SQuAD-format files give (question,
    paragraph) pairs; other files name their columns with question_column / context_column."""

    auto_model = SentenceTransformerLoader
    sample_file = "qa.json"
    sample_columns = {"question": "question_column", "context": "context_column"}

    trainer_class = Lazy("hfapps.tasks.embedding:embedding_trainer")
    arguments_class = Lazy("sentence_transformers:SentenceTransformerTrainingArguments")

    def columns(self) -> list[str]:
        return [self.args.question_column, self.args.context_column]

    def prepare(self, splits: Any) -> Any:
        """With `hard_negatives: N`, each training pair gains N passages of the training file that BM25 ranks high
        for its query but are not its own (columns negative_1..N): MultipleNegativesRankingLoss then tells the
        passage from its look-alikes, not only from random batch mates."""
        count = self.args.hard_negatives
        if count < 0:
            raise DataError(f"hard_negatives is {count}; give 0 (in-batch negatives only) or more.")
        if not count or "train" not in splits:
            return splits
        question, context = self.columns()
        train = splits["train"]
        for column in (question, context):
            if column not in train.column_names:
                raise DataError(f"The train split has no {column!r} column; its columns are {train.column_names}.")
        questions, passages = list(train[question]), list(train[context])
        if len(set(passages)) <= count:
            raise DataError(
                f"hard_negatives: {count} needs more than {count} distinct passages in the train split, which has "
                f"{len(set(passages))}; lower hard_negatives or add passages."
            )
        negatives: list[list[str]] = []
        for own, mined in zip(passages, mine_bm25(questions, passages, k=max(MINING_DEPTH, 2 * count + 1))):
            found = list(dict.fromkeys(passages[j] for j in mined if passages[j] != own))[:count]
            others = (p for p in dict.fromkeys(passages) if p != own and p not in found)
            negatives.append(found + [next(others) for _ in range(count - len(found))])
        for n in range(count):
            train = train.add_column(f"negative_{n + 1}", [row[n] for row in negatives])
        splits["train"] = train
        return splits

    def configure(self, model: Any) -> None:
        model.config = model[0].auto_model.config  # what the runner reads (model.config) of any model
        model.max_seq_length = self.args.max_seq_length

    def tokenize(self, split: Any, tokenizer: Any, model_config: Any) -> Any:
        """The trainer tokenises each batch itself: keep (anchor, positive[, negatives]) as text, in that order."""
        mined = sorted((c for c in split.column_names if c.startswith("negative_")), key=lambda c: int(c[9:]))
        return split.select_columns(self.columns() + mined)

    def collator(self, tokenizer: Any, model: Any) -> Any:
        return None  # sentence-transformers' own

    def scorable(self) -> bool:
        return False  # the evaluator's retrieval metrics are the scores

    def meta(self, tokenizer: Any, model_config: Any) -> dict[str, Any]:
        return {"task": "embedding"}


def embedding_trainer() -> type:
    """A sentence-transformers trainer that the runner builds as it builds a Trainer, with its loss and evaluator."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    class EmbeddingTrainer(SentenceTransformerTrainer):
        def __init__(self, *, model, args, train_dataset, eval_dataset, callbacks=None, **_: Any) -> None:
            queries, passages = eval_dataset.column_names[:2]
            corpus = {f"p{i}": text for i, text in enumerate(dict.fromkeys(eval_dataset[passages]))}
            ids = {text: key for key, text in corpus.items()}
            evaluator = InformationRetrievalEvaluator(
                queries={f"q{i}": q for i, q in enumerate(eval_dataset[queries])},
                corpus=corpus,
                relevant_docs={f"q{i}": {ids[p]} for i, p in enumerate(eval_dataset[passages])},
                name="validation",
                write_csv=False,
            )
            super().__init__(
                model=model,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                loss=MultipleNegativesRankingLoss(model),
                evaluator=evaluator,
                callbacks=callbacks,
            )

    return EmbeddingTrainer


@register
class Embedding(Task):
    """One float32 vector per text (`encode`: a 2-D array for a list), pooled and normalised as the model says.

    Any sentence-transformers folder or Hub id (its `modules.json`, pooling config and prompts are read), or any
    plain encoder (mean pooling). Default: the packaged all-MiniLM-L6-v2 (384 dimensions, unit length).
    Options: `prompt_name` (a prompt the model defines), `prompt` (text put before every input).
    """

    name = "embedding"
    aliases = ("embed", "feature-extraction", "sentence-embedding")
    command = None  # `hfapps embed` writes vectors (Parquet), so it is its own command (hfapps/cli/index.py)
    default_model = "sentence-transformers/all-MiniLM-L6-v2"
    options = EmbeddingOptions
    training = EmbeddingTraining
    export_format = "onnx"

    @classmethod
    def claims(cls, config: Any) -> int:
        """A plain encoder (its saved architecture is `…Model`, no task head) exports as an embedder."""
        architectures = getattr(config, "architectures", None) or []
        plain = bool(architectures) and all(arch.endswith("Model") for arch in architectures)
        return 1 if plain and models.model_kind(config) == "encoder" else 0

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModel

    @classmethod
    def export_files(cls, ref: models.ModelRef) -> list[tuple[str, str]]:
        """The sentence-transformers files an export carries beside its runtime's (so the export pools, normalises,
        lower-cases, cuts and prompts as its source does): (path here, path in the export) pairs. The transformer
        module's own weights are not among them: the export replaces them."""
        pairs = [(path, name) for name in ST_FILES if (path := _file(ref, name)) is not None]
        modules_path = _file(ref, "modules.json")
        modules: list[dict[str, Any]] = []
        if modules_path is not None:
            with open(modules_path, encoding="utf-8") as f:
                modules = json.load(f)
        for module in modules:
            folder = str(module.get("path", ""))
            if not folder or str(module.get("type", "")).rsplit(".", 1)[-1] in TRANSFORMER:
                continue
            for name in MODULE_FILES:
                path = _file(ref, f"{folder}/{name}")
                if path is not None:
                    pairs.append((path, f"{folder}/{name}"))
        return pairs

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        return samples.column("sentiment.csv", "text")[: samples.CARD_TEXTS], {}

    def _build(self, *, allow_pickle: bool) -> None:
        if models.model_kind(self.config) != "encoder":
            raise TaskMismatchError(
                f"{self.ref.name!r} is not an encoder; embeddings come from encoder models such as "
                "sentence-transformers/all-MiniLM-L6-v2."
            )
        self.layout = read_layout(self.ref)
        self.model = self._load(AutoModel, allow_pickle=allow_pickle).eval()
        self.dimension = int(self.config.hidden_size)
        self.normalizes = self.layout.normalize
        self.fingerprint = fingerprint(self.ref)

    @property
    def max_input_tokens(self) -> int:
        window = super().max_input_tokens
        return min(window, self.layout.max_seq_length) if self.layout.max_seq_length else window

    @property
    def prompts(self) -> dict[str, str]:
        return dict(self.layout.prompts)

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        """A (texts, dimension) float32 array. A call gives lists of floats, which JSON takes as they are (the
        server's `/v1/embedding`, `hfapps` batch output); `hfapps.embed` and this give numpy."""
        vectors = self(list(texts), **options)
        return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), self.dimension)

    def _check(self, item: Any, index: int | None) -> str:
        text = super()._check(item, index)
        return text.lower() if self.layout.do_lower_case else text

    def _prefix(self, options: EmbeddingOptions) -> str:
        if options.prompt is not None:
            return options.prompt
        name = options.prompt_name or self.layout.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            raise InputError(
                f"{self.ref.name!r} defines no prompt {name!r}; its prompts are {sorted(self.prompts) or 'none'}. "
                "Pass prompt='...' to put your own text before every input."
            )
        return self.prompts[name]

    def _predict(self, batch: list[str], options: EmbeddingOptions) -> list[list[float]]:
        prefix = self._prefix(options)
        encoded = self.tokenizer(
            [prefix + text for text in batch],
            padding=True,
            truncation=True,
            max_length=self.max_input_tokens,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"]
        if prefix and not self.layout.include_prompt:  # the prompt's tokens are read but not pooled
            prompt_tokens = len(self.tokenizer(prefix, add_special_tokens=True)["input_ids"]) - 1
            mask = mask.clone()
            mask[:, :prompt_tokens] = 0
        vectors = pool(hidden, mask, self.layout.pooling).float()
        if self.layout.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.cpu().numpy().tolist()
