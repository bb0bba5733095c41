"""The decoding pieces on their own: what a stream may show before a stop string is certain, the batch streamer fed
real token ids (a stop string split over tokens, several rows, per-row limits, cancelled rows), and sampling."""

import threading

import pytest
import torch
from lm_models import tokenizer

from hfapps.errors import InputError
from hfapps.inference.decoding import JsonGrammar, Row, RowsDone, RowStreamer, sampling, schema_text, shown_length


@pytest.mark.parametrize(
    "text, stops, expected",
    [
        ("hello world", ["STOP"], (11, False)),
        ("hello wor", ["world"], (6, False)),  # "wor" may become "world": held back
        ("hello world and more", ["world"], (6, True)),
        ("a b", ["b", "a"], (0, True)),  # the earliest stop string wins
        ("ab\ufffd", [], (2, False)),  # a character whose bytes are still arriving
        ("xx#", ["##", "#!"], (2, False)),
        ("plain", [], (5, False)),
    ],
)
def test_shown_length(text, stops, expected):
    assert shown_length(text, stops) == expected


def _feed(tok, rows, token_rows, end_ids=frozenset()):
    """Run a streamer as generate does: the prompts first, then one token per row per step."""
    streamer = RowStreamer(tok, rows, set(end_ids))
    streamer.put(torch.zeros(len(rows), 3, dtype=torch.long))
    done = RowsDone(rows)
    for step in zip(*token_rows):
        streamer.put(torch.tensor(step))
        if bool(done(torch.zeros(len(rows), 1, dtype=torch.long), None).all()):
            break
    streamer.end()
    return streamer


def test_a_stop_string_split_over_tokens_is_never_shown():
    tok = tokenizer()
    text = "the film was great and the team was boring today"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # a stop string that starts inside one token and ends inside a later one
    stop = "eat and th"
    assert not any(stop in tok.decode([i]) for i in ids)
    shown = []
    row = Row(prompt_tokens=3, max_new_tokens=100, stops=[stop], on_delta=shown.append)
    _feed(tok, [row], [ids])
    assert "".join(shown) == row.text == text[: text.index(stop)]
    assert row.finish_reason == "stop" and len(row.ids) < len(ids)  # it stopped at the token that completed it


def test_rows_finish_on_their_own_and_cancelled_rows_stop():
    tok = tokenizer()
    ids = tok("Hello there. How are you? I am fine, thanks.", add_special_tokens=False)["input_ids"]
    end = tok.convert_tokens_to_ids("<|im_end|>")
    short = Row(prompt_tokens=1, max_new_tokens=3)
    ended = Row(prompt_tokens=1, max_new_tokens=50)
    cancelled = Row(prompt_tokens=1, max_new_tokens=50, cancelled=threading.Event())
    cancelled.cancelled.set()
    running = Row(prompt_tokens=1, max_new_tokens=6)
    tokens = [ids, [*ids[:2], end, *ids[3:]], ids, ids]
    _feed(tok, [short, ended, cancelled, running], tokens, end_ids={end})
    assert (short.finish_reason, len(short.ids), short.text) == ("length", 3, tok.decode(ids[:3]))
    assert (ended.finish_reason, ended.text, ended.usage["completion_tokens"]) == ("stop", tok.decode(ids[:2]), 3)
    assert cancelled.finish_reason == "cancelled" and cancelled.ids == []
    assert running.finish_reason == "length" and running.text == tok.decode(ids[:6])


def test_held_back_text_is_shown_when_decoding_ends_without_the_stop():
    tok = tokenizer()
    ids = tok("the film was great", add_special_tokens=False)["input_ids"]
    shown = []
    row = Row(prompt_tokens=1, max_new_tokens=len(ids), stops=["great!"], on_delta=shown.append)
    _feed(tok, [row], [ids])
    assert "".join(shown) == "the film was great" and row.finish_reason == "length"


def test_sampling_settings():
    assert sampling()["do_sample"] is False
    assert sampling(temperature=0)["do_sample"] is False
    assert sampling(temperature=0.7) == {"do_sample": True, "temperature": 0.7, "top_p": 1.0, "top_k": 0}
    assert sampling(top_p=0.9)["do_sample"] is True and sampling(top_p=0.9)["temperature"] == 1.0
    assert sampling(repetition_penalty=1.3)["repetition_penalty"] == 1.3


def test_invalid_schemas_are_input_errors():
    with pytest.raises(InputError, match="not valid JSON"):
        schema_text("{nope")
    with pytest.raises(InputError, match="must be a JSON object"):
        schema_text("[1]")
    grammar = JsonGrammar(tokenizer(), len(tokenizer()))
    with pytest.raises(InputError, match="objekt"):
        grammar.compile('{"type": "objekt"}')
    assert grammar.compile('{"type": "object"}') is not None
