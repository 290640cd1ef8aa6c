"""source<TAB>target pairs and frames + transcripts: what they read, and one clear error per kind of bad input."""

import numpy as np
import pytest

from seqattn.errors import InputError
from seqattn.readers.pairs import read_frame_pairs, read_frames, read_pairs


def test_pairs_keep_every_reference_line_and_skip_blank_lines(tmp_path):
    path = tmp_path / "dict.tsv"
    path.write_bytes(b"\xef\xbb\xbfACERO\tAH S EH R OW\n\nACERO\tAE S ER OW\r\nAB\tEY B IY\n")
    pairs = read_pairs(path)
    assert [(p.source, p.target) for p in pairs] == [("ACERO", "AH S EH R OW"), ("ACERO", "AE S ER OW"),
                                                      ("AB", "EY B IY")]
    assert pairs[2].where == f"{path}:4"


@pytest.mark.parametrize("content, message", [
    (b"ok\tfine\nno tab here\n", ":2: no TAB"),
    (b"a\tb\tc\n", ":1: 2 TABs"),
    (b"ok\tfine\n\t B\n", ":2: empty source"),
    (b"word\t  \n", ":1: empty target"),
    (b"ok\tfine\n\xff\tx\n", ":2: not UTF-8"),
    (b"\n\n", "no source<TAB>target pairs"),
])
def test_bad_pairs_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_pairs(path)


def test_missing_pairs_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "absent.tsv")


def _frames(path, lengths, dim=3):
    feats = np.arange(sum(lengths) * dim, dtype=np.float32).reshape(-1, dim)
    np.savez(path, feats=feats, offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
             utt_ids=np.array([f"u{i}" for i in range(len(lengths))]))
    return feats


def test_frames_are_cut_at_the_offsets_and_paired_with_transcripts(tmp_path):
    feats = _frames(tmp_path / "f.npz", [2, 3])
    (tmp_path / "t.tsv").write_text("utt_id\tspeaker\ttranscript\nu1\tx\tNO\nu0\tx\tYES\n", encoding="utf-8")
    ids, matrices = read_frames(tmp_path / "f.npz")
    assert ids == ["u0", "u1"] and np.array_equal(matrices[1], feats[2:5])
    pairs = read_frame_pairs(tmp_path / "f.npz", tmp_path / "t.tsv")
    assert [p.target for p in pairs] == ["YES", "NO"]


def test_frames_without_transcript_or_with_bad_offsets_are_input_errors(tmp_path):
    _frames(tmp_path / "f.npz", [2, 3])
    (tmp_path / "t.tsv").write_text("utt_id\ttranscript\nu0\tYES\n", encoding="utf-8")
    with pytest.raises(InputError, match="no transcript for 1 utterance"):
        read_frame_pairs(tmp_path / "f.npz", tmp_path / "t.tsv")
    (tmp_path / "h.tsv").write_text("id\ttext\n", encoding="utf-8")
    with pytest.raises(InputError, match="utt_id and transcript"):
        read_frame_pairs(tmp_path / "f.npz", tmp_path / "h.tsv")
    np.savez(tmp_path / "bad.npz", feats=np.zeros((4, 3), np.float32), offsets=np.array([0, 5]),
             utt_ids=np.array(["a"]))
    with pytest.raises(InputError, match="disagree"):
        read_frames(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a readable"):
        read_frames(tmp_path / "text.npz")
