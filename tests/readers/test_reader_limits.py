"""Issue 26, items 3 and 6 for the audio, graph and NPZ readers: streamed WAV headers, JSON that
Python reads loosely, node ids of any length, and stated limits that end in one InputError."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import wave

import numpy as np
import pytest

from seqattn.errors import InputError
from seqattn.readers.audio import STREAM_WAV_MIN_SIZE, audio_info, read_audio, stream_wav_sizes
from seqattn.readers.graph import GraphLimits, _finish, read_edge_list, read_graph, read_node_link_json
from seqattn.readers.npz import read_npz

# --------------------------------------------------------------------------- audio


def wav_bytes(samples: np.ndarray, rate: int = 8000, channels: int = 1) -> bytes:
    """A PCM_16 WAV as the standard library's ``wave`` module writes it (44-byte header)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def with_sizes(data: bytes, riff: int, chunk: int) -> bytes:
    patched = bytearray(data)
    patched[4:8], patched[40:44] = struct.pack("<I", riff), struct.pack("<I", chunk)
    return bytes(patched)


SAMPLES = (np.sin(np.arange(4000) / 7) * 12000).astype(np.int16)


@pytest.mark.parametrize("riff, chunk", [(0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFF024, STREAM_WAV_MIN_SIZE),
                                         (0x80000024, 0x80000000), (0x7FFFFF24, 0x7FFFFF00), (0, 0)],
                         ids=["ffmpeg -1", "sox/espeak-ng", "arecord 2 GiB", "arecord 0x7fffff00", "zero"])
def test_a_streamed_wav_is_read_as_the_audio_it_holds(tmp_path, riff, chunk):
    """A WAV written to a pipe keeps its placeholder sizes; it was refused as 'truncated'."""
    path = tmp_path / "stream.wav"
    path.write_bytes(with_sizes(wav_bytes(SAMPLES), riff, chunk))
    assert stream_wav_sizes(path) is not None
    info = audio_info(path)
    assert info.samples == len(SAMPLES) and info.sample_rate_hz == 8000
    samples, _ = read_audio(path)
    np.testing.assert_array_equal(samples, SAMPLES.astype(np.float32) / 32768)


def test_a_streamed_wav_with_half_a_sample_at_the_end(tmp_path):
    path = tmp_path / "odd.wav"
    path.write_bytes(with_sizes(wav_bytes(SAMPLES), 0xFFFFFFFF, 0xFFFFFFFF) + b"\x01")
    assert len(read_audio(path)[0]) == len(SAMPLES)  # whole samples only


def test_a_consistent_or_truncated_wav_is_not_a_stream(tmp_path):
    good = tmp_path / "good.wav"
    good.write_bytes(wav_bytes(SAMPLES))
    assert stream_wav_sizes(good) is None
    cut = tmp_path / "cut.wav"
    cut.write_bytes(with_sizes(wav_bytes(SAMPLES), 0x7FFF0024, STREAM_WAV_MIN_SIZE - 0x1000))  # just below
    assert stream_wav_sizes(cut) is None
    with pytest.raises(InputError, match="truncated or corrupt WAV"):
        audio_info(cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(with_sizes(wav_bytes(SAMPLES)[:44], 0xFFFFFFFF, 0xFFFFFFFF))
    with pytest.raises(InputError, match="holds 0"):  # a placeholder with nothing after it: no stream
        audio_info(header_only)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_ng_stdout_is_read(tmp_path):
    """The reproducer: `espeak-ng --stdout seven | seqattn speech -` (0x7FFFF000 in the header)."""
    path = tmp_path / "seven.wav"
    path.write_bytes(subprocess.run(["espeak-ng", "--stdout", "seven"], capture_output=True, check=True).stdout)
    assert struct.unpack("<I", path.read_bytes()[40:44])[0] == STREAM_WAV_MIN_SIZE
    info = audio_info(path)
    assert 0.3 < info.duration_s < 2.0


def test_audio_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "half-second.wav"
    path.write_bytes(wav_bytes(SAMPLES))  # 0.5 s
    monkeypatch.setenv("SEQATTN_MAX_AUDIO_SECONDS", "0.25")
    with pytest.raises(InputError, match="more than the 0 s a command reads .*SEQATTN_MAX_AUDIO_SECONDS"):
        audio_info(path)
    monkeypatch.setenv("SEQATTN_MAX_AUDIO_SECONDS", "1")
    assert audio_info(path).samples == len(SAMPLES)
    for bad in ("0", "-1", "nan", "inf", "ten"):
        monkeypatch.setenv("SEQATTN_MAX_AUDIO_SECONDS", bad)
        with pytest.raises(InputError, match="must be a positive number of seconds"):
            audio_info(path)


# --------------------------------------------------------------------------- graph JSON and ids


def write_json(path, data) -> str:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, []])
def test_json_directed_must_be_a_boolean(tmp_path, value):
    """'false' (a string) is true in Python: it was read as a directed graph."""
    path = write_json(tmp_path / "g.json", {"directed": value, "nodes": [{"id": 1}, {"id": 2}],
                                            "links": [{"source": 1, "target": 2}]})
    with pytest.raises(InputError, match="'directed' must be true or false"):
        read_node_link_json(path)


@pytest.mark.parametrize("directed, edges", [(False, 2), (True, 1)])
def test_json_directed_booleans(tmp_path, directed, edges):
    path = write_json(tmp_path / "g.json", {"directed": directed, "nodes": [{"id": 1}, {"id": 2}],
                                            "links": [{"source": 1, "target": 2}]})
    graph = read_node_link_json(path)
    assert graph.directed is directed and graph.n_edges == edges


def test_json_node_ids_of_any_length_are_text(tmp_path):
    """A 5,000-digit id was "unexpected ValueError" (int() stops at 4,300 digits)."""
    long_id = "7" * 5000
    path = write_json(tmp_path / "g.json", '{"nodes": [{"id": %s}, {"id": 2}], "links": [{"source": 2, "target": %s}]}'
                      % (long_id, long_id))
    graph = read_node_link_json(path)
    assert graph.nodes == [long_id, "2"] and graph.n_edges == 2
    bad = write_json(tmp_path / "w.json", '{"nodes": [{"id": 1}, {"id": 2}], "links": '
                                          '[{"source": 1, "target": 2, "weight": %s}]}' % long_id)
    with pytest.raises(InputError, match=r"link 0: '7{40}\.\.\.' \(5,000 characters\) is not a finite weight"):
        read_node_link_json(bad)


def test_edge_list_ids_of_any_length_in_numeric_order(tmp_path):
    long_id = "9" * 5000
    path = tmp_path / "g.tsv"
    path.write_text(f"{long_id}\t10\n10\t9\n0010\t٣\n", encoding="utf-8")
    graph = read_edge_list(path)
    assert graph.nodes == ["٣", "9", "0010", "10", long_id]  # ٣ is 3; 0010 and 10 tie and go by their text


def test_planetoid_ids_of_any_length_are_refused(tmp_path):
    from tests.conftest import make_planetoid

    root = make_planetoid(tmp_path / "p")
    (root / "test_idx.txt").write_text("1" * 5000 + "\n")
    with pytest.raises(InputError, match="is not a node id"):
        read_graph(root)


def reference_finish(pairs, directed):
    """The dict-based loop that _finish replaced: first occurrence kept, in file order."""
    seen = {}
    for e, (j, i) in enumerate(pairs):
        if i != j:
            seen.setdefault((j, i) if directed else (min(i, j), max(i, j)), e)
    return list(seen)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_finish_keeps_the_first_of_each_edge_in_file_order(seed, directed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    pairs = [tuple(map(int, p)) for p in rng.integers(0, n, (int(rng.integers(1, 60)), 2))]
    weights = rng.random(len(pairs)).tolist()
    graph = _finish([str(i) for i in range(n)], pairs, weights, directed, "g")
    kept = reference_finish(pairs, directed)
    half = len(kept)
    assert list(zip(graph.edge_index[0, :half].tolist(), graph.edge_index[1, :half].tolist())) == kept
    first = {key: e for e, key in reversed(list(enumerate(
        (j, i) if directed else (min(i, j), max(i, j)) for j, i in pairs)))}
    np.testing.assert_array_equal(graph.edge_weight[:half], np.float32([weights[first[k]] for k in kept]))
    assert graph.n_edges == (half if directed else 2 * half)
    assert graph.self_loops_dropped == sum(i == j for j, i in pairs)
    assert graph.duplicates_dropped == len(pairs) - graph.self_loops_dropped - half


# --------------------------------------------------------------------------- graph limits


@pytest.fixture
def edge_file(tmp_path):
    path = tmp_path / "g.tsv"
    path.write_text("".join(f"{i}\t{i + 1}\n" for i in range(20)), encoding="utf-8")
    return path


@pytest.mark.parametrize("variable, value, message", [
    ("SEQATTN_MAX_GRAPH_EDGES", "19", "more than 19 edges"),
    ("SEQATTN_MAX_GRAPH_NODES", "20", "more than 20 nodes"),
    ("SEQATTN_MAX_GRAPH_BYTES", "100", "more than 100 bytes"),
])
def test_edge_list_limits(edge_file, monkeypatch, variable, value, message):
    assert read_edge_list(edge_file).n_nodes == 21
    monkeypatch.setenv(variable, value)
    with pytest.raises(InputError, match=f"{message}, the most seqattn reads \\(set {variable}"):
        read_edge_list(edge_file)


@pytest.mark.parametrize("value", ["0", "-5", "1e6", "many", "9" * 30])
def test_limit_variables_must_be_positive_integers(edge_file, monkeypatch, value):
    monkeypatch.setenv("SEQATTN_MAX_GRAPH_EDGES", value)
    with pytest.raises(InputError, match="SEQATTN_MAX_GRAPH_EDGES=.* must be a positive integer"):
        read_edge_list(edge_file)


def test_document_limits(tmp_path, monkeypatch):
    nodes = [{"id": i} for i in range(30)]
    path = write_json(tmp_path / "g.json", {"directed": False, "nodes": nodes,
                                            "links": [{"source": i, "target": i + 1} for i in range(29)]})
    graphml = tmp_path / "g.graphml"
    import networkx as nx

    nx.write_graphml(nx.path_graph(30), graphml)
    monkeypatch.setenv("SEQATTN_MAX_GRAPH_NODES", "29")
    for source in (path, graphml):
        with pytest.raises(InputError, match="more than 29 nodes"):
            read_graph(source)
    monkeypatch.delenv("SEQATTN_MAX_GRAPH_NODES")
    monkeypatch.setenv("SEQATTN_MAX_GRAPH_DOCUMENT_BYTES", "64")
    for source in (path, graphml):
        with pytest.raises(InputError, match="more than 64 bytes, .*SEQATTN_MAX_GRAPH_DOCUMENT_BYTES"):
            read_graph(source)


def test_feature_limits(tmp_path, edge_file, monkeypatch):
    csv_path = tmp_path / "f.csv"
    csv_path.write_text("".join(f"{i},{i},1,2\n" for i in range(21)), encoding="utf-8")
    npz_path = tmp_path / "f.npz"
    np.savez(npz_path, features=np.ones((21, 3), np.float32))
    for features in (csv_path, npz_path):
        assert read_graph(edge_file, features=features).features.shape == (21, 3)
    monkeypatch.setenv("SEQATTN_MAX_GRAPH_FEATURES", "2")
    for features in (csv_path, npz_path):
        with pytest.raises(InputError, match="more than 2 feature columns"):
            read_graph(edge_file, features=features)
    monkeypatch.delenv("SEQATTN_MAX_GRAPH_FEATURES")
    monkeypatch.setenv("SEQATTN_MAX_GRAPH_FEATURE_VALUES", "62")
    for features in (csv_path, npz_path):
        with pytest.raises(InputError, match="more than 62 feature values"):
            read_graph(edge_file, features=features)


def test_npz_arrays_are_bounded_by_their_headers_before_loading(tmp_path, monkeypatch):
    """A compressed archive of zeros declares its size in the .npy header: refused before np.load."""
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, features=np.zeros((1000, 1000), np.float32))  # 4 MB of data in a few KB
    assert path.stat().st_size < 100_000
    assert read_npz(path)["features"].shape == (1000, 1000)
    monkeypatch.setenv("SEQATTN_MAX_NPZ_BYTES", "3999999")
    with pytest.raises(InputError, match="declares 4,000,000 bytes of arrays, more than the 3,999,999"):
        read_npz(path)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran past the limit"))
    with pytest.raises(InputError, match="SEQATTN_MAX_NPZ_BYTES"):
        read_npz(path)


def test_graph_limits_defaults_are_stated():
    limits = GraphLimits()
    assert (limits.bytes, limits.document_bytes, limits.nodes, limits.edges, limits.features) == (
        1 << 30, 128 << 20, 10_000_000, 10_000_000, 100_000)
