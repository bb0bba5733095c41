"""The helpers' shared promises: `load` gives a reusable task, call options apply to every chunk of a stream, and
`clear_cache` drops every model kept loaded."""

import pytest
import torch

import hfapps
from hfapps import models

from tiny_models import sentences


def test_load_returns_a_reusable_task_and_rejects_unknown_tasks(tiny):
    task = hfapps.load("sentiment-analysis", model=tiny["classifier"], device="cpu", dtype="float32")
    assert task.device.type == "cpu" and task.dtype == torch.float32
    assert task("the film was great") == task(["the film was great"])[0]
    with pytest.raises(hfapps.InputError, match="Unknown task"):
        hfapps.load("poetry")


def test_call_time_batch_size_applies_to_every_chunk_of_a_stream(tiny):
    task = hfapps.load("sentiment", tiny["classifier"], batch_size=4)
    sizes = []
    real = task._predict

    def spy(batch, options):
        sizes.append(len(batch))
        return real(batch, options)

    task._predict = spy
    options = {"batch_size": 2, "top_k": 2}
    results = list(task(iter(sentences(70)), **options))
    assert len(results) == 70 and all(len(r) == 2 for r in results)  # top_k reached every chunk too
    assert len(sizes) == 35 and set(sizes) == {2}
    assert options == {"batch_size": 2, "top_k": 2}  # the caller's dict is untouched


def test_clear_cache_drops_gguf_models_too(monkeypatch):
    import torch

    monkeypatch.setattr(models, "load_weights", lambda *a, **k: torch.nn.Linear(1, 1))
    models._load_gguf(models.ModelRef("folder", "model.gguf"), object, torch.device("cpu"), torch.float32)
    assert models._load_gguf.cache_info().currsize == 1
    hfapps.clear_cache()
    assert models._load_gguf.cache_info().currsize == 0
