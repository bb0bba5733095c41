"""Packed CPU weights for decoding: the same results, packed again when a weight changes, and the plain path where
packing does not apply."""

import pytest
import torch
from torch import nn

import hfapps
from hfapps.inference import packing

from conftest import missing
from tiny_models import sentences


@pytest.fixture(autouse=True)
def _needs_mkl():
    if not packing.available(torch.device("cpu"), torch.float32):
        missing("MKL in this PyTorch (or HFAPPS_PACK_WEIGHTS=0 is set)")


def packed_linear(n_in=48, n_out=80, bias=True):
    torch.manual_seed(0)
    plain = nn.Linear(n_in, n_out, bias=bias)
    packed = nn.Linear(n_in, n_out, bias=bias)
    packed.load_state_dict(plain.state_dict())
    assert packing.pack_linear_layers(packed) == 1
    return plain, packed


@pytest.mark.parametrize("shape", [(1, 48), (7, 48), (16, 1, 48), (4, 16, 48), (200, 48)])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_matches_plain(shape, bias):
    plain, packed = packed_linear(bias=bias)
    x = torch.randn(*shape)
    with torch.inference_mode():
        expected, first, again = plain(x), packed(x), packed(x)
    assert first.shape == again.shape == expected.shape
    torch.testing.assert_close(first, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, expected, rtol=1e-5, atol=1e-5)
    rows = x.numel() // x.shape[-1]
    assert (packed._hfapps_packed_key is not None) == (rows <= packing.MAX_PACKED_ROWS)


def test_a_row_count_is_packed_when_it_repeats_not_for_a_one_off_prompt():
    plain, packed = packed_linear()
    prompt, step = torch.randn(40, 48), torch.randn(1, 48)
    with torch.inference_mode():
        torch.testing.assert_close(packed(prompt), plain(prompt), rtol=1e-5, atol=1e-5)
        assert packed._hfapps_packed_key is None  # the prefill's rows came once: plain sgemm
        packed(step)
        assert packed._hfapps_packed_key is None
        for _ in range(3):  # decoding: the same row count at every step
            torch.testing.assert_close(packed(step), plain(step), rtol=1e-5, atol=1e-5)
            assert packed._hfapps_packed_key is not None and packed._hfapps_packed_key[0] == 1


def test_a_weight_changed_in_place_is_packed_again():
    plain, packed = packed_linear()
    x = torch.randn(8, 48)
    with torch.inference_mode():
        packed(x), packed(x)
    assert packed._hfapps_packed_key is not None
    with torch.no_grad():
        packed.weight.mul_(2.0)
        plain.weight.mul_(2.0)
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), plain(x), rtol=1e-5, atol=1e-5)


def test_gradients_take_the_plain_path():
    plain, packed = packed_linear()
    x = torch.randn(8, 48)
    packed(x).sum().backward()
    plain(x).sum().backward()
    torch.testing.assert_close(packed.weight.grad, plain.weight.grad)


def test_other_dtypes_take_the_plain_path():
    plain, packed = packed_linear()
    plain, packed = plain.to(torch.bfloat16), packed.to(torch.bfloat16)
    x = torch.randn(8, 48, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(packed(x), plain(x))
    assert packed._hfapps_packed_key is None


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_generation_is_the_same_with_and_without_packing(tiny, kind, monkeypatch):
    texts = sentences(12, seed=5)
    packed = hfapps.load("summarization", tiny[kind], batch_size=4)
    monkeypatch.setenv("HFAPPS_PACK_WEIGHTS", "0")
    plain = hfapps.load("summarization", tiny[kind], batch_size=4)
    assert any(hasattr(m, "_hfapps_packed_key") for m in packed.pipeline.model.modules())
    assert not any(hasattr(m, "_hfapps_packed_key") for m in plain.pipeline.model.modules())
    assert packed(texts, max_new_tokens=8) == plain(texts, max_new_tokens=8)


def test_the_chat_path_is_packed_too(tiny):
    task = hfapps.load("summarization", tiny["chat"])
    assert any(hasattr(m, "_hfapps_packed_key") for m in task.chat.pipeline.model.modules())
