"""Labelled texts for sentence classification (N -> 1): TSV, CSV and JSONL.

Formats, chosen by the file's suffix (``.tsv``/``.txt`` TSV, ``.csv`` CSV, ``.jsonl``/``.json``
JSON Lines; anything else is read as TSV):

- TSV: ``text<TAB>label``, with or without a header.  The first line is a header when its cells
  name a text column (``text``, ``sentence``, ``review``, ...) and a label column (``label``,
  ``class``, ``sentiment``, ...); the columns are then found by name, in any order.
- CSV (RFC 4180, Python's ``csv`` module): a header is required; the columns are found by name.
- JSONL: one object per line with ``"text"`` and ``"label"`` keys (a number or a string label).

Labels are kept as strings ("0", "positive").  Every problem is an ``InputError`` naming the file
and line: a missing label column, an empty text, a duplicate header, binary or non-UTF-8 data.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from seqattn.errors import InputError

TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "body")
LABEL_COLUMNS = ("label", "labels", "class", "sentiment", "category", "target")
MAX_FILE_BYTES = 1 << 30  # a labelled data set larger than 1 GiB is refused before it is read


@dataclass(frozen=True)
class LabelledText:
    """One example: the raw text, its label, and the line it came from (1-based)."""

    text: str
    label: str
    line: int


def _decode(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a labelled data set may hold")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a data file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{path}: binary data (a NUL byte at offset {nul:,}), not a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: not UTF-8 (byte 0x{data[e.start]:02x})") from None
    return text


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _check_header(path: Path, header: list[str]) -> tuple[int, int]:
    """(text column, label column) of a header row.  Raises InputError on duplicates or a missing column."""
    lowered = [cell.strip().lower() for cell in header]
    seen = set()
    for cell in lowered:
        if cell in seen:
            raise InputError(f"{path}: line 1: the header names the column {cell!r} twice")
        seen.add(cell)
    text, label = _column(header, TEXT_COLUMNS), _column(header, LABEL_COLUMNS)
    if text is None:
        raise InputError(f"{path}: line 1: no text column in the header (expected one of {', '.join(TEXT_COLUMNS)})")
    if label is None:
        raise InputError(f"{path}: line 1: no label column in the header (expected one of {', '.join(LABEL_COLUMNS)})")
    return text, label


def _rows(path: Path, rows, text_col: int, label_col: int, first_line: int) -> list[LabelledText]:
    out = []
    width = max(text_col, label_col) + 1
    for n, row in enumerate(rows, start=first_line):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if len(row) < width:
            raise InputError(f"{path}: line {n}: {len(row)} column(s), the label column is missing "
                             f"(expected text and label, separated by a tab or a comma)")
        text, label = row[text_col].strip(), row[label_col].strip()
        if not text:
            raise InputError(f"{path}: line {n}: empty text")
        if not label:
            raise InputError(f"{path}: line {n}: empty label")
        out.append(LabelledText(text, label, n))
    return out


def read_labelled(path: str | Path) -> list[LabelledText]:
    """Read a labelled data set (TSV, CSV or JSONL; see the module docstring).

    Returns:
        the examples in file order (blank lines skipped).
    Raises:
        InputError: unreadable, binary or non-UTF-8 file; a duplicate or incomplete header; a row
            without a label; an empty text or label; a JSONL line that is not an object with
            "text" and "label"; a file without examples.
    """
    path = Path(path)
    text = _decode(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        examples = _read_jsonl(path, text)
    elif suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            raise InputError(f"{path}: empty file, no examples")
        text_col, label_col = _check_header(path, rows[0])
        examples = _rows(path, rows[1:], text_col, label_col, 2)
    else:
        rows = [line.split("\t") for line in text.splitlines()]
        if not rows:
            raise InputError(f"{path}: empty file, no examples")
        header = rows[0]
        if _column(header, TEXT_COLUMNS) is not None or _column(header, LABEL_COLUMNS) is not None:
            text_col, label_col = _check_header(path, header)
            examples = _rows(path, rows[1:], text_col, label_col, 2)
        else:
            examples = _rows(path, rows, 0, 1, 1)
    if not examples:
        raise InputError(f"{path}: no examples")
    return examples


def _read_jsonl(path: Path, text: str) -> list[LabelledText]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: line {n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
            raise InputError(f"{path}: line {n}: expected an object with \"text\" and \"label\"")
        value, label = obj["text"], obj["label"]
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{path}: line {n}: empty text")
        if isinstance(label, bool) or not isinstance(label, (str, int)) or not str(label).strip():
            raise InputError(f"{path}: line {n}: the label must be a non-empty string or an integer")
        out.append(LabelledText(value.strip(), str(label).strip(), n))
    return out
