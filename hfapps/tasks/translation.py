"""Translation: `{"translation_text": ...}` per text.

Which model: `Helsinki-NLP/opus-mt-{source}-{target}` (Marian) by default; T5 checkpoints with their
`translate English to German: ` prefixes; multilingual models (mBART-50, M2M100, NLLB) with their
language codes; a `hfapps train` translation output; or a causal chat model, prompted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict

from .. import metrics, models
from ..data import SAMPLE_DIR, read_file
from ..errors import DataError, UnsupportedLanguageError
from ..inference.languages import language_name
from ..inference.long_input import PARAGRAPH_BREAK, Chunker
from . import samples
from .call_options import option
from .registry import register
from .text2text import GenerationOptions, Seq2SeqTraining, TextToText
from .training import fingerprint

MARIAN_NAME = re.compile(r"opus-mt-([a-zA-Z]+)-([a-zA-Z]+)")
#: Tokens per chunk of a long text by default: a few sentences, as translation models are trained on.
CHUNK_TOKENS = 128


def default_model(source: str | None, target: str | None) -> str:
    if not source or not target:
        raise UnsupportedLanguageError(
            "translate needs source= and target= language codes (e.g. source='en', target='de'), or a model."
        )
    return f"Helsinki-NLP/opus-mt-{source}-{target}"


class TranslationTraining(Seq2SeqTraining):
    """Fine-tune on parallel text: columns named by source_lang/target_lang (or a `translation`
    column of {lang: text} dicts, the WMT layout); scored with sacreBLEU and chrF."""

    sample_file = "translation_en_de.jsonl"

    def load_sample(self) -> Dataset:
        if (self.args.source_lang, self.args.target_lang) not in (("en", "de"), ("de", "en")):
            raise DataError("The sample translation data is English-German: pass --source_lang en --target_lang de.")
        return read_file(f"{SAMPLE_DIR}/{self.sample_file}")

    def source_target(self) -> tuple[str, str]:
        if not self.args.source_lang or not self.args.target_lang:
            raise DataError(
                "A translation recipe needs source_lang and target_lang (e.g. en, ro); they also name the data columns."
            )
        return self.args.source_lang, self.args.target_lang

    def task_prefix_key(self) -> str:
        return "translation_{}_to_{}".format(*self.source_target())

    def prepare(self, splits: DatasetDict) -> DatasetDict:
        source, target = self.source_target()

        def flatten(split: Dataset) -> Dataset:
            if source in split.column_names or "translation" not in split.column_names:
                return split
            return split.map(
                lambda row: {source: row["translation"][source], target: row["translation"][target]},
                remove_columns=["translation"],
                new_fingerprint=fingerprint(split, source, target),
            )

        return DatasetDict({name: flatten(split) for name, split in splits.items()})

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        source, target = self.source_target()
        return {
            "task": "translation",
            "source_lang": source,
            "target_lang": target,
            "prefix": self.prefix(model_config),
        }

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        texts = [p["translation_text"] for p in predictions]
        references = self.references(split)
        bleu = metrics.load("sacrebleu").compute(predictions=texts, references=references)
        chrf = metrics.load("chrf").compute(predictions=texts, references=references)
        return {"bleu": bleu["bleu"], "chrf": chrf["chrf"]}


@dataclass(frozen=True)
class TranslationOptions(GenerationOptions):
    source: str | None = option(None, "source language code, e.g. en", load=True)
    target: str | None = option(None, "target language code, e.g. de", load=True)
    long_input: str | None = option(
        "split",
        "texts over chunk_tokens or with several paragraphs: 'split' translates them a few sentences at a "
        "time and joins the results in order, paragraph breaks kept; 'truncate' keeps the start",
        choices=("split", "truncate"),
    )
    chunk_tokens: int | None = option(
        None, minimum=16, help=f"tokens per chunk of a long text (default: {CHUNK_TOKENS})"
    )


@register
class Translation(TextToText):
    """A text longer than `chunk_tokens`, or with several paragraphs, is split: each paragraph's sentences are
    translated a few at a time (chunks of every text of a call share the length-sorted batches) and joined
    back in order, the paragraph breaks as written. `long_input="truncate"` sends each text whole instead."""

    name = "translation"
    aliases = ("translate",)
    command = "translate"
    options = TranslationOptions
    training = TranslationTraining
    default_model = "Helsinki-NLP/opus-mt-en-de"
    pipeline_name = "hfapps-translation"
    output_key = "translation_text"
    #: Model types that translate: an export of one is translation unless another task is named.
    translators: ClassVar[tuple[str, ...]] = ("marian", "m2m_100", "nllb_moe")

    @classmethod
    def claims(cls, config: Any) -> int:
        return 2 if models.model_kind(config) == "encoder-decoder" and config.model_type in cls.translators else 0

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        return samples.column("translation_en_de.jsonl", "en")[:8], {"max_new_tokens": 48}

    def sample_options(self) -> dict[str, Any]:
        """A model that knows no language pair runs the sample without one; a chat model, which needs a pair to be
        prompted, English to German."""
        return {"source": "en", "target": "de"} if self.source is None and self.chat is not None else {}

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        source: str | None = None,
        target: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model or default_model(source, target), **kwargs)
        pairs = self.supported_pairs()
        if (source is None or target is None) and pairs and len(pairs) == 1:
            source, target = next(iter(pairs))
        self.source, self.target = source, target
        if source and target:
            self._check_pair(source, target)

    def supported_pairs(self) -> set[tuple[str, str]] | None:
        """The (source, target) pairs this model declares, or None when it can take any codes it knows."""
        if self.chat is not None:
            return None
        if self.meta.get("source_lang") and self.meta.get("target_lang"):
            return {(self.meta["source_lang"], self.meta["target_lang"])}
        src, tgt = getattr(self.tokenizer, "source_lang", None), getattr(self.tokenizer, "target_lang", None)
        if src and tgt:
            return {(src, tgt)}
        for name in (self.ref.name, getattr(self.config, "_name_or_path", "") or ""):
            match = MARIAN_NAME.search(name)
            if match:
                return {(match.group(1), match.group(2))}
        params = getattr(self.config, "task_specific_params", None) or {}
        t5_pairs = {
            (pair[0], pair[1])
            for k in params
            if k.startswith("translation_") and len(pair := k[len("translation_") :].split("_to_")) == 2
        }
        return t5_pairs or None

    def _check_pair(self, source: str, target: str) -> None:
        if source == target:
            raise UnsupportedLanguageError(f"source and target are both {source!r}; nothing to translate.")
        if self.chat is not None:
            language_name(source), language_name(target)
            return
        pairs = self.supported_pairs()
        if pairs is not None and (source, target) not in pairs:
            listed = ", ".join(f"{s}->{t}" for s, t in sorted(pairs))
            raise UnsupportedLanguageError(
                f"{self.ref.name!r} does not translate {source}->{target}; it translates {listed}. "
                f"Use a model for that pair (e.g. Helsinki-NLP/opus-mt-{source}-{target}) or a multilingual one."
            )

    def _split_options(self, options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        own, generate = super()._split_options(options)
        source, target = own.get("source") or self.source, own.get("target") or self.target
        if (source, target) != (self.source, self.target) and source and target:
            self._check_pair(source, target)
        return {"source": source, "target": target}, generate

    def _run(self, items: list[str], options: dict[str, Any], show_progress: bool | None = None) -> list[Any]:
        if options.get("long_input") == "truncate":
            return super()._run(items, options, show_progress)
        chunker = Chunker(self.tokenizer, self._chunk_budget(options, CHUNK_TOKENS))
        pieces: list[str] = []
        plans: list[tuple[list[int], list[str]] | None] = []  # chunks per paragraph, the breaks between them
        for text, size in zip(items, chunker.count(list(items)), strict=True):
            if size <= chunker.budget and not PARAGRAPH_BREAK.search(text.strip()):
                plans.append(None)
                pieces.append(text)
                continue
            paragraphs, breaks = chunker.paragraph_chunks(text)
            plans.append(([len(chunks) for chunks in paragraphs], breaks))
            pieces += [chunk for chunks in paragraphs for chunk in chunks]
        outputs = super()._run(pieces, options, show_progress)
        results, at = [], 0
        for plan in plans:
            if plan is None:
                results.append(outputs[at])
                at += 1
                continue
            counts, breaks = plan
            translated: list[str] = []
            for count in counts:
                translated.append(" ".join(out[self.output_key] for out in outputs[at : at + count]))
                at += count
            text = translated[0] + "".join(sep + para for sep, para in zip(breaks, translated[1:], strict=True))
            results.append({self.output_key: text})
        return results

    def _prompt(self, text: str, **task_options: Any) -> str:
        source, target = task_options.get("source"), task_options.get("target")
        if not source or not target:
            raise UnsupportedLanguageError("A chat model needs source= and target= language codes to translate.")
        return (
            f"Translate the following {language_name(source)} text into {language_name(target)}. "
            f"Reply with the translation only.\n\n{text}"
        )

    def _seq2seq_options(self, **task_options: Any) -> dict[str, Any]:
        source, target = task_options.get("source"), task_options.get("target")
        if self.meta.get("prefix") is not None:  # a `hfapps train` output knows its own prefix
            return super()._seq2seq_options()
        return {"src_lang": source, "tgt_lang": target} if source and target else {}
