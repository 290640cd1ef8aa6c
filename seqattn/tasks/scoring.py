"""Scores shared by the tasks' evaluations."""

from __future__ import annotations

from typing import Hashable, Sequence


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions cost 1).

    The numerator of WER, PER and CER; O(len(a) * len(b)) time, O(len(b)) memory.
    """
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]
