"""Knowledge distillation for classification and sentiment: a smaller student learns from a fine-tuned teacher.

    hfapps train sentiment --dataset_name sample
    hfapps train distill --teacher runs/sentiment --dataset_name sample --output_dir runs/sentiment-small

The student is the teacher cut to `student_layers` of its layers, spread evenly (6 -> 3 keeps layers 1, 3 and 5),
with its embeddings and head; or any model given as `model_name_or_path` that shares the teacher's vocabulary.
Its loss mixes the gold labels' cross-entropy with the Kullback-Leibler divergence from the teacher's softened
distribution (Hinton et al., 2015):

    loss = distill_alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - distill_alpha) * CE(labels)

with T = `distill_temperature`. The output folder is a model folder like any other run (and exports to int8).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, Trainer

from ..errors import RecipeError

LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layers", "num_layers")


def kept_layers(total: int, keep: int) -> list[int]:
    """`keep` of `total` layers, spread evenly and always including the last (6 -> 3: [1, 3, 5])."""
    if not 1 <= keep <= total:
        raise RecipeError(f"student_layers must be between 1 and the teacher's {total} layers, got {keep}.")
    return [round((i + 1) * total / keep) - 1 for i in range(keep)]


def _layer_list(model: PreTrainedModel, total: int) -> tuple[Any, str, torch.nn.ModuleList]:
    """The (parent module, attribute, ModuleList) that holds the model's `total` transformer layers."""
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == total:
                return module, name, child
    raise RecipeError(
        f"Could not find the {total} layers of {type(model).__name__} to cut a student from; pass a "
        "smaller model as model_name_or_path instead of student_layers."
    )


def cut_student(teacher: PreTrainedModel, keep: int) -> PreTrainedModel:
    """A copy of `teacher` with `keep` of its layers (evenly spread), its embeddings and its head."""
    key = next((k for k in LAYER_COUNT_KEYS if isinstance(getattr(teacher.config, k, None), int)), None)
    if key is None:
        raise RecipeError(
            f"{type(teacher).__name__} does not say how many layers it has; pass a smaller model "
            "as model_name_or_path instead of student_layers."
        )
    total = getattr(teacher.config, key)
    indices = kept_layers(total, keep)
    student = copy.deepcopy(teacher)
    parent, name, layers = _layer_list(student, total)
    setattr(parent, name, torch.nn.ModuleList([layers[i] for i in indices]))
    setattr(student.config, key, keep)
    for new_index, layer in enumerate(getattr(parent, name)):  # attention layers that cache by index
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    return student


def check_teacher(model_args: Any, labels: list[str] | None) -> None:
    """Before any weights load: the teacher is a classifier with the data's labels, in the same order."""
    from .. import models

    ref, config = models.resolve(model_args.teacher, trust_remote_code=model_args.trust_remote_code)
    models.require_head(
        config,
        ref,
        suffixes=("ForSequenceClassification",),
        task="classification",
        hint="The teacher must be a fine-tuned classifier (a `hfapps train` sentiment or classification output).",
    )
    teacher_labels = [config.id2label[i] for i in range(config.num_labels)]
    if labels is not None and [str(label) for label in labels] != [str(label) for label in teacher_labels]:
        raise RecipeError(
            f"The teacher's labels {teacher_labels} differ from the data's {labels}: set label_list to "
            "the teacher's labels, in its order."
        )


def check_vocabulary(teacher_tokenizer: Any, tokenizer: Any) -> None:
    """The teacher reads the student's batches, so both must tokenize alike."""
    if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise RecipeError(
            "The student's tokenizer differs from the teacher's, so the teacher cannot read the same "
            "batches: distill into a model with the teacher's vocabulary (or leave model_name_or_path "
            "unset to cut the student from the teacher)."
        )


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    gold_loss: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    )
    return alpha * temperature**2 * soft + (1 - alpha) * gold_loss


def prepare(
    model_args: Any, model: PreTrainedModel, tokenizer: Any, base: type[Trainer]
) -> tuple[PreTrainedModel, type[Trainer]]:
    """The student (cut to `student_layers` when set) and the Trainer class that distills the teacher into it."""
    from transformers import AutoModelForSequenceClassification

    from .. import models

    ref, _ = models.resolve(model_args.teacher, trust_remote_code=model_args.trust_remote_code)
    teacher = models.load_weights(
        ref,
        AutoModelForSequenceClassification,
        trust_remote_code=model_args.trust_remote_code,
        allow_pickle=model_args.allow_pickle,
    )
    check_vocabulary(models.load_tokenizer(ref, trust_remote_code=model_args.trust_remote_code), tokenizer)
    if model_args.student_layers:
        model = cut_student(model, model_args.student_layers)
    return model, trainer_class(base, teacher, model_args.distill_temperature, model_args.distill_alpha)


def trainer_class(base: type[Trainer], teacher: PreTrainedModel, temperature: float, alpha: float) -> type[Trainer]:
    """`base` (the task's Trainer) with the distillation loss; the teacher runs in eval mode, without gradients."""
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise RecipeError(
            f"distill_temperature must be > 0 and distill_alpha in [0, 1]; got {temperature} and {alpha}."
        )
    teacher.eval().requires_grad_(False)

    class DistillationTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(**inputs)
            if teacher.device != outputs.logits.device:
                teacher.to(outputs.logits.device)
            with torch.no_grad():
                teacher_logits = teacher(**{k: v for k, v in inputs.items() if k != "labels"}).logits
            loss = distillation_loss(outputs.logits, teacher_logits, outputs.loss, temperature, alpha)
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer
