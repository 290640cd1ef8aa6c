"""Labelled texts for `train/evaluate classifier`: TSV with and without header, CSV, JSONL, and bad files."""

import json

import pytest

from seqattn.errors import InputError
from seqattn.readers.labelled import read_labelled


def test_tsv_without_and_with_header_in_any_column_order(tmp_path):
    plain = tmp_path / "plain.tsv"
    plain.write_text("a fine film\t1\nawful\t0\n\n")
    assert [(e.text, e.label, e.line) for e in read_labelled(plain)] == [("a fine film", "1", 1), ("awful", "0", 2)]
    header = tmp_path / "header.tsv"
    header.write_text("Label\tSentence\npositive\ta fine film\n")
    assert [(e.text, e.label, e.line) for e in read_labelled(header)] == [("a fine film", "positive", 2)]


def test_csv_with_named_columns_and_quoted_commas(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,label,text\n7,pos,"good, really good"\n8,neg,bad\n')
    assert [(e.text, e.label) for e in read_labelled(path)] == [("good, really good", "pos"), ("bad", "neg")]


def test_jsonl_with_integer_and_string_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "good", "label": 1}) + "\n" + json.dumps({"text": "bad", "label": "neg"}) + "\n")
    assert [(e.text, e.label) for e in read_labelled(path)] == [("good", "1"), ("bad", "neg")]


@pytest.mark.parametrize("name, content, message", [
    ("nolabel.tsv", b"only text here\n", "line 1: 1 column(s), the label column is missing"),
    ("empty_text.tsv", b"text\tlabel\n \t1\n", "line 2: empty text"),
    ("dup.tsv", b"text\ttext\tlabel\nx\ty\t1\n", "names the column 'text' twice"),
    ("nolabelcol.csv", b"text,score\nx,1\n", "no label column"),
    ("binary.tsv", b"\x00\x01\x02good\t1\n", "binary data"),
    ("latin1.tsv", b"caf\xe9\t1\n", "line 1: not UTF-8"),
    ("bad.jsonl", b'{"text": "x"}\n', "expected an object with \"text\" and \"label\""),
    ("empty.tsv", b"", "empty file"),
])
def test_bad_files_are_one_input_error_naming_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=None) as info:
        read_labelled(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_labelled(tmp_path / "absent.tsv")
    with pytest.raises(InputError, match="is a directory"):
        read_labelled(tmp_path)
