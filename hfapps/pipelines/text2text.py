"""Summarization and translation as `transformers.Pipeline` subclasses (transformers 5 removed its own).

They run any encoder-decoder model (T5, BART, Marian, mBART, M2M100, NLLB, Pegasus, ...): the input
text, with the model's task prefix where it has one, is truncated to the model's window, and
`generate` runs on length-padded batches. Output keys are the transformers 4 ones.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
from transformers.pipelines.base import Pipeline

from ..errors import UnsupportedLanguageError
from ..inference.languages import language_token


class Text2TextPipeline(Pipeline):
    """Base: text in, generated text out under `output_key`. `task_key` selects `task_specific_params`."""

    _pipeline_calls_generate = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    output_key = "generated_text"
    task_key = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_model_type(MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)

    def _task_params(self, key: str) -> dict[str, Any]:
        """Generation settings and prefix the checkpoint declares for a task (T5, BART-CNN do)."""
        params = getattr(self.model.config, "task_specific_params", None) or {}
        return dict(params.get(key) or {})

    def _sanitize_parameters(
        self,
        input_prefix: str | None = None,
        truncation: bool | None = None,
        max_input_length: int | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        **generate_kwargs: Any,
    ):
        preprocess: dict[str, Any] = {}
        if input_prefix is not None:
            preprocess["input_prefix"] = input_prefix
        if truncation is not None:
            preprocess["truncation"] = truncation
        if max_input_length is not None:
            preprocess["max_input_length"] = max_input_length
        postprocess: dict[str, Any] = {}
        if clean_up_tokenization_spaces is not None:
            postprocess["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        return preprocess, generate_kwargs, postprocess

    def preprocess(self, text: str, input_prefix: str | None = None, truncation: bool = True, max_input_length=None):
        if input_prefix is None:
            input_prefix = self._task_params(self.task_key).get("prefix", "")
        inputs = self.tokenizer(
            input_prefix + text, truncation=truncation, max_length=max_input_length, return_tensors="pt"
        )
        # BERT-style tokenizers on encoder-decoders (Chinese BART, bert2bert) add segment ids that `generate`
        # refuses; the transformers 4 pipelines dropped them too.
        inputs.pop("token_type_ids", None)
        return inputs

    def get_inference_context(self):
        return torch.inference_mode

    def _forward(self, model_inputs: dict[str, Any], **generate_kwargs: Any) -> dict[str, Any]:
        task_defaults = {k: v for k, v in self._task_params(self.task_key).items() if k != "prefix"}
        generate_kwargs = self._prepare_generate_kwargs({**task_defaults, **generate_kwargs})
        return {"output_ids": self.model.generate(**model_inputs, **generate_kwargs)}

    def postprocess(
        self, model_outputs: dict[str, Any], clean_up_tokenization_spaces: bool | None = None
    ) -> dict[str, str]:
        text = self.tokenizer.decode(
            model_outputs["output_ids"][0],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
        )
        return {self.output_key: text.strip()}


class SummarizationPipeline(Text2TextPipeline):
    """`{"summary_text": ...}` per input. Registered as `hfapps-summarization`."""

    output_key = "summary_text"
    task_key = "summarization"


class TranslationPipeline(Text2TextPipeline):
    """`{"translation_text": ...}` per input. Registered as `hfapps-translation`.

    `src_lang`/`tgt_lang` (ISO 639-1 codes such as "en", "de", or the model's own codes) pick the
    T5 prefix (`translate English to German: `) or, for multilingual models (mBART-50, M2M100,
    NLLB), the source language and the forced first target token.
    """

    output_key = "translation_text"
    task_key = "translation"

    def _sanitize_parameters(self, **kwargs: Any):  # type: ignore[override]  # src_lang, tgt_lang besides the base's
        src_lang, tgt_lang = kwargs.pop("src_lang", None), kwargs.pop("tgt_lang", None)
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if src_lang or tgt_lang:
            prefix, first_token = set_languages(self.tokenizer, self.model.config, src_lang, tgt_lang)
            if prefix is not None and "input_prefix" not in preprocess:
                preprocess["input_prefix"] = prefix
            if first_token is not None:
                forward.setdefault("forced_bos_token_id", first_token)
        return preprocess, forward, postprocess


def set_languages(
    tokenizer: Any, config: Any, src_lang: str | None, tgt_lang: str | None
) -> tuple[str | None, int | None]:
    """What a translation model needs to know its languages: (the T5 prefix it declares for the pair, or None;
    the id of the target-language token that must start the output, or None). Sets a multilingual
    tokenizer's source language. Shared by the PyTorch pipeline and the CTranslate2 runtime."""
    if not (src_lang and tgt_lang):
        raise UnsupportedLanguageError("Pass both src_lang and tgt_lang, or neither.")
    params = (getattr(config, "task_specific_params", None) or {}).get(f"translation_{src_lang}_to_{tgt_lang}") or {}
    prefix = params.get("prefix")
    if hasattr(tokenizer, "get_lang_id"):  # M2M100 takes plain codes
        tokenizer.src_lang = src_lang
        return prefix, tokenizer.get_lang_id(tgt_lang)
    if hasattr(tokenizer, "src_lang"):  # mBART-50, NLLB: 'de_DE', 'deu_Latn'
        tokenizer.src_lang = language_token(tokenizer, src_lang)
        return prefix, tokenizer.convert_tokens_to_ids(language_token(tokenizer, tgt_lang))
    return prefix, None
