"""`hfapps env`: versions, the Hub, the CPU and what hfapps does on it, and the AVX2 path forced."""

import os
import subprocess
import sys

import pytest

from hfapps.cli import main
from hfapps.cpu import cpu


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_env_reports_versions_and_hub(capsys):
    code, out, _ = run(capsys, "env")
    assert code == 0
    assert "transformers: 5." in out and "torch: " in out
    assert "hub: offline (HF_HUB_OFFLINE is set)" in out


def run_env(**environment):
    done = subprocess.run(
        [sys.executable, "-m", "hfapps", "env"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **environment},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_env_names_the_cpu_and_what_hfapps_does_on_it():
    out = run_env()
    here = cpu()
    assert f"cpu: {here.describe()}" in out and f"int8 kernels: {here.int8_kernels}" in out
    assert ("ONNX int8 exports: u8 x u8 products" in out) is here.int8_saturates
    assert ("bfloat16: native" in out) is here.bf16_native and ("bfloat16: emulated" in out) is not here.bf16_native
    assert "as fast as float32 just now" in out or "x float32 just now" in out


@pytest.mark.skipif(cpu().arch != "x86_64", reason="ATEN_CPU_CAPABILITY=avx2 is an x86 dispatch level")
def test_env_on_the_avx2_path_forced():
    """ATEN_CPU_CAPABILITY=avx2 shows hfapps the AVX2-only CPU that PyTorch then dispatches for, on any x86 CPU."""
    out = run_env(ATEN_CPU_CAPABILITY="avx2")
    assert "torch ISA AVX2" in out and "capped by ATEN_CPU_CAPABILITY=avx2" in out
    assert "int8 kernels: AVX2 without VNNI" in out and "ONNX int8 exports: u8 x u8 products" in out
    assert "bfloat16: emulated" in out and "never picks it" in out
