"""`hfapps export MODEL OUTPUT_DIR [--format onnx|ctranslate2] [--quantize none|int8]`: a model for a fast runtime.

    hfapps train sentiment --dataset_name sample
    hfapps export runs/sentiment runs/sentiment-int8 --format onnx --quantize int8

Encoder models with a classification or question-answering head, embedders (a sentence-transformers folder or a
plain encoder, its pooling and normalisation files carried along) and cross-encoder rerankers go to ONNX Runtime;
encoder-decoder (T5, BART, Marian, M2M100, NLLB) and causal chat models (SmolLM2, a GGUF file included) to
CTranslate2: each task declares its runtime, and which models it claims when none is named (`hfapps.tasks.Task`).
The folder written holds the runtime's files, the tokenizer, the config (label maps), `hfapps.json` (the task
settings and the runtime), and a model card (`README.md`) with the size, speed and agreement measured against the
source model on hfapps' sample data (for an embedder, the cosine of its vectors to the source's; for a reranker, its
scores' largest difference and how often it ranks a query's documents in the same order). It loads wherever a model
does: `hfapps.sentiment(texts, model="runs/sentiment-int8")`.

The export is written into a temporary folder beside OUTPUT_DIR, loaded and run on its task's sample there, and
moved into place only once it is whole and runs, so an interrupted or broken export leaves nothing; an existing
OUTPUT_DIR is replaced only when it is an hfapps export itself and `--overwrite` is given.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from typing import Any

import torch
from transformers import GenerationConfig

from .. import models, runtimes
from ..errors import InputError, TaskMismatchError
from ..runtimes import ct2, onnx
from ..tasks import TASKS, Task, task_class
from .card import write_card
from .verify import check_and_measure

FORMATS = ("onnx", "ctranslate2")
QUANTIZE = ("none", "int8")


def export(
    model: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    format: str | None = None,
    quantize: str = "none",
    task: str | None = None,
    trust_remote_code: bool = False,
    overwrite: bool = False,
    measure: bool = True,
    calibration_file: str | os.PathLike | None = None,
    int8: Any = None,
) -> dict[str, Any]:
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
    kind = models.model_kind(config)
    format = format or ("onnx" if kind == "encoder" else "ctranslate2")
    if format == "onnx" and kind != "encoder":
        raise TaskMismatchError(
            f"{ref.name!r} is a {kind} model; ONNX export takes encoder models with a "
            "classification or question-answering head. Use --format ctranslate2."
        )
    if format == "ctranslate2" and kind == "encoder":
        raise TaskMismatchError(
            f"{ref.name!r} is an encoder model; CTranslate2 export takes encoder-decoder "
            "(T5, BART, Marian, M2M100, NLLB) and causal chat models. Use --format onnx."
        )
    cls = _task(config, ref, task or meta.get("task"), format)
    runtimes.require(format)
    if calibration_file is not None and (format != "onnx" or quantize != "int8"):
        raise InputError(
            "--calibration-file is read by ONNX int8 exports only (--format onnx --quantize int8); "
            "add --quantize int8, or leave the file out."
        )
    calibration = cls.calibration_inputs(calibration_file) if format == "onnx" and quantize == "int8" else None
    tokenizer = models.load_tokenizer(ref, trust_remote_code=trust_remote_code)
    tokens = None
    if format == "ctranslate2":  # an export that could not stop decoding is refused before anything is written
        tokens = ct2.special_tokens(tokenizer, config, _generation_config(ref, config))

    parent = os.path.dirname(os.path.abspath(output)) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output))}.export-", dir=parent)
    try:
        model_ = models.load_weights(
            ref, cls.export_auto_class(config), trust_remote_code=trust_remote_code, dtype=torch.float32
        ).eval()
        runtime = _write(model_, ref, meta, cls.name, format, quantize, staging, tokenizer, calibration, tokens, int8)
        del model_
        _carry(cls, ref, staging)
        report = check_and_measure(ref.name, staging, cls, trust_remote_code, measure, quantize)
        write_card(staging, ref.name, cls, runtime, report)
        _move_into_place(staging, output, replacing)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # hfapps made it, and it holds no finished export
        raise
    return report


def _carry(cls: type[Task], ref: Any, folder: str) -> None:
    """Copy the files the task reads beside the model (an embedder's sentence-transformers modules: pooling,
    normalisation, prompts) into the export, which then embeds as its source does."""
    for path, name in getattr(cls, "export_files", lambda ref: [])(ref):
        target = os.path.join(folder, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)


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
    raise InputError(
        f"{output} exists and is not empty, and it is not an hfapps export: hfapps will not write over "
        "it. Choose a new folder."
    )


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _task(config: Any, ref: Any, name: str | None, format: str) -> type[Task]:
    """The task the export runs: the one named (or the model was trained for), else the one that claims the model
    most surely. A task without an export, or whose runtime is not `format`, is refused."""
    if name is not None:
        cls = task_class(name)
    else:
        score, cls = max(((task.claims(config), task) for task in TASKS.values()), key=lambda pair: pair[0])
        if score == 0:
            architectures = ", ".join(getattr(config, "architectures", None) or []) or config.model_type
            raise TaskMismatchError(
                f"{ref.name!r} is a {architectures} without a task head; ONNX export takes "
                f"…{', …'.join(onnx.HEADS)} models (fine-tune one with `hfapps train`)."
            )
    if cls.export_format is None:
        exportable = sorted(task.name for task in TASKS.values() if task.export_format)
        raise TaskMismatchError(
            f"{cls.name} has no export: `hfapps export` writes models for "
            f"{', '.join(exportable)}. Run {cls.name} on the PyTorch model."
        )
    if cls.export_format != format:
        raise TaskMismatchError(
            f"{cls.name} exports to {cls.export_format}, not {format}: use --format {cls.export_format}."
        )
    return cls


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


def _write(
    model: Any,
    ref: Any,
    meta: dict[str, Any],
    task: str,
    format: str,
    quantize: str,
    folder: str,
    tokenizer: Any,
    calibration: tuple[list[Any], str] | None,
    tokens: dict[str, str] | None,
    int8: Any,
) -> dict[str, Any]:
    """The export itself, into `folder`; returns hfapps.json's "runtime" entry."""
    started = time.perf_counter()
    if hasattr(model.config, "quantization_config"):  # a de-quantized GGUF model: its weights are plain now
        del model.config.quantization_config
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    package = runtimes.RUNTIMES[format][0]
    runtime: dict[str, Any] = {
        "format": format,
        "quantize": quantize,
        "export_version": runtimes.EXPORT_VERSION,
        "source": ref.name,
        "versions": _versions(package),
    }
    source_mb = round(sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6, 1)
    if format == "onnx":
        written = onnx.export(
            model,
            tokenizer,
            folder,
            quantize=quantize,
            calibration=calibration[0] if calibration else (),
            int8=int8 or onnx.Int8(),
        )
        runtime.update(head=onnx.head_of(model), file=onnx.MODEL_FILE)
        if "smoothing" in written:
            runtime["smoothing"] = {**written["smoothing"], "calibration": calibration[1]}  # type: ignore[index]
        if "int8" in written:
            runtime["int8"] = written["int8"]
    else:
        if model.generation_config is not None:
            model.generation_config.save_pretrained(folder)
        ct2.export(model, tokenizer, folder, quantize=quantize, tokens=tokens)
        if tokens:
            runtime["special_tokens"] = tokens  # what the tokenizer did not name, taken from the model's config
    runtime["export_seconds"] = round(time.perf_counter() - started, 1)
    runtime["source_weights_mb"] = source_mb
    runtime["weights_mb"] = round(_weights_bytes(folder, format) / 1e6, 1)
    with open(os.path.join(folder, models.META_FILE), "w", encoding="utf-8") as handle:
        json.dump({**meta, "task": task, "runtime": runtime}, handle, indent=2)
    return runtime


def _versions(package: str) -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in (package, "hfapps", "torch", "transformers")}


def _weights_bytes(folder: str, format: str) -> int:
    if format == "onnx":
        return sum(
            os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith((".onnx", ".data"))
        )
    return os.path.getsize(os.path.join(folder, ct2.SUBFOLDER, "model.bin"))


def _move_into_place(staging: str, output: str, replacing: bool) -> None:
    if replacing:  # an earlier export (checked): set aside, then removed once the new one is in place
        old = tempfile.mkdtemp(
            prefix=f".{os.path.basename(os.path.abspath(output))}.old-", dir=os.path.dirname(os.path.abspath(output))
        )
        os.replace(output, os.path.join(old, "export"))
        os.replace(staging, output)
        shutil.rmtree(old)
    elif os.path.isdir(output):  # empty
        os.rmdir(output)
        os.replace(staging, output)
    else:
        os.replace(staging, output)
