"""Generation on CTranslate2: encoder-decoder models (T5, BART, Marian, M2M100, NLLB) for summarize and
translate, and causal chat models (Llama-type, such as SmolLM2) for the chat path.

`export` converts with CTranslate2's own transformers converter, from weights hfapps already loaded (so a GGUF
file, de-quantized, converts too). `Seq2SeqRunner` and `ChatRunner` do what the PyTorch pipelines do (the task
prefix, truncation to the model's window, the target-language token, the chat template) and map hfapps'
generation options onto CTranslate2's; `max_length` on a chat model has no CTranslate2 counterpart and is
refused with what to use instead. On a CPU, an export runs one single-threaded worker per PyTorch thread, and
each call splits its batch between them (`Ct2Model.share`).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import torch
from transformers import GenerationConfig, PretrainedConfig

from ..errors import ExportError, InputError, ModelLoadError, TaskMismatchError
from ..inference.prompting import clip

#: The converted model's own folder inside the export (CTranslate2 writes a config.json of its own).
SUBFOLDER = "ctranslate2"
#: The most input tokens one worker takes at once: more makes each decoding step slower than two smaller
#: sub-batches in turn (RESULTS.md: 16 documents of about 400 tokens ran at half the speed of 4 x 4).
SUB_BATCH_TOKENS = 2048


#: The special tokens CTranslate2's converters read from the tokenizer, and the model settings that also name them.
SPECIAL_TOKENS = {
    "eos_token": "eos_token_id",
    "bos_token": "bos_token_id",
    "pad_token": "pad_token_id",
    "unk_token": "unk_token_id",
}


def special_tokens(
    tokenizer: Any, config: PretrainedConfig, generation_config: GenerationConfig | None
) -> dict[str, str]:
    """The special tokens the tokenizer does not name but the model's generation config or config does (a T5 with a
    BERT WordPiece tokenizer has no eos_token; its config's eos_token_id is the [SEP] it ends with), as tokens.
    CTranslate2 writes them into its config and stops decoding at the end token, so a model with no end token
    anywhere cannot be exported: `ExportError`, before anything is written."""
    found: dict[str, str] = {}
    for name, id_name in SPECIAL_TOKENS.items():
        if getattr(tokenizer, name, None) is not None:
            continue
        ids = getattr(generation_config, id_name, None) if generation_config is not None else None
        ids = ids if ids is not None else getattr(config, id_name, None)
        first = ids[0] if isinstance(ids, (list, tuple)) and ids else ids
        if isinstance(first, int) and 0 <= first < len(tokenizer):
            found[name] = tokenizer.convert_ids_to_tokens(first)
    if getattr(tokenizer, "eos_token", None) is None and "eos_token" not in found:
        raise ExportError(
            "The model names no end token: its tokenizer has no eos_token, and neither its generation "
            "config nor its config sets eos_token_id. CTranslate2 needs one to stop decoding: set "
            "eos_token_id in the model's config.json (the id of the token its outputs end with) and "
            "export again."
        )
    return found


class _WithTokens:
    """The tokenizer as the converter reads it, with the special tokens `special_tokens` found filled in."""

    def __init__(self, tokenizer: Any, tokens: dict[str, str]) -> None:
        self._tokenizer, self._tokens = tokenizer, tokens

    def __getattr__(self, name: str) -> Any:
        return self._tokens[name] if name in self._tokens else getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)


def export(model: Any, tokenizer: Any, folder: str, *, quantize: str, tokens: dict[str, str] | None = None) -> None:
    """Convert `model` (loaded, on the CPU) into `folder/ctranslate2`; `folder` already holds the transformers
    config.json and tokenizer the converter reads. `tokens` are special tokens the tokenizer lacks
    (`special_tokens`)."""
    from ctranslate2.converters import TransformersConverter

    read = _WithTokens(tokenizer, tokens) if tokens else tokenizer

    class Converter(TransformersConverter):
        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            # BART and Marian configs in transformers 5 no longer carry normalize_before, which the converter reads.
            if not hasattr(model.config, "normalize_before"):
                model.config.normalize_before = False
            return model

        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            return read

    try:
        Converter(folder).convert(
            os.path.join(folder, SUBFOLDER), quantization=None if quantize == "none" else quantize
        )
    except ValueError as err:
        if "No conversion is registered" in str(err):
            raise TaskMismatchError(f"CTranslate2 cannot convert a {type(model).__name__}. {err}") from err
        raise


def compute_type(runtime: dict[str, Any], device: torch.device) -> str:
    """The compute type an export runs with on `device`: as it was written ("default"), except an int8 export on a
    CPU whose int8 products saturate (x86 without VNNI, `cpu.Cpu.int8_saturates`), which runs in float32 (its int8
    weights widened at load). There CTranslate2's int8 GEMMs (oneDNN's AVX2 kernels) sum u8 x s8 pairs in 16 bits
    and leave the overflow to the caller: measured on SmolLM2 chat (benchmarks/RESULTS.md, "int8 on every CPU"),
    int8 kept 0.7 of the first greedy tokens of float32 on average on the AVX2 path against 4.2 with VNNI. This
    CTranslate2 build offers no int16 on these CPUs, so float32 is the exact fallback."""
    if device.type == "cpu" and runtime.get("quantize") == "int8":
        from ..cpu import cpu

        if cpu().int8_saturates:
            return "float32"
    return "default"


def _open(kind: str, path: str, device: torch.device, runtime: dict[str, Any], one_worker: bool = False) -> Any:
    import ctranslate2

    folder = os.path.join(path, SUBFOLDER)
    if not os.path.isfile(os.path.join(folder, "model.bin")):
        raise ModelLoadError(f"{path!r} is a CTranslate2 export without its {SUBFOLDER}/model.bin: export it again.")
    # On a CPU, one worker per thread, each single-threaded, splitting every batch between them: CTranslate2's
    # threading inside an operation costs more than it gives on decoding's small products (RESULTS.md measured
    # 1.4-2.4x the throughput, and lower latency even for one text). The workers share the weights.
    threads = torch.get_num_threads()
    workers = {"inter_threads": threads, "intra_threads": 1} if device.type == "cpu" else {}
    if one_worker and device.type == "cpu":
        workers = {"inter_threads": 1, "intra_threads": threads}
    try:
        return getattr(ctranslate2, kind)(
            folder, device=device.type, compute_type=compute_type(runtime, device), **workers
        )
    except (RuntimeError, ValueError) as err:
        raise ModelLoadError(f"CTranslate2 could not load {path!r}: {err}") from err
    finally:
        # CTranslate2 sets the OpenMP thread count it shares with PyTorch; PyTorch models in this process keep theirs.
        torch.set_num_threads(threads)


def int8_plan(here: Any) -> str:
    """What a CTranslate2 int8 export runs as on the CPU `here` (a `cpu.Cpu`), in words (`compute_type`)."""
    if here.int8_saturates:
        return "float32 (int8 weights widened at load: int8 products saturate on this CPU)"
    return "int8 (CTranslate2's int8_float32: int8 products, float32 elsewhere)"


class Ct2Model:
    """What `Task._load` returns for a CTranslate2 export: the generator and the settings it was exported with.
    The task builds its runner (`Seq2SeqRunner`, `ChatRunner`) around it."""

    def __init__(
        self, engine: Any, config: PretrainedConfig, generation_config: GenerationConfig, runtime: dict[str, Any]
    ) -> None:
        self.engine, self.config, self.generation_config, self.runtime = engine, config, generation_config, runtime
        self.workers = int(getattr(engine, "num_translators", None) or getattr(engine, "num_generators", None) or 1)
        self.reopen: Any = None  # set by `load`: opens the same export on one worker (`seeded`)

    def seeded(self, seed: int) -> Any:
        """An engine whose sampling starts from `seed`. CTranslate2 seeds each worker's random generator once, when
        the worker starts, from the seed set then (`set_random_seed`): a running engine's workers carry on from
        wherever earlier calls left them, so the same seed gave a different text on every call. A seeded call runs on
        a fresh one-worker copy of the export, started after the seed is set: the same seed, the same text, at the
        cost of opening the export again (its weights are read from disk each time)."""
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        return self.reopen() if self.reopen is not None else self.engine

    def share(self, inputs: list[list[str]]) -> int:
        """The sub-batch size for `inputs` (token lists): an even split between the engine's workers, which run
        in parallel, in sub-batches of at most `SUB_BATCH_TOKENS` tokens each."""
        longest = max(map(len, inputs), default=1)
        return max(1, min(math.ceil(len(inputs) / self.workers), SUB_BATCH_TOKENS // max(1, longest)))

    @classmethod
    def load(
        cls, ref: Any, config: PretrainedConfig, runtime: dict[str, Any], auto_class: Any, device: torch.device
    ) -> Ct2Model:
        seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        if (
            auto_class.__name__ == "AutoModelForSeq2SeqLM"
            and not seq2seq
            or (auto_class.__name__ == "AutoModelForCausalLM" and seq2seq)
        ):
            raise TaskMismatchError(f"{ref.name!r} is a CTranslate2 export that cannot run this task.")
        if auto_class.__name__ not in ("AutoModelForSeq2SeqLM", "AutoModelForCausalLM"):
            raise TaskMismatchError(
                f"{ref.name!r} is a CTranslate2 export of a generation model; it runs summarize, "
                "translate and the chat path, not this task."
            )
        try:
            generation_config = GenerationConfig.from_pretrained(ref.path)
        except OSError:
            generation_config = GenerationConfig.from_model_config(config)
        kind = "Translator" if seq2seq else "Generator"
        model = cls(_open(kind, ref.path, device, runtime), config, generation_config, runtime)
        model.reopen = functools.partial(_open, kind, ref.path, device, runtime, one_worker=True)
        return model


def decoding_options(options: dict[str, Any], generation_config: GenerationConfig, *, chat: bool) -> dict[str, Any]:
    """hfapps' generation options (over the model's own generation settings) as CTranslate2 arguments."""
    if chat and "max_length" in options:
        raise InputError(
            "max_length (prompt included) has no CTranslate2 counterpart for chat models: use max_new_tokens instead."
        )
    defaults = {
        "num_beams": generation_config.num_beams,
        "length_penalty": generation_config.length_penalty,
        "no_repeat_ngram_size": generation_config.no_repeat_ngram_size,
        "repetition_penalty": generation_config.repetition_penalty,
        "min_length": generation_config.min_length,
        "do_sample": generation_config.do_sample,
        "temperature": generation_config.temperature,
        "top_p": generation_config.top_p,
        "top_k": generation_config.top_k,
    }
    if generation_config.max_new_tokens is not None:
        defaults["max_new_tokens"] = generation_config.max_new_tokens
    elif generation_config.max_length is not None and not chat:
        defaults["max_length"] = generation_config.max_length
    given = {k: v for k, v in options.items() if v is not None}
    if "max_new_tokens" in given or "max_length" in given:
        defaults.pop("max_new_tokens", None), defaults.pop("max_length", None)
    settings = {**{k: v for k, v in defaults.items() if v is not None}, **given}
    if "max_new_tokens" in settings:
        longest = settings["max_new_tokens"]
    else:
        longest = max(1, settings.get("max_length", 256) - 1)  # an encoder-decoder's max_length counts the start token
    out = {
        "beam_size": int(settings.get("num_beams") or 1),
        "length_penalty": float(settings.get("length_penalty", 1.0)),
        "repetition_penalty": float(settings.get("repetition_penalty") or 1.0),
        "no_repeat_ngram_size": int(settings.get("no_repeat_ngram_size") or 0),
        "sampling_topk": 1,
        "sampling_topp": 1.0,
        "sampling_temperature": 1.0,
    }
    minimum = settings.get("min_new_tokens", max(0, (settings.get("min_length") or 0) - (0 if chat else 1)))
    if chat:
        out.update(max_length=int(longest), min_length=int(minimum))
    else:
        out.update(max_decoding_length=int(longest), min_decoding_length=int(minimum))
    if settings.get("do_sample"):
        out.update(
            sampling_topk=int(settings.get("top_k") or 0),
            sampling_topp=float(settings.get("top_p") or 1.0),
            sampling_temperature=float(settings.get("temperature") or 1.0),
        )
    return out


class Seq2SeqRunner:
    """An encoder-decoder export: text in, generated text out, as hfapps' text2text pipelines do it."""

    def __init__(self, model: Ct2Model, tokenizer: Any, task_key: str, max_input_tokens: int) -> None:
        self.model, self.tokenizer, self.task_key, self.max_input_tokens = model, tokenizer, task_key, max_input_tokens

    def __call__(
        self,
        texts: list[str],
        *,
        input_prefix: str | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        **generate: Any,
    ) -> list[str]:
        from ..pipelines.text2text import set_languages

        params = dict((getattr(self.model.config, "task_specific_params", None) or {}).get(self.task_key) or {})
        first_token = None
        if src_lang or tgt_lang:
            prefix, first_token = set_languages(self.tokenizer, self.model.config, src_lang, tgt_lang)
            params["prefix"] = prefix if prefix is not None else params.get("prefix")
        prefix = input_prefix if input_prefix is not None else params.pop("prefix", None) or ""
        params.pop("prefix", None)
        options = decoding_options({**params, **generate}, self.model.generation_config, chat=False)
        encoded = self.tokenizer([prefix + text for text in texts], truncation=True, max_length=self.max_input_tokens)[
            "input_ids"
        ]
        sources = [self.tokenizer.convert_ids_to_tokens(ids) for ids in encoded]
        target_prefix = None
        if first_token is not None:
            target_prefix = [[self.tokenizer.convert_ids_to_tokens(first_token)]] * len(sources)
        results = self.model.engine.translate_batch(
            sources, target_prefix=target_prefix, max_batch_size=self.model.share(sources), **options
        )
        hypotheses = [result.hypotheses[0] for result in results]
        if self.model.generation_config.forced_eos_token_id is not None:
            # transformers makes the last token at the length limit the end token (BART, Marian); CTranslate2 lets
            # the model pick it. Dropping it gives the same text.
            limit = options["max_decoding_length"] + (1 if target_prefix else 0)
            hypotheses = [tokens[:-1] if len(tokens) >= limit else tokens for tokens in hypotheses]
        return [self._decode(tokens) for tokens in hypotheses]

    def _decode(self, tokens: list[str]) -> str:
        return self.tokenizer.decode(self.tokenizer.convert_tokens_to_ids(tokens), skip_special_tokens=True).strip()


class ChatRunner:
    """A causal chat export: single-turn prompts through the chat template, greedy by default, the answer only."""

    def __init__(self, model: Ct2Model, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.generation_config = model.generation_config

    def __call__(self, prompts: list[str], **generate: Any) -> list[str]:
        generate.setdefault("do_sample", False)
        options = decoding_options(generate, self.generation_config, chat=True)
        starts = []
        for prompt in prompts:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=True, add_generation_prompt=True
            )
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            starts.append(self.tokenizer.convert_ids_to_tokens(list(ids)))
        eos = (
            self.generation_config.eos_token_id
            if self.generation_config.eos_token_id is not None
            else self.tokenizer.eos_token_id
        )
        ends = [eos] if isinstance(eos, int) else list(eos or [])
        results = self.model.engine.generate_batch(
            starts,
            max_batch_size=self.model.share(starts),
            include_prompt_in_result=False,
            end_token=ends or None,
            **options,
        )
        return [self.tokenizer.decode(result.sequences_ids[0], skip_special_tokens=True).strip() for result in results]

    def clip(self, text: str, max_tokens: int) -> str:
        return clip(self.tokenizer, text, max_tokens)
