import pytest
import torch

from hfapps.errors import InputError
from hfapps.inputs import check_text, chunked, shape_of
from hfapps.runtime import length_sorted_batches, resolve_device, resolve_dtype


def test_batches_cover_every_item_once_longest_first():
    lengths = [5, 100, 7, 7, 50, 1, 300, 2]
    batches = length_sorted_batches(lengths, batch_size=3, max_batch_tokens=None)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) <= 3 for b in batches)


def test_token_budget_limits_padded_batch_size():
    lengths = [100] * 4 + [10] * 20
    batches = length_sorted_batches(lengths, batch_size=64, max_batch_tokens=250)
    for batch in batches:
        assert max(lengths[i] for i in batch) * len(batch) <= 250
    assert len(batches[0]) == 2  # two 100-token texts fit in 250 tokens, three do not


def test_an_item_over_budget_still_gets_its_own_batch():
    assert length_sorted_batches([1000, 3], batch_size=8, max_batch_tokens=10) == [[0], [1]]


def test_a_full_enough_batch_ends_before_a_much_shorter_item():
    from hfapps.runtime import MIN_SPLIT_BATCH, PADDING_SPLIT

    long, short = 100, int(PADDING_SPLIT * 100) - 5
    # Below MIN_SPLIT_BATCH items the short one joins (too few to be worth another call) ...
    assert length_sorted_batches([long] * (MIN_SPLIT_BATCH - 1) + [short], 64, None) == [list(range(MIN_SPLIT_BATCH))]
    # ... at MIN_SPLIT_BATCH it starts the next batch; a near-equal one never does.
    lengths = [long] * MIN_SPLIT_BATCH + [short, short + 1]
    batches = length_sorted_batches(lengths, 64, None)
    assert [sorted(lengths[i] for i in b) for b in batches] == [[long] * MIN_SPLIT_BATCH, [short, short + 1]]


def test_generation_batches_are_not_split_for_padding_but_keep_the_token_budget():
    from hfapps.runtime import MIN_SPLIT_BATCH, PADDING_SPLIT

    long, short = 100, int(PADDING_SPLIT * 100) - 5
    lengths = [long] * MIN_SPLIT_BATCH + [short, short + 1]
    whole = length_sorted_batches(lengths, 64, None, split_padding=False)
    assert [sorted(b) for b in whole] == [list(range(len(lengths)))]
    budgeted = length_sorted_batches(lengths, 64, long * 6, split_padding=False)
    assert [len(b) for b in budgeted] == [6, 4]


def test_batch_size_must_be_positive():
    with pytest.raises(InputError, match="batch_size"):
        length_sorted_batches([1], batch_size=0, max_batch_tokens=None)


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


def test_shapes_of_inputs():
    assert shape_of("a") == "single"
    assert shape_of(["a"]) == "list"
    assert shape_of(("a",)) == "list"
    assert shape_of(x for x in "ab") == "stream"
    with pytest.raises(InputError, match="None"):
        shape_of(None)
    with pytest.raises(InputError, match="decode"):
        shape_of(b"bytes")
    with pytest.raises(InputError, match="int"):
        shape_of(3)


@pytest.mark.parametrize("bad, message", [("", "empty"), ("  \n", "empty"), (None, "NoneType"), (3, "int")])
def test_check_text_names_the_problem_and_index(bad, message):
    with pytest.raises(InputError, match=message) as err:
        check_text(bad, 7)
    assert "index 7" in str(err.value)


def test_chunked_keeps_order_and_remainder():
    assert list(chunked(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
