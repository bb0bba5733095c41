"""Continued causal pre-training (`recipes/clm.yaml`): raw text grouped into blocks, a few steps on a tiny Llama,
held-out perplexity, and a result that the chat and generation helpers load."""

import math

import pytest
from datasets import Dataset
from lm_models import tiny_lm  # noqa: F401 (fixture)

import hfapps
from hfapps.tasks import TRAINING
from hfapps.tasks.arguments import DataArguments
from hfapps.training.runner import train

from runs import STEPS
from tiny_models import sentences


def test_texts_are_joined_with_the_end_token_and_cut_into_blocks(tiny_lm):  # noqa: F811
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    spec = TRAINING["clm"](DataArguments(task="clm", max_seq_length=16))
    texts = sentences(20)
    blocks = spec.tokenize(Dataset.from_dict({"text": texts}), tok, None)
    joined = [i for t in texts for i in [*tok(t, add_special_tokens=False)["input_ids"], tok.eos_token_id]]
    assert blocks.column_names == ["input_ids", "attention_mask"]
    assert all(len(b) == 16 for b in blocks["input_ids"]) and len(blocks) == len(joined) // 16
    assert [i for b in blocks["input_ids"] for i in b] == joined[: len(blocks) * 16]


def test_clm_recipe_trains_scores_perplexity_and_chats(tiny_lm, tmp_path):  # noqa: F811
    text = tmp_path / "my_domain_text.txt"
    text.write_text("\n".join(sentences(80)) + "\n")
    out = tmp_path / "clm"
    metrics = train(
        "clm",
        ["--train_file", str(text), "--model_name_or_path", tiny_lm, "--output_dir", str(out)]
        + ["--max_seq_length", "32", *STEPS],
    )
    loss = metrics["eval"]["eval_loss"]
    assert metrics["eval"]["perplexity"] == pytest.approx(math.exp(loss), rel=1e-6) and loss > 0
    answer = hfapps.load("chat", model=str(out))("the film", max_new_tokens=4)
    assert answer["usage"]["completion_tokens"] == 4
