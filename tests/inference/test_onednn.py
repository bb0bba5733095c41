"""oneDNN products with fused bias and GELU for CPU float32 encoders: the same outputs as the plain model, the
oneDNN kernel really run (seen in PyTorch's profiler), and the plain path wherever oneDNN's kernel must not run
(gradients, tracing, few rows)."""

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from transformers import BertConfig, BertModel

import hfapps
from hfapps.inference import onednn

from conftest import missing
from tiny_models import make_encoder, sentences

FUSED_OP = "mkldnn::_linear_pointwise"


@pytest.fixture(autouse=True)
def _needs_onednn():
    if not onednn.available(torch.device("cpu"), torch.float32):
        missing("oneDNN in this PyTorch (or HFAPPS_ONEDNN=0 is set)")


def ops_run(fn) -> dict[str, int]:
    """How many times each operator ran inside `fn()`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key: event.count for event in prof.key_averages()}


def bert_pair(layers: int = 2):
    """The same tiny BERT twice: one plain, one fused."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=200, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=128
    )
    plain = BertModel(config).eval()
    fused = BertModel(config).eval()
    fused.load_state_dict(plain.state_dict())
    fused.eval()
    return plain, fused, onednn.fuse_linear_layers(fused)


@pytest.mark.parametrize("shape", [(4, 48), (64, 48), (2, 100, 48), (300, 48)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_matches_plain_and_runs_onednn_from_the_row_threshold(shape, bias):
    torch.manual_seed(0)
    plain = nn.Linear(48, 80, bias=bias)
    fused = nn.Linear(48, 80, bias=bias)
    fused.load_state_dict(plain.state_dict())
    assert onednn.fuse_linear_layers(fused) == 1
    x = torch.randn(*shape)
    with torch.inference_mode():
        expected = plain(x)
        ran = ops_run(lambda: fused(x))
        got = fused(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    rows = x.numel() // x.shape[-1]
    assert (ran.get(FUSED_OP, 0) == 1) == (rows >= onednn.MIN_ROWS)


def test_a_fused_encoder_gives_the_plain_outputs_with_gelu_inside_the_product():
    plain, fused, count = bert_pair(layers=2)
    assert count == 2 * 6 + 1  # q, k, v, attention out, intermediate, output per layer; the pooler
    ids = torch.randint(0, 200, (8, 40))
    mask = torch.ones_like(ids)
    mask[4:, 25:] = 0  # padded rows, as a length-sorted batch has
    with torch.inference_mode():
        expected = plain(input_ids=ids, attention_mask=mask).last_hidden_state
        ran = ops_run(lambda: fused(input_ids=ids, attention_mask=mask))
        got = fused(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert ran.get(FUSED_OP, 0) == 2 * 6  # the pooler's 8 rows run plain
    assert ran.get("aten::gelu", 0) == 0  # applied inside the intermediate products


def test_training_a_fused_model_gives_the_plain_gradients():
    """oneDNN's kernel has no backward: with gradients on, the plain products run, and the gradients are right."""
    plain, fused, _ = bert_pair(layers=1)
    plain.train(), fused.train()
    ids = torch.randint(0, 200, (4, 32))
    torch.manual_seed(1)  # the same dropout masks
    plain(input_ids=ids).last_hidden_state.pow(2).mean().backward()
    torch.manual_seed(1)
    ran = ops_run(lambda: fused(input_ids=ids).last_hidden_state.pow(2).mean().backward())
    assert ran.get(FUSED_OP, 0) == 0
    for (name, a), b in zip(plain.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_traced_fused_model_holds_only_plain_operators():
    """Tracing (what the ONNX export runs) records the plain products, which every runtime knows."""
    _, fused, _ = bert_pair(layers=1)
    ids = torch.randint(0, 200, (4, 32))
    with torch.no_grad():
        traced = torch.jit.trace(fused, (ids,), strict=False)
    graph = str(traced.inlined_graph)
    assert "aten::linear" in graph and "_linear_pointwise" not in graph


def test_the_embedding_helper_runs_fused_products_unless_turned_off(tmp_path, monkeypatch):
    encoder_folder = make_encoder(str(tmp_path / "encoder"))
    texts = sentences(48)
    fused_task = hfapps.load("embedding", model=encoder_folder)
    assert any(getattr(m, "_hfapps_onednn", False) for m in fused_task.model.modules())
    ran = ops_run(lambda: fused_task.encode(texts))
    assert ran.get(FUSED_OP, 0) > 0
    monkeypatch.setenv("HFAPPS_ONEDNN", "0")
    plain_task = hfapps.load("embedding", model=encoder_folder)
    assert not any(getattr(m, "_hfapps_onednn", False) for m in plain_task.model.modules())
    assert ops_run(lambda: plain_task.encode(texts)).get(FUSED_OP, 0) == 0
    torch.testing.assert_close(torch.from_numpy(fused_task.encode(texts)), torch.from_numpy(plain_task.encode(texts)))


EMULATED_SCRIPT = """
import json
import torch
from torch.profiler import ProfilerActivity, profile
from transformers import BertConfig, BertModel
from hfapps.inference import onednn
torch.manual_seed(0)
config = BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
plain, fused = BertModel(config).eval(), BertModel(config).eval()
fused.load_state_dict(plain.state_dict())
onednn.fuse_linear_layers(fused)
ids = torch.randint(0, 200, (8, 40))
with torch.inference_mode():
    expected = plain(input_ids=ids).last_hidden_state
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        got = fused(input_ids=ids).last_hidden_state
ran = {event.key: event.count for event in prof.key_averages()}
print(json.dumps({"isa": torch.backends.cpu.get_cpu_capability(), "difference": float((got - expected).abs().max()),
                  "fused": ran.get("mkldnn::_linear_pointwise", 0), "gelu": ran.get("aten::gelu", 0)}))
"""


@pytest.mark.slow
def test_fused_products_on_an_emulated_zen2_give_the_plain_outputs():
    """oneDNN picks its kernels from CPUID: under QEMU's AMD EPYC Rome (Zen 2: AVX2, no AVX-512) it runs its AVX2
    ones, which must give the plain model's outputs too."""
    import json
    import platform
    import shutil
    import subprocess
    import sys

    qemu = shutil.which("qemu-x86_64")
    if platform.machine() != "x86_64":
        pytest.skip("QEMU user-mode emulation of an x86 CPU is run on x86 hosts")
    if qemu is None:
        missing("qemu-x86_64 (Debian's qemu-user package)")
    result = subprocess.run(
        [qemu, "-cpu", "EPYC-Rome", sys.executable, "-c", EMULATED_SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["isa"] == "AVX2"
    assert seen["fused"] == 2 * 6 and seen["gelu"] == 0
    assert seen["difference"] < 1e-4, seen
