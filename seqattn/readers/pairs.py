"""Pairs for seq2seq: ``source<TAB>target`` text lines, or frame matrices with their transcripts.

Text pairs: one pair per line, UTF-8, the source and the target separated by one TAB (the
cmudict g014b2b files are ``WORD<TAB>PH1 PH2 ...``).  A source may appear on several lines:
each line is an accepted reference (words with several pronunciations).  A line holds at most
1 MiB (``seqattn.readers.text.MAX_LINE_BYTES``); the reader never holds more of one line, and a
longer one is an InputError, so ``/dev/zero`` ends after 1 MiB with exit code 2.

Frames: an ``.npz`` with ``feats`` float32 (total_frames, dim), ``offsets`` int64 (U + 1)
(utterance i = ``feats[offsets[i]:offsets[i+1]]``) and ``utt_ids`` (U) str, the layout of
../shared/data/an4_mfcc; its transcripts come from a TSV with a header that has the columns
``utt_id`` and ``transcript``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqattn.errors import InputError
from seqattn.readers.npz import read_npz
from seqattn.readers.text import open_text


@dataclass
class Pair:
    """One training or evaluation example: a source (text, or a (N, dim) float32 frame matrix), a target."""

    source: str | np.ndarray
    target: str
    where: str  # "file:line" or "file:utt_id", for messages


def read_pairs(path: str | Path) -> list[Pair]:
    """Read a ``source<TAB>target`` file; blank lines are skipped.

    Raises:
        InputError: missing/unreadable file, bytes that are not UTF-8, a line longer than 1 MiB,
            a line without a TAB, with more than one TAB, or with an empty side (each names
            file:line); no pairs at all.
    """
    pairs = []
    with open_text(path) as lines:
        for line in lines:
            if not line.strip():
                continue
            where = f"{lines.name}:{lines.line_number}"
            parts = line.split("\t")
            if len(parts) != 2:
                what = "no TAB between source and target" if len(parts) == 1 else f"{len(parts) - 1} TABs, expected 1"
                raise InputError(f"{where}: {what} (expected source<TAB>target)")
            source, target = parts[0].strip(), parts[1].strip()
            if not source or not target:
                raise InputError(f"{where}: empty {'source' if not source else 'target'}")
            pairs.append(Pair(source, target, where))
    if not pairs:
        raise InputError(f"{path}: no source<TAB>target pairs")
    return pairs


def read_frames(path: str | Path) -> tuple[list[str], list[np.ndarray]]:
    """Utterance ids and frame matrices of a frames ``.npz`` (layout in the module docstring).

    Shapes:
        -> U ids, U float32 arrays (N_i, dim)
    Raises:
        InputError: missing file, not an npz, missing arrays, inconsistent offsets.
    """
    path = Path(path)
    arrays = read_npz(path, ".npz of frames")
    missing = {"feats", "offsets", "utt_ids"} - set(arrays)
    if missing:
        raise InputError(f"{path}: missing arrays {sorted(missing)} (expected feats, offsets, utt_ids)")
    feats, offsets, ids = arrays["feats"], arrays["offsets"], [str(u) for u in arrays["utt_ids"]]
    if (feats.ndim != 2 or len(offsets) != len(ids) + 1 or offsets[0] != 0 or offsets[-1] != len(feats)
            or np.any(np.diff(offsets) <= 0)):
        raise InputError(f"{path}: feats/offsets/utt_ids disagree (need offsets[0] = 0, increasing, "
                         f"offsets[-1] = {len(feats)} frames, one more offset than utterances)")
    feats = feats.astype(np.float32, copy=False)
    return ids, [feats[offsets[i]:offsets[i + 1]] for i in range(len(ids))]


def read_transcripts(path: str | Path) -> dict[str, str]:
    """utt_id -> transcript from a TSV with a header naming the columns ``utt_id`` and ``transcript``.

    Raises:
        InputError: missing file, not UTF-8, a line longer than 1 MiB, no such columns, a short
            row (names file:line).
    """
    transcripts = {}
    with open_text(path) as lines:
        header = None
        for line in lines:
            cells = line.split("\t")
            if header is None:
                header = cells
                if "utt_id" not in header or "transcript" not in header:
                    raise InputError(f"{lines.name}:1: the header needs the columns utt_id and transcript")
                key, value = header.index("utt_id"), header.index("transcript")
                continue
            if not line.strip():
                continue
            if len(cells) < len(header):
                raise InputError(f"{lines.name}:{lines.line_number}: {len(cells)} columns, the header has "
                                 f"{len(header)}")
            transcripts[cells[key]] = cells[value].strip()
    return transcripts


def read_frame_pairs(frames: str | Path, transcripts: str | Path) -> list[Pair]:
    """Pairs (frame matrix, transcript) of every utterance of ``frames``.

    Raises:
        InputError: see ``read_frames`` and ``read_transcripts``; an utterance without transcript.
    """
    ids, matrices = read_frames(frames)
    text = read_transcripts(transcripts)
    missing = [u for u in ids if u not in text]
    if missing:
        raise InputError(f"{transcripts}: no transcript for {len(missing)} utterance(s) of {frames}, "
                         f"e.g. {missing[0]}")
    return [Pair(m, text[u], f"{frames}:{u}") for u, m in zip(ids, matrices)]
