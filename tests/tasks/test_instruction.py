"""Instruction tuning (`recipes/sft.yaml`, TRL's SFTTrainer) on the tiny Llama: the loss covers the assistant's
tokens only (read off the collated batch the trainer trains on), packing keeps that, LoRA and full fine-tuning,
bad conversations refused by file and row before any weights load, labelled CSV rows turned into instructions,
templates hfapps cannot train on refused, and a result that `hfapps.chat` loads."""

import json

import pytest
from lm_models import CHATML, tiny_lm, tokenizer  # noqa: F401 (fixture)
from transformers import TrainerCallback

import hfapps
from hfapps import models
from hfapps.errors import DataError, RecipeError
from hfapps.tasks import instruction
from hfapps.training import runner
from hfapps.training.runner import train

#: A few steps, no evaluation or checkpoint during training.
QUICK = [
    *("--max_steps", "2", "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no"),
    *("--per_device_train_batch_size", "4", "--report_to", "none"),
]
CHATS = [
    [{"role": "user", "content": "the film was great"}, {"role": "assistant", "content": "positive"}],
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "the team was boring"},
        {"role": "assistant", "content": "negative"},
        {"role": "user", "content": "and today?"},
        {"role": "assistant", "content": "wonderful"},
    ],
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def chats_file(tmp_path, copies=4):
    return write_jsonl(tmp_path / "chats.jsonl", [{"messages": c} for c in CHATS * copies])


class FirstBatch(TrainerCallback):
    """Keeps the first collated batch the trainer trains on, and the tokenizer."""

    def on_train_begin(self, args, state, control, train_dataloader=None, processing_class=None, **kwargs):
        self.batch = next(iter(train_dataloader))
        self.tokenizer = processing_class


def labelled_spans(batch, tokenizer):
    """The text of each run of tokens that carries a label (-100: no loss)."""
    spans = []
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        run: list[int] = []
        for token, label in zip(ids, labels):
            if label != -100:
                assert label == token  # the model shifts the labels itself
                run.append(token)
            elif run:
                spans.append(tokenizer.decode(run))
                run = []
        if run:
            spans.append(tokenizer.decode(run))
    return spans


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_only_the_assistants_tokens_carry_the_loss(tiny_lm, tmp_path, packing):  # noqa: F811
    seen = FirstBatch()
    train(
        "sft",
        ["--model_name_or_path", tiny_lm, "--train_file", chats_file(tmp_path, copies=2), "--output_dir"]
        + [str(tmp_path / "out"), "--packing", str(packing).lower(), "--per_device_train_batch_size", "4"]
        + QUICK[:-4],
        callbacks=[seen],
    )
    batch = seen.batch
    spans = labelled_spans(batch, seen.tokenizer)
    assert sorted(set(spans)) == ["negative<|im_end|>", "positive<|im_end|>", "wonderful<|im_end|>"]
    if packing:  # several conversations in one row, each with its own positions
        assert batch["input_ids"].shape[0] == 1
        positions = batch["position_ids"][0].tolist()
        assert positions.count(0) >= 2
    else:
        assert batch["input_ids"].shape[0] == 3  # one row per conversation: 4, one held out for validation
    # The user's words never carry a label.
    assert not any("film" in span or "boring" in span for span in spans)


def test_lora_by_default_and_full_fine_tuning_without_peft(tiny_lm, tmp_path):  # noqa: F811
    data = chats_file(tmp_path)
    lora = tmp_path / "lora"
    train("sft", ["--model_name_or_path", tiny_lm, "--train_file", data, "--output_dir", str(lora), *QUICK])
    assert (lora / "adapter_config.json").is_file() and not (lora / "model.safetensors").exists()
    run = json.loads((lora / "run.json").read_text())
    assert 0 < run["trainable_parameters"] < run["parameters"]
    assert json.loads((lora / "hfapps.json").read_text())["task"] == "chat"
    assert (lora / "README.md").is_file() and (lora / "metrics.json").is_file()

    full = tmp_path / "full"  # --peft none: every weight, as the recipe's header says
    train(
        "sft",
        ["--model_name_or_path", tiny_lm, "--train_file", data, "--output_dir", str(full), "--peft", "none", *QUICK],
    )
    assert (full / "model.safetensors").is_file() and not (full / "adapter_config.json").exists()
    run = json.loads((full / "run.json").read_text())
    assert run["trainable_parameters"] == run["parameters"]


BAD_ROWS = {
    "no_content": ([{"role": "user"}, {"role": "assistant", "content": "hi"}], "needs a 'role' and a text 'content'"),
    "unknown_role": ([{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "hi"}], "unknown role 'bot'"),
    "no_assistant": ([{"role": "user", "content": "hi"}], "has no assistant message"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_conversation_is_refused_by_file_and_row_before_any_weights_load(tiny_lm, tmp_path, monkeypatch, case):  # noqa: F811
    bad, says = BAD_ROWS[case]
    rows = [{"messages": c} for c in CHATS * 3]
    rows.insert(4, {"messages": bad})
    data = write_jsonl(tmp_path / "chats.jsonl", rows)

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were loaded before the data was checked")

    monkeypatch.setattr(models, "load_weights", no_weights)
    with pytest.raises(DataError) as caught:
        train("sft", ["--model_name_or_path", tiny_lm, "--train_file", data, "--output_dir", str(tmp_path / "o")])
    message = str(caught.value)
    assert f"{data}, row 5" in message and says in message
    assert not (tmp_path / "o").exists()


def test_labelled_rows_become_instructions_through_prompt_template(tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\nthe film was great,1\nthe team was boring,0\na quiet river,1\nloud city,0\n")
    *_, data_args, training_args, spec, _ = runner.setup(
        "sft_classifier",
        ["--train_file", str(csv), "--validation_file", str(csv), "--model_name_or_path", "unused"]
        + ["--label_list", "negative", "positive"],
    )
    splits = runner.load_data(spec, data_args, training_args)
    assert splits["train"].column_names == ["messages"]
    first = splits["train"]["messages"][0]
    assert first[-1] == {"role": "assistant", "content": "positive"}
    assert first[-2]["role"] == "user" and first[-2]["content"].endswith("the film was great")
    assert "positive or negative" in first[-2]["content"]


def test_prompt_and_completion_columns_become_one_conversation(tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "2+2?", "completion": "4"}] * 4)
    *_, data_args, training_args, spec, _ = runner.setup("sft", ["--train_file", data])
    splits = runner.load_data(spec, data_args, training_args)
    assert splits["train"]["messages"][0] == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]


def test_the_shipped_training_template_renders_as_the_models_own_and_marks_the_answer():
    tok = tokenizer()
    template = instruction.training_template(tok)
    assert "{% generation %}" in template and template != CHATML
    for conversation in instruction.PROBES:
        for prompt in (False, True):
            ours = tok.apply_chat_template(
                conversation, chat_template=template, tokenize=False, add_generation_prompt=prompt
            )
            assert ours == tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=prompt)


def test_a_template_hfapps_cannot_train_on_is_refused_naming_the_fix():
    tok = tokenizer()
    tok.chat_template = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(RecipeError, match="chat_template_path"):
        instruction.training_template(tok)
    tok.chat_template = None
    with pytest.raises(RecipeError, match="no chat template"):
        instruction.training_template(tok)


def test_the_sample_set_is_well_formed_chats():
    spec = instruction.InstructionTraining(runner.recipe_config.DataArguments(task="sft"))
    sample = spec.load_sample()
    assert 40 <= len(sample) <= 80
    assert all(instruction.problem(c) is None for c in sample["messages"])
    assert any(len(c) > 3 for c in sample["messages"]) and any(c[0]["role"] == "system" for c in sample["messages"])


def test_the_tuned_model_answers_through_the_chat_helper_and_the_server(tiny_lm, tmp_path):  # noqa: F811
    rows = [
        {"messages": [{"role": "user", "content": f"hello {i}"}, {"role": "assistant", "content": "great"}]}
        for i in range(16)
    ]
    data = write_jsonl(tmp_path / "great.jsonl", rows)
    out = tmp_path / "great"
    train(
        "sft",
        ["--model_name_or_path", tiny_lm, "--train_file", data, "--output_dir", str(out), *QUICK]
        + ["--max_steps", "40", "--learning_rate", "3e-2", "--lora_dropout", "0"],
    )
    question = [{"role": "user", "content": "hello 99"}]
    answer = hfapps.chat(question, model=str(out), max_new_tokens=6)
    assert answer["content"].startswith("great")  # the untrained model never says it
    pytest.importorskip("fastapi")
    from servers import Server, request

    server = Server({"chat": str(out)})  # a real `hfapps serve` process, OpenAI's chat route
    try:
        status, body = request(
            server.url, "POST", "/v1/chat/completions", {"model": "chat", "messages": question, "max_tokens": 6}
        )
    finally:
        server.stop()
    assert status == 200 and body["choices"][0]["message"]["content"] == answer["content"]
