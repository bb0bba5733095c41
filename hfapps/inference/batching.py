"""Length-sorted batching: inputs of similar length share a batch, so padding (wasted compute) stays low."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError

#: A batch ends where the next (shorter) item's length is below this share of the batch's longest ...
PADDING_SPLIT = 0.8
#: ... once the batch holds this many items.
MIN_SPLIT_BATCH = 8


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None, *, split_padding: bool = True
) -> list[list[int]]:
    """Group item indices into batches of similar length, longest first.

    A batch is padded to its longest member, so sorting keeps padding (wasted compute) low. A batch
    holds at most `batch_size` items and, when `max_batch_tokens` is set, at most that many padded
    tokens (but always at least one item). Longest first means memory trouble shows up at once.

    A batch of at least `MIN_SPLIT_BATCH` items also ends where the next item is shorter than
    `PADDING_SPLIT` of its longest: a few calls' overhead costs less than padding a short tail to the
    longest (a 50-text request of mixed SST-2 sentences runs 1.6x faster on a 2-core CPU this way).
    `split_padding=False` turns that off, for generation: each batch decodes its own new tokens, one step
    at a time, and a step costs about the same for 4 sequences as for 16, so every extra batch repeats
    the whole decoding loop.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[current[0]] if current else lengths[index]
        over_budget = max_batch_tokens is not None and longest * (len(current) + 1) > max_batch_tokens
        wasteful = (
            split_padding and len(current) >= MIN_SPLIT_BATCH and lengths[index] + 2 < PADDING_SPLIT * (longest + 2)
        )
        if current and (len(current) == batch_size or over_budget or wasteful):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
