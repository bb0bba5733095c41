"""`hfapps export MODEL OUTPUT_DIR [--format onnx|ctranslate2] [--quantize none|int8]`: a model for a fast runtime.

    hfapps train sentiment --dataset_name sample
    hfapps export runs/sentiment runs/sentiment-int8 --format onnx --quantize int8

Encoder models with a classification or question-answering head go to ONNX Runtime; encoder-decoder (T5, BART,
Marian, M2M100, NLLB) and causal chat models (SmolLM2, a GGUF file included) to CTranslate2. The folder written
holds the runtime's files, the tokenizer, the config (label maps), `hfapps.json` (the task settings and the
runtime), and a model card (`README.md`) with the size, speed and agreement measured against the source model on
hfapps' sample data. It loads wherever a model does: `hfapps.sentiment(texts, model="runs/sentiment-int8")`.

The export is written into a temporary folder beside OUTPUT_DIR and moved into place only once it is whole, so an
interrupted export leaves nothing half-written; an existing OUTPUT_DIR is replaced only when it is an hfapps export
itself and `--overwrite` is given.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

from . import models, runtimes
from .cpu import cpu
from .errors import ExportError, HfappsError, InputError, TaskMismatchError

logger = logging.getLogger("hfapps")

FORMATS = ("onnx", "ctranslate2")
QUANTIZE = ("none", "int8")
#: An encoder head -> (the auto class that loads it, the task hfapps runs it as)
ENCODER_HEADS = {
    "ForSequenceClassification": (AutoModelForSequenceClassification, "classification"),
    "ForQuestionAnswering": (AutoModelForQuestionAnswering, "question-answering"),
}


def export(model: str | os.PathLike, output_dir: str | os.PathLike, *, format: str | None = None,
           quantize: str = "none", task: str | None = None, trust_remote_code: bool = False, overwrite: bool = False,
           measure: bool = True, calibration_file: str | os.PathLike | None = None, int8: Any = None) -> dict[str, Any]:
    """Export `model` to `output_dir` for `format`'s runtime; return what was measured (also in the model card).

    An ONNX int8 export smooths the activations first (`runtimes/smoothing.py`) and calibrates the activations'
    int8 scales (static quantization), both on `calibration_file` (rows with a "text" column, or "question" and
    "context" for question answering: any file `hfapps.data.read_file` reads, SQuAD JSON included; the first 512
    rows) or by default on hfapps' sample data. `int8` (a `hfapps.runtimes.onnx.Int8`) changes how, for measuring
    the alternatives."""
    if quantize not in QUANTIZE:
        raise InputError(f"--quantize takes {' or '.join(QUANTIZE)}, got {quantize!r}.")
    if format is not None and format not in FORMATS:
        raise InputError(f"--format takes {' or '.join(FORMATS)}, got {format!r}.")
    output = os.fspath(output_dir)
    replacing = _check_output(output, overwrite)
    ref, config = models.resolve(model, trust_remote_code=trust_remote_code)
    meta = models.read_meta(ref)
    if runtimes.runtime_of(meta):
        raise InputError(f"{ref.name!r} is already an export ({meta['runtime']['format']}); export its source model.")
    kind = _kind(config)
    format = format or ("onnx" if kind == "encoder" else "ctranslate2")
    if format == "onnx" and kind != "encoder":
        raise TaskMismatchError(f"{ref.name!r} is a {kind} model; ONNX export takes encoder models with a "
                                "classification or question-answering head. Use --format ctranslate2.")
    if format == "ctranslate2" and kind == "encoder":
        raise TaskMismatchError(f"{ref.name!r} is an encoder model; CTranslate2 export takes encoder-decoder "
                                "(T5, BART, Marian, M2M100, NLLB) and causal chat models. Use --format onnx.")
    runtimes.require(format)
    auto_class, task = _what_to_load(config, ref, kind, task or meta.get("task"))
    if calibration_file is not None and (format != "onnx" or quantize != "int8"):
        raise InputError("--calibration-file is read by ONNX int8 exports only (--format onnx --quantize int8); "
                         "add --quantize int8, or leave the file out.")
    calibration = calibration_inputs(task, calibration_file) if format == "onnx" and quantize == "int8" else None
    tokenizer = models.load_tokenizer(ref, trust_remote_code=trust_remote_code)
    tokens = None
    if format == "ctranslate2":  # an export that could not stop decoding is refused before anything is written
        from .runtimes import ct2

        tokens = ct2.special_tokens(tokenizer, config, _generation_config(ref, config))

    parent = os.path.dirname(os.path.abspath(output)) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.export-", dir=parent)
    try:
        runtime = _write(ref, meta, auto_class, task, format, quantize, staging, trust_remote_code, tokenizer,
                         calibration, tokens, int8)
        report = _check_and_measure(ref.name, staging, task, trust_remote_code, measure)
        _write_card(staging, ref.name, task, runtime, report)
        _move_into_place(staging, output, replacing)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # hfapps made it, and it holds no finished export
        raise
    return report


def _check_output(output: str, overwrite: bool) -> bool:
    """Whether `output` is an earlier export to replace. Anything else that is not empty is refused."""
    if not os.path.exists(output):
        return False
    if not os.path.isdir(output):
        raise InputError(f"{output} exists and is a file; choose a folder name for the export.")
    if not os.listdir(output):
        return False
    earlier = runtimes.runtime_of(_read_json(os.path.join(output, models.META_FILE)))
    if earlier and overwrite:
        return True
    if earlier:
        raise InputError(f"{output} already holds an export. Pass --overwrite to replace it, or choose another folder.")
    raise InputError(f"{output} exists and is not empty, and it is not an hfapps export: hfapps will not write over "
                     "it. Choose a new folder.")


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _kind(config: Any) -> str:
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return "causal" if any(arch.endswith(("ForCausalLM", "LMHeadModel")) for arch in architectures) else "encoder"
    # No architecture saved (a GGUF file's config): decoder families are causal; BERT-like ones, which can
    # also be causal LMs, are encoders.
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return "causal" if causal and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "encoder"


def _what_to_load(config: Any, ref: Any, kind: str, task: str | None) -> tuple[Any, str]:
    """The auto class to load the source with, and the hfapps task the export runs."""
    from .tasks import task_class

    if task is not None:
        task = task_class(task).name
    if kind == "encoder-decoder":
        return AutoModelForSeq2SeqLM, task or ("translation" if config.model_type in ("marian", "m2m_100", "nllb_moe")
                                               else "summarization")
    if kind == "causal":
        return AutoModelForCausalLM, task or "summarization"
    architectures = getattr(config, "architectures", None) or []
    for suffix, (auto_class, default_task) in ENCODER_HEADS.items():
        if any(arch.endswith(suffix) for arch in architectures):
            return auto_class, task or default_task
    raise TaskMismatchError(
        f"{ref.name!r} is a {', '.join(architectures) or config.model_type} without a task head; ONNX export takes "
        f"…{', …'.join(ENCODER_HEADS)} models (fine-tune one with `hfapps train`).")


def _generation_config(ref: Any, config: Any) -> GenerationConfig | None:
    """The model's generation settings (its own file, else those its config implies)."""
    try:
        if not ref.gguf_file:  # a GGUF file's settings are in its config
            return GenerationConfig.from_pretrained(ref.path)
    except (OSError, ValueError):
        pass
    try:
        return GenerationConfig.from_model_config(config)
    except (TypeError, ValueError):
        return None


def _write(ref: Any, meta: dict[str, Any], auto_class: Any, task: str, format: str, quantize: str, folder: str,
           trust_remote_code: bool, tokenizer: Any, calibration: tuple[list[Any], str] | None,
           tokens: dict[str, str] | None, int8: Any = None) -> dict[str, Any]:
    """The export itself, into `folder`; returns hfapps.json's "runtime" entry."""
    started = time.perf_counter()
    model = models.load_weights(ref, auto_class, trust_remote_code=trust_remote_code, dtype=torch.float32).eval()
    if hasattr(model.config, "quantization_config"):  # a de-quantized GGUF model: its weights are plain now
        del model.config.quantization_config
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    package = runtimes.RUNTIMES[format][0]
    runtime: dict[str, Any] = {"format": format, "quantize": quantize, "export_version": runtimes.EXPORT_VERSION,
                               "source": ref.name, "versions": _versions(package)}
    if format == "onnx":
        from .runtimes import onnx

        written = onnx.export(model, tokenizer, folder, quantize=quantize,
                              calibration=calibration[0] if calibration else (), int8=int8 or onnx.Int8())
        runtime.update(head=onnx.head_of(model), file=onnx.MODEL_FILE)
        if "smoothing" in written:
            runtime["smoothing"] = {**written["smoothing"], "calibration": calibration[1]}  # type: ignore[index]
        if "int8" in written:
            runtime["int8"] = written["int8"]
    else:
        from .runtimes import ct2

        if model.generation_config is not None:
            model.generation_config.save_pretrained(folder)
        ct2.export(model, tokenizer, folder, quantize=quantize, tokens=tokens)
        if tokens:
            runtime["special_tokens"] = tokens  # what the tokenizer did not name, taken from the model's config
    runtime["export_seconds"] = round(time.perf_counter() - started, 1)
    runtime["source_weights_mb"] = round(sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6, 1)
    runtime["weights_mb"] = round(_weights_bytes(folder, format) / 1e6, 1)
    with open(os.path.join(folder, models.META_FILE), "w", encoding="utf-8") as handle:
        json.dump({**meta, "task": task, "runtime": runtime}, handle, indent=2)
    return runtime


def _versions(package: str) -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in (package, "hfapps", "torch", "transformers")}


def _weights_bytes(folder: str, format: str) -> int:
    if format == "onnx":
        return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith((".onnx", ".data")))
    from .runtimes.ct2 import SUBFOLDER

    return os.path.getsize(os.path.join(folder, SUBFOLDER, "model.bin"))


def _move_into_place(staging: str, output: str, replacing: bool) -> None:
    if replacing:  # an earlier export (checked): set aside, then removed once the new one is in place
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.old-",
                               dir=os.path.dirname(os.path.abspath(output)))
        os.replace(output, os.path.join(old, "export"))
        os.replace(staging, output)
        shutil.rmtree(old)
    elif os.path.isdir(output):  # empty
        os.rmdir(output)
        os.replace(staging, output)
    else:
        os.replace(staging, output)


# -- measuring the export against its source ---------------------------------------------------------------

#: How many of the sample's texts (question-answer pairs) the model card measures on; calibration uses others.
CARD_TEXTS, CARD_QUESTIONS = 128, 48
CALIBRATION_ROWS = 512
SAMPLE_DATA = "hfapps' sample data"


def _sample_questions() -> list[dict[str, str]]:
    from .data import SAMPLE_DIR

    with open(os.path.join(SAMPLE_DIR, "qa.json"), encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    return [{"question": qa["question"], "context": p["context"]}
            for a in articles for p in a["paragraphs"] for qa in p["qas"]]


def calibration_inputs(task: str, path: str | os.PathLike | None = None) -> tuple[list[Any], str]:
    """What int8 smoothing measures activations on, and where it came from: the first rows of `path`, or
    hfapps' sample data other than what the model card measures on (reviews, news topics, short documents and
    encyclopedia paragraphs: English, 5 to 150 words)."""
    from .data import SAMPLE_DIR, DataError, read_file

    qa = task == "question-answering"
    if path is None:
        if qa:
            return [(p["question"], p["context"]) for p in _sample_questions()[CARD_QUESTIONS:]], SAMPLE_DATA
        reviews, topics, documents = (list(read_file(os.path.join(SAMPLE_DIR, name))[key]) for name, key in (
            ("sentiment.csv", "text"), ("topics.csv", "text"), ("summarization.jsonl", "document")))
        texts = (reviews[CARD_TEXTS:CARD_TEXTS + 200] + topics[:200] + documents
                 + sorted({p["context"] for p in _sample_questions()}))
        return texts, SAMPLE_DATA
    rows = read_file(os.fspath(path))
    needed = ["question", "context"] if qa else ["text"]
    missing = [name for name in needed if name not in rows.column_names]
    if missing:
        raise DataError(f"The calibration file {os.fspath(path)!r} has no {' or '.join(repr(m) for m in missing)} "
                        f"column (it has {rows.column_names}); {task} calibrates on "
                        f"{' and '.join(repr(n) for n in needed)} columns. Rename the column in the file, or pass "
                        "another file.")
    if not len(rows):
        raise DataError(f"The calibration file {os.fspath(path)!r} holds no rows.")
    rows = rows.select(range(min(len(rows), CALIBRATION_ROWS)))
    inputs = list(zip(rows["question"], rows["context"])) if qa else list(rows["text"])
    if not all(isinstance(v, str) and v.strip() for item in inputs for v in (item if qa else (item,))):
        raise DataError(f"The calibration file {os.fspath(path)!r} has empty or missing values in its first "
                        f"{len(rows)} rows; drop or fill them.")
    return inputs, os.fspath(path)


def sample_inputs(task: str) -> tuple[list[Any], dict[str, Any]]:
    """Inputs from hfapps' sample data for `task`, and the call options they need."""
    from .data import SAMPLE_DIR, read_file

    if task == "question-answering":
        return _sample_questions()[:CARD_QUESTIONS], {}
    if task in ("summarization", "translation"):
        if task == "translation":
            rows = read_file(os.path.join(SAMPLE_DIR, "translation_en_de.jsonl"))
            return list(rows["en"][:8]), {"max_new_tokens": 48}
        rows = read_file(os.path.join(SAMPLE_DIR, "summarization.jsonl"))
        return list(rows["document"][:6]), {"max_new_tokens": 48}
    texts = list(read_file(os.path.join(SAMPLE_DIR, "sentiment.csv"))["text"])
    return texts[:CARD_TEXTS], {}


def _check_and_measure(source: str, exported: str, task: str, trust_remote_code: bool, measure: bool
                       ) -> dict[str, Any]:
    """Load the export as a user would and run its task's sample on it: an export that cannot is refused
    (`ExportError`, and the caller removes it). Then, when `measure`, its speed and agreement against the source
    model on hfapps' sample data (no labels needed)."""
    from .api import load

    inputs, options = sample_inputs(task)
    quiet = logger.level
    logger.setLevel(logging.ERROR)  # the sample's truncation warnings say nothing about the export
    try:
        try:
            helper = load(task, exported, trust_remote_code=trust_remote_code, progress=False)  # type: ignore[arg-type]
            options = {**options, **_language_options(helper)}
            helper(inputs[:2], **options)
        except Exception as err:  # whatever stops it, the export is not usable as written
            raise ExportError(f"The export was written but could not run the {task} sample when loaded, so it was "
                              f"not kept: {type(err).__name__}: {err}") from err
        if not measure:
            return {}
        return _compare(source, helper, task, inputs, options, trust_remote_code)
    finally:
        logger.setLevel(quiet)


def _language_options(helper: Any) -> dict[str, Any]:
    """A translation helper that knows no language pair runs the sample as the model does without one; a chat
    model, which needs a pair to prompt, English to German."""
    if helper.name != "translation" or getattr(helper, "source", None) is not None:
        return {}
    return {"source": "en", "target": "de"} if getattr(helper, "chat", None) is not None else {}


def _compare(source: str, export_helper: Any, task: str, inputs: list[Any], options: dict[str, Any],
             trust_remote_code: bool) -> dict[str, Any]:
    from .api import load

    report: dict[str, Any] = {"task": task, "sample": len(inputs)}
    if task == "translation" and getattr(export_helper, "source", None) is None:
        report["skipped"] = "the model does not say which language pair it translates"
        return report
    outputs, seconds = {}, {}
    for name in ("source", "export"):
        try:
            helper = export_helper if name == "export" else load(task, source, trust_remote_code=trust_remote_code,
                                                                   progress=False)  # type: ignore[arg-type]
            helper(inputs[:4], **options)  # warm-up
            start = time.perf_counter()
            outputs[name] = helper(inputs, **options)
            seconds[name] = time.perf_counter() - start
        except HfappsError as err:
            report["skipped"] = f"the {name} model could not run the {task} sample: {err}"
            return report
    key = {"classification": "label", "sentiment": "label", "question-answering": "answer"}.get(task)
    same = [(a.get(key) == b.get(key)) if key else a == b for a, b in zip(outputs["source"], outputs["export"])]
    report.update(agreement=round(sum(same) / len(same), 4), source_seconds=round(seconds["source"], 3),
                  export_seconds=round(seconds["export"], 3),
                  speedup=round(seconds["source"] / max(seconds["export"], 1e-9), 2))
    if key == "label":
        report["largest_score_gap"] = round(max(abs(a["score"] - b["score"])
                                                for a, b in zip(outputs["source"], outputs["export"])), 4)
    return report


def _write_card(folder: str, source: str, task: str, runtime: dict[str, Any], report: dict[str, Any]) -> None:
    size_share = runtime["weights_mb"] / max(runtime["source_weights_mb"], 1e-9)
    lines = [
        f"# {os.path.basename(source.rstrip('/'))}: {runtime['format']}, {runtime['quantize']}",
        "",
        f"Exported by `hfapps export` from `{source}` for {task}, to run on {runtime['format']} "
        f"({', '.join(f'{k} {v}' for k, v in runtime['versions'].items())}).",
        "",
        "| | source (PyTorch, float32) | this export |",
        "| --- | --- | --- |",
        f"| weights | {runtime['source_weights_mb']} MB | {runtime['weights_mb']} MB ({size_share:.0%}) |",
    ]
    if "agreement" in report:
        lines.append(f"| time for the sample ({report['sample']} inputs) | {report['source_seconds']} s | "
                     f"{report['export_seconds']} s ({report['speedup']}x) |")
        what = {"classification": "labels", "sentiment": "labels", "question-answering": "answers"}.get(task, "outputs")
        gap = f" (largest score gap {report['largest_score_gap']})" if "largest_score_gap" in report else ""
        lines += ["", f"On hfapps' sample data for {task}, {report['agreement']:.1%} of the {what} are identical to the "
                  f"source model's{gap}. Speed was measured once, on the machine that exported it: "
                  f"{cpu().describe()}."]
    elif report.get("skipped"):
        lines += ["", f"Not measured: {report['skipped']}."]
    if "smoothing" in runtime:
        smoothing = runtime["smoothing"]
        scheme = runtime.get("int8", {}).get("scheme", "dynamic")
        how = ("static quantization (activation scales calibrated on the same inputs, so a text's result does not "
               "depend on its batch)" if scheme == "static" else "dynamic quantization (activation scales per batch)")
        lines += ["", f"int8 by ONNX Runtime's {how}, after smoothing the activations of {smoothing['products']} matrix "
                  f"products (alpha {smoothing['alpha']}) with scales measured on {smoothing['calibration_inputs']} "
                  f"inputs from {smoothing['calibration']}."]
    if runtime["quantize"] == "int8":
        from .runtimes import ct2, onnx

        plan = onnx.int8_plan if runtime["format"] == "onnx" else ct2.int8_plan
        lines += ["", f"What int8 runs as depends on the CPU that loads it (`hfapps env` says for yours). On the CPU "
                  f"that exported it ({cpu().int8_kernels}): {plan(cpu())}."]
    lines += ["", "Load it like any model:", "", "```python", "import hfapps",
              f"hfapps.load({task!r}, model=\"path/to/this/folder\")", "```", ""]
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def add_arguments(parser: Any) -> None:
    parser.add_argument("model", help="a `hfapps train` folder, a Hub id, a local folder or a GGUF file")
    parser.add_argument("output_dir", help="the folder to write (new, or an earlier export with --overwrite)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="onnx (encoder tasks) or ctranslate2 (summarize, translate, chat); default: by model")
    parser.add_argument("--quantize", choices=QUANTIZE, default="none", help="int8 weights (smaller, faster on CPU)")
    parser.add_argument("--task", default=None, help="the task the export runs (default: from the model)")
    parser.add_argument("--calibration-file", default=None,
                        help="ONNX int8: texts to measure activations on (a \"text\" column; \"question\" and "
                             "\"context\" for QA; first 512 rows). Default: hfapps' sample data")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in output_dir")
    parser.add_argument("--no-measure", dest="measure", action="store_false",
                        help="skip measuring speed and agreement against the source model")
    parser.add_argument("--trust-remote-code", action="store_true")
