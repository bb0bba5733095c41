"""Length-sorted batching: every item once, longest first, within the token budget, split where padding would waste
compute."""

import pytest

from hfapps.errors import InputError
from hfapps.inference.batching import length_sorted_batches


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
    from hfapps.inference.batching import MIN_SPLIT_BATCH, PADDING_SPLIT

    long, short = 100, int(PADDING_SPLIT * 100) - 5
    # Below MIN_SPLIT_BATCH items the short one joins (too few to be worth another call) ...
    assert length_sorted_batches([long] * (MIN_SPLIT_BATCH - 1) + [short], 64, None) == [list(range(MIN_SPLIT_BATCH))]
    # ... at MIN_SPLIT_BATCH it starts the next batch; a near-equal one never does.
    lengths = [long] * MIN_SPLIT_BATCH + [short, short + 1]
    batches = length_sorted_batches(lengths, 64, None)
    assert [sorted(lengths[i] for i in b) for b in batches] == [[long] * MIN_SPLIT_BATCH, [short, short + 1]]


def test_generation_batches_are_not_split_for_padding_but_keep_the_token_budget():
    from hfapps.inference.batching import MIN_SPLIT_BATCH, PADDING_SPLIT

    long, short = 100, int(PADDING_SPLIT * 100) - 5
    lengths = [long] * MIN_SPLIT_BATCH + [short, short + 1]
    whole = length_sorted_batches(lengths, 64, None, split_padding=False)
    assert [sorted(b) for b in whole] == [list(range(len(lengths)))]
    budgeted = length_sorted_batches(lengths, 64, long * 6, split_padding=False)
    assert [len(b) for b in budgeted] == [6, 4]


def test_batch_size_must_be_positive():
    with pytest.raises(InputError, match="batch_size"):
        length_sorted_batches([1], batch_size=0, max_batch_tokens=None)
