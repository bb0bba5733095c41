"""Devices and dtypes: what auto picks, what bfloat16 costs where it is emulated, and that it runs where it is asked
for."""

import logging
import os
import subprocess
import sys

import pytest
import torch

import hfapps
from hfapps.cpu import cpu
from hfapps.errors import InputError
from hfapps.inference.devices import resolve_device, resolve_dtype


def test_dtype_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype(torch.float16, cpu) == torch.float16
    with pytest.raises(InputError, match="Unknown dtype 'float8'"):
        resolve_dtype("float8", cpu)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(-1).type == "cpu"
    with pytest.raises(InputError, match="Unknown device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        assert resolve_device(None).type in ("cpu", "mps")
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_bfloat16_warns_once_where_it_is_emulated(caplog):
    from hfapps.inference import devices as runtime

    runtime._warn_emulated_bfloat16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="hfapps"):
        assert runtime.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
        assert runtime.resolve_dtype(torch.bfloat16, torch.device("cpu")) == torch.bfloat16
    warned = [r for r in caplog.records if "bfloat16" in r.getMessage()]
    assert len(warned) == (0 if cpu().bf16_native else 1)
    assert runtime.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert runtime.resolve_dtype(None, torch.device("cpu")) == torch.float32


@pytest.mark.skipif(cpu().arch != "x86_64", reason="ATEN_CPU_CAPABILITY=avx2 is an x86 dispatch level")
def test_bfloat16_on_the_forced_avx2_path_warns_once_naming_its_cost(tiny):
    script = (
        "import hfapps\n"
        f"hfapps.sentiment(['a'], model={tiny['classifier']!r}, dtype='bfloat16')\n"
        "hfapps.clear_cache()\n"
        f"print(hfapps.sentiment('b', model={tiny['classifier']!r}, dtype='bfloat16')['label'])\n"
        f"print(hfapps.load('sentiment', {tiny['classifier']!r}).dtype)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("dtype='bfloat16' on") == 1
    assert "emulated" in done.stderr and "7.5x slower in bfloat16 than in float32" in done.stderr
    assert done.stdout.split()[-1] == "torch.float32"  # auto never picks it


def test_bfloat16_runs_and_agrees_on_labels(tiny):
    texts = [f"the film was {w} today." for w in ("great", "awful", "slow", "brilliant")]
    full = hfapps.load("sentiment", tiny["classifier"])(texts)
    half = hfapps.load("sentiment", tiny["classifier"], dtype="bfloat16")(texts)
    assert all(abs(a["score"] - b["score"]) < 0.02 for a, b in zip(full, half))
