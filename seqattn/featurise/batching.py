"""Batches of similar length, shared by every task that trains or predicts on padded sequences."""

from __future__ import annotations

import random


def length_batches(lengths: list[int], max_tokens: int, shuffle: random.Random | None = None) -> list[list[int]]:
    """Group indices of similar length into batches of at most ``max_tokens`` padded positions.

    Sorting by length keeps padding small; with ``shuffle`` the batches (not their members)
    come in a random order.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if current and longest_if_added * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle is not None:
        shuffle.shuffle(batches)
    return batches
