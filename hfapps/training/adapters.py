"""Training LoRA and DoRA adapters (`peft`): a few small matrices beside a frozen model.

A recipe with `peft: lora` trains the adapter; its output folder holds the adapter (adapter_config.json,
adapter_model.safetensors, with the new task head), the model's config with its label maps, the tokenizer
and the base model's id. Loading that folder (`hfapps.models.load_weights`: helpers, `hfapps export`,
`hfapps serve`) loads the base model, applies the adapter and merges it in, so it runs as fast as a fully
fine-tuned model.
"""

from __future__ import annotations

from ..errors import ModelLoadError
from ..models import peft as _peft

#: The new task heads that train whole (peft's modules_to_save for these task types), so never adapted.
HEADS = {"SEQ_CLS": ["classifier", "score"], "QUESTION_ANS": ["qa_outputs"]}


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
        task_type=task_type,
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        use_dora=model_args.peft == "dora",
        exclude_modules=HEADS.get(task_type or "") if targets == "all-linear" else None,
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules the model does not have
        raise ModelLoadError(
            f"Could not add a {model_args.peft} adapter: {err}. Set lora_target_modules to names "
            "of the model's linear layers (e.g. [query, value] for BERT), or to all-linear."
        ) from err
    # The id the recipe named (what get_peft_model records is where the weights loaded from, e.g. a packaged copy).
    wrapped.peft_config["default"].base_model_name_or_path = base_id
    return wrapped


def save_config(model, folder: str) -> None:
    """Write the base model's config (its label maps and head) beside a saved adapter, so that the folder
    resolves and loads like any model folder."""
    base = model.get_base_model()
    base.config.architectures = [type(base).__name__]
    base.config.save_pretrained(folder)
