"""What keeps a training run safe under faults: checkpoints that are marked whole only once fully
written, resuming from the last whole one, and a stop with a clear message when the loss stops being finite."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import torch
from transformers import TrainerCallback

from ..errors import NonFiniteLossError
from ..models import COMPLETE_MARKER, last_complete_checkpoint

logger = logging.getLogger("hfapps")


class MarkCompleteCheckpoints(TrainerCallback):
    """Marks each checkpoint whole once the Trainer has written all of it (model, optimizer, state)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isdir(folder):
                _write_marker(folder, state.global_step)


def _write_marker(folder: str, step: int) -> None:
    tmp = os.path.join(folder, COMPLETE_MARKER + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"global_step": step, "time": time.time()}, handle)
    os.replace(tmp, os.path.join(folder, COMPLETE_MARKER))


def guard_finite_loss(trainer) -> None:
    """Stop training with a clear message as soon as a step's loss is NaN or infinite.

    The check runs before the optimizer step, so the broken update is never applied nor saved: the last
    checkpoint on disk is the last good state.
    """
    step = trainer.training_step

    def checked_training_step(*args, **kwargs):
        loss = step(*args, **kwargs)
        if not torch.isfinite(loss).all():
            at = trainer.state.global_step + 1
            last = last_complete_checkpoint(trainer.args.output_dir)
            where = (
                f"The last good checkpoint is {last}; resume from it with --resume_from_checkpoint {last}"
                if last
                else "No checkpoint had been saved yet"
            )
            raise NonFiniteLossError(
                f"Training stopped: the loss became {loss.item()} at step {at}. {where}. Common fixes: a lower "
                "learning_rate, max_grad_norm (gradient clipping), float32 instead of float16, or checking the "
                "data for empty or extreme examples."
            )
        return loss

    trainer.training_step = checked_training_step


def publish(staging: str, output_dir: str) -> None:
    """Move a fully written model folder's files into `output_dir`, each with an atomic rename."""
    for name in os.listdir(staging):
        os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    shutil.rmtree(staging, ignore_errors=True)
