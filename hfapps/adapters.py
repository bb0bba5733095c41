"""LoRA and DoRA adapters (`peft`): train a few small matrices beside a frozen model, and load the result.

A recipe with `peft: lora` trains the adapter; its output folder holds the adapter (adapter_config.json,
adapter_model.safetensors, with the new task head), the model's config with its label maps, the tokenizer
and the base model's id. Loading that folder (helpers, `hfapps export`, `hfapps serve`) loads the base model,
applies the adapter and merges it in, so it runs as fast as a fully fine-tuned model.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from .errors import ModelLoadError

ADAPTER_CONFIG = "adapter_config.json"
#: The new task heads that train whole (peft's modules_to_save for these task types), so never adapted.
HEADS = {"SEQ_CLS": ["classifier", "score"], "QUESTION_ANS": ["qa_outputs"]}
INSTALL = "pip install peft (the hfapps[peft] extra)"


def _peft():
    try:
        import peft
    except ImportError as err:
        raise ModelLoadError(f"LoRA adapters need the peft package, which is not installed: {INSTALL}.") from err
    return peft


def is_adapter(path: str) -> bool:
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def wrap(model, model_args, task_type: str | None, base_id: str):
    """`model` with a new adapter of the recipe's kind; only the adapter and the task's new head train."""
    peft = _peft()
    targets = model_args.lora_target_modules
    if not targets:
        mapping = peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
        targets = None if model.config.model_type in mapping else "all-linear"
    elif targets == ["all-linear"]:
        targets = "all-linear"
    config = peft.LoraConfig(
        task_type=task_type, r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout, target_modules=targets, use_dora=model_args.peft == "dora",
        exclude_modules=HEADS.get(task_type or "") if targets == "all-linear" else None,
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules the model does not have
        raise ModelLoadError(f"Could not add a {model_args.peft} adapter: {err}. Set lora_target_modules to names "
                             "of the model's linear layers (e.g. [query, value] for BERT), or to all-linear.") from err
    # The id the recipe named (what get_peft_model records is where the weights loaded from, e.g. a packaged copy).
    wrapped.peft_config["default"].base_model_name_or_path = base_id
    return wrapped


def save_config(model, folder: str) -> None:
    """Write the base model's config (its label maps and head) beside a saved adapter, so that the folder
    resolves and loads like any model folder."""
    base = model.get_base_model()
    base.config.architectures = [type(base).__name__]
    base.config.save_pretrained(folder)


def base_model_id(path: str) -> str:
    with open(os.path.join(path, ADAPTER_CONFIG), encoding="utf-8") as handle:
        base = json.load(handle).get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"The adapter in {path!r} does not name its base model (base_model_name_or_path in "
                             f"{ADAPTER_CONFIG}); set it to the Hub id or folder it was trained from.")
    return base


def load_merged(ref, auto_class: Any, load_weights, **kwargs: Any):
    """The base model named by the adapter folder `ref`, with the folder's config (labels, head), the adapter
    applied and merged in."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from .models import resolve

    peft = _peft()
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
            model = peft.PeftModel.from_pretrained(base, ref.path)
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelLoadError(f"Could not apply the adapter in {ref.name!r} to {base_id!r}: {err}") from err
        return model.merge_and_unload()
