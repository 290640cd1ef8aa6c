"""--attention-out: what each format holds, the path guard, and bounded memory for long clips.

The CLI runs in-process (``tests.conftest.seqattn``) on the repository's data/ inputs with the
shipped models; the graph uses the tiny Planetoid graph and model of tests/conftest.py.
"""

import json
import re
import xml.etree.ElementTree as ElementTree
import zipfile

import numpy as np
import pytest

from seqattn.errors import InputError
from seqattn.export import AttentionMap, AttentionRecord, SpeechExtras, export_attention, tokens_record
from seqattn.export.image import GRID_CELL_PX, GRID_MARGIN_PX, SINGLE_PX, figure_size_px
from seqattn.export.output import MARKER, check_attention_out
from seqattn.export.spill import SpillDirectory
from tests.conftest import ROOT, seqattn

SAMPLE = ROOT / "data" / "sample.txt"
CLIP = ROOT / "data" / "speech" / "pi.wav"


def _npz(path):
    return np.load(path, allow_pickle=False)


def _row_sums(weights):
    return np.asarray(weights, dtype=np.float64).sum(-1)


# ------------------------------------------------------------------ npz from every command


def test_tag_npz_loads_without_pickle_and_rows_sum_to_one(tmp_path):
    out = tmp_path / "tag.npz"
    proc = seqattn("tag", SAMPLE, "--attention-out", out)
    assert proc.returncode == 0, proc.stderr
    z = _npz(out)
    n_sentences = len(z["inputs"])
    assert n_sentences == 5
    for r in range(n_sentences):
        weights = z[f"r{r}/m0/weights"]
        assert weights.dtype == np.float32 and weights.shape[:2] == (3, 4)
        assert weights.shape[3] == 2 * int(z[f"r{r}/m0/window"]) + 1  # the band, never N x N
        assert len(z[f"r{r}/m0/queries"]) == weights.shape[2]
        np.testing.assert_allclose(_row_sums(weights), 1.0, atol=1e-5)
    assert str(z[MARKER]) == "1"


def test_speech_npz_keeps_the_band_spectrogram_and_segments(tmp_path):
    out = tmp_path / "speech.npz"
    proc = seqattn("speech", CLIP, "--attention-out", out, "--format", "tsv")
    assert proc.returncode == 0, proc.stderr
    z = _npz(out)
    weights, spectrogram = z["r0/m0/weights"], z["r0/speech/spectrogram"]
    assert weights.shape[:2] == (4, 4) and weights.shape[3] == 17  # digits: 4 layers x 4 heads, window 8
    assert spectrogram.shape[1] == 40 and abs(len(spectrogram) - 2 * weights.shape[2]) <= 2  # stride 2
    np.testing.assert_allclose(_row_sums(weights), 1.0, atol=1e-5)
    labels = list(z["r0/speech/segment_label"])
    assert [s for s in labels if s != "sil"] == "3 1 4 1 5 9".split()
    assert float(z["r0/speech/step_s"]) == pytest.approx(0.02)


def test_seq2seq_npz_holds_the_three_attentions(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("attention\nseqattn\n")
    out = tmp_path / "g2p.npz"
    proc = seqattn("seq2seq", words, "--attention-out", out, "--format", "tsv")
    assert proc.returncode == 0, proc.stderr
    z = _npz(out)
    assert [str(z[f"r0/m{m}/key"]) for m in range(3)] == ["encoder", "decoder", "cross"]
    encoder, decoder, cross = (z[f"r0/m{m}/weights"] for m in range(3))
    s, t = encoder.shape[2], decoder.shape[2]
    assert cross.shape[2:] == (t, s) and decoder.shape[3] == t
    assert list(z["r0/m2/queries"])[-1] == "</s>" and list(z["r0/m1/keys"])[0] == "<s>"
    for weights in (encoder, decoder, cross):
        np.testing.assert_allclose(_row_sums(weights), 1.0, atol=1e-5)
    assert np.allclose(np.triu(decoder, 1), 0.0)  # masked: no position reads a later one


def test_graph_npz_weights_sum_to_one_over_each_nodes_edges(tmp_path, tiny_planetoid, tiny_graph_model_dir):
    out = tmp_path / "graph.npz"
    proc = seqattn("graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention-out", out)
    assert proc.returncode == 0, proc.stderr
    z = _npz(out)
    edges, nodes = z["r0/graph/edge_index"], z["r0/graph/nodes"]
    for layer in (0, 1):
        weights = z[f"r0/graph/weights_l{layer}"]  # (H, E)
        sums = np.zeros((weights.shape[0], len(nodes)))
        np.add.at(sums.T, edges[1], weights.T)
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def test_classify_npz_holds_pooling_and_self_attention(tmp_path, tiny_classifier_dir):
    texts = tmp_path / "texts.txt"
    texts.write_text("a wonderful , moving film\n\nboring and far too long\n")
    out = tmp_path / "classify.npz"
    proc = seqattn("classify", texts, "--model", tiny_classifier_dir, "--format", "tsv", "--attention-out", out)
    assert proc.returncode == 0, proc.stderr
    z = _npz(out)
    assert len(z["inputs"]) == 2 and str(z["r0/kind"]) == "classify"
    pooling, self_attention = z["r0/m0/weights"], z["r0/m1/weights"]
    assert str(z["r0/m0/key"]) == "pooling" and pooling.shape[:3] == (1, pooling.shape[1], 1)
    assert list(z["r0/m0/keys"]) == "a wonderful , moving film".split()
    assert self_attention.shape[0] == 1 and self_attention.shape[3] == 2 * int(z["r0/m1/window"]) + 1
    for weights in (pooling, self_attention):
        np.testing.assert_allclose(_row_sums(weights), 1.0, atol=1e-5)


# ------------------------------------------------------------------ pictures


def test_svg_parses_and_png_has_the_expected_size(tmp_path):
    from PIL import Image

    single, grid, svg = tmp_path / "one.png", tmp_path / "grid.png", tmp_path / "grid.svg"
    assert seqattn("tag", SAMPLE, "--attention-out", single, "--layer", "1", "--head", "2").returncode == 0
    assert seqattn("tag", SAMPLE, "--attention-out", grid, "--layer", "all", "--head", "all").returncode == 0
    assert seqattn("tag", SAMPLE, "--attention-out", svg, "--layer", "all", "--head", "all").returncode == 0
    assert Image.open(single).size == (SINGLE_PX, SINGLE_PX)
    assert Image.open(grid).size == (GRID_MARGIN_PX + 4 * GRID_CELL_PX, GRID_MARGIN_PX + 3 * GRID_CELL_PX)  # 12 panels
    root = ElementTree.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}image")) == 12  # one heatmap per layer x head
    pixels = np.asarray(Image.open(single).convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # not blank


def test_speech_picture_size_follows_its_panels(tmp_path):
    from PIL import Image

    out = tmp_path / "clip.png"
    proc = seqattn("speech", CLIP, "--attention-out", out, "--format", "tsv", "--layer", "all")
    assert proc.returncode == 0, proc.stderr
    record = AttentionRecord("x", "speech", [AttentionMap("self", "t", np.zeros((4, 4, 1, 17)), window=8)])
    assert Image.open(out).size == figure_size_px(record, [(layer, None) for layer in range(4)])


# ------------------------------------------------------------------ the HTML file itself


def test_html_is_self_contained_and_labels_stay_text(tmp_path):
    hostile = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a&amp;b", "\u2028", "$x$"]
    weights = np.full((1, 1, len(hostile), len(hostile)), 1 / len(hostile), np.float32)
    record = AttentionRecord("</title><b>name", "tokens", [AttentionMap("self", "self-attention", weights, hostile)])
    out = tmp_path / "page.html"
    export_attention(out, [record])
    page = out.read_text(encoding="utf-8")
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data block and the code
    data = re.search(r'<script type="application/json" id="seqattn-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and ">" not in data and "\u2028" not in data
    code = page.replace(data, "")
    markup = re.sub(r"(?s)<script.*?</script>", "", code)
    assert not re.search(r"(?i)<[^>]*\s(src|href|action)\s*=|url\(|@import", markup), "no external resource"
    assert not re.search(r"fetch\(|XMLHttpRequest|WebSocket|eval\(|new Function|innerHTML|outerHTML|"
                         r"insertAdjacentHTML|document\.write|setAttribute\(\s*.(src|href)", code), \
        "no request, no markup"
    assert "http://" not in code.replace("http://www.w3.org/2000/svg", "") and "https://" not in code
    payload = json.loads(data)
    assert payload["inputs"][0]["maps"][0]["queries"][:3] == hostile[:3]
    assert "<b>" not in page.split("<body>")[0]  # the title is escaped


def test_html_speech_is_binned_for_long_clips_and_says_so(tmp_path):
    from seqattn.export.html import MAX_TIME_COLUMNS

    steps = 3 * MAX_TIME_COLUMNS + 7
    band = np.zeros((1, 1, steps, 3), np.float32)
    band[..., 1] = 1.0
    record = AttentionRecord("long", "speech", [AttentionMap("self", "banded", band, window=1)],
                             speech=SpeechExtras(np.zeros((2 * steps, 4), np.float32), 0.01, 0.02, [(0.0, 1.0, "3")]))
    out = tmp_path / "long.html"
    export_attention(out, [record])
    payload = json.loads(re.search(r'id="seqattn-data">(.*?)</script>', out.read_text(), re.S).group(1))
    shown = payload["inputs"][0]["maps"][0]
    assert shown["bin"] == 4 and shown["shape"][2] <= MAX_TIME_COLUMNS
    assert payload["inputs"][0]["speech"]["columns"] <= MAX_TIME_COLUMNS


# ------------------------------------------------------------------ the path guard


def test_an_unknown_suffix_is_one_line_and_exit_2(tmp_path):
    proc = seqattn("tag", SAMPLE, "--attention-out", tmp_path / "x.txt")
    assert proc.returncode == 2
    assert proc.stderr.decode().count("\n") == 1 and ".html, .svg, .png or .npz" in proc.stderr.decode()
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("case", ["directory", "input", "user file", "missing parent", "symlink"])
def test_refused_targets(tmp_path, case):
    target = tmp_path / "out.html"
    inputs = []
    if case == "directory":
        target.mkdir()
    elif case == "input":
        target.write_text("my notes")
        inputs = [target]
    elif case == "user file":
        target.write_text("<html>my own page</html>")
    elif case == "missing parent":
        target = tmp_path / "no" / "such" / "out.html"
    else:
        (tmp_path / "real.html").write_text("x")
        target.symlink_to(tmp_path / "real.html")
    with pytest.raises(InputError):
        check_attention_out(target, inputs)


def test_an_earlier_export_is_replaced_and_a_failed_write_leaves_it_whole(tmp_path, monkeypatch):
    record = tokens_record("a b", ["a", "b"], [np.full((1, 2, 2), 0.5, np.float32)], None)
    for suffix in (".html", ".npz", ".svg", ".png"):
        out = tmp_path / f"page{suffix}"
        export_attention(out, [record])
        check_attention_out(out)  # an export of ours: may be replaced
    out = tmp_path / "page.npz"
    before = out.read_bytes()

    def broken(path, records):
        path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("seqattn.export.npz.write_npz", broken)
    with pytest.raises(Exception):
        export_attention(out, [record])
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_rollout_with_an_export_is_refused_with_the_reason(tmp_path):
    proc = seqattn("tag", SAMPLE, "--attention-out", tmp_path / "x.html", "--attention-kind", "rollout")
    assert proc.returncode == 2 and b"raw weights" in proc.stderr


def test_the_cap_keeps_the_first_inputs_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("seqattn.export.MAX_RECORDS", 2)
    out = tmp_path / "capped.npz"
    proc = seqattn("tag", SAMPLE, "--attention-out", out)
    assert proc.returncode == 0
    assert len(_npz(out)["inputs"]) == 2
    assert b"kept the first 2 sentences; 3 more were not exported" in proc.stderr


# ------------------------------------------------------------------ bounded memory


def test_spilled_band_reads_back_as_written(tmp_path):
    rng = np.random.default_rng(0)
    with SpillDirectory() as spill:
        band = spill.array("band", 2, 3, 5)
        chunks = [rng.random((3, n, 5)).astype(np.float32) for n in (7, 1, 12)]
        for chunk in chunks:
            band.append([chunk, chunk * 2])
        whole = np.concatenate(chunks, axis=1)
        assert band.shape == (2, 3, 20, 5)
        np.testing.assert_array_equal(band[1, 2, 3:17], 2 * whole[2, 3:17])
        record = AttentionRecord("x", "speech", [AttentionMap("self", "b", band, window=2)],
                                 speech=SpeechExtras(np.zeros((40, 4), np.float32), 0.01, 0.02))
        out = tmp_path / "x.npz"
        export_attention(out, [record])
        np.testing.assert_array_equal(_npz(out)["r0/m0/weights"][0], whole)
        with zipfile.ZipFile(out) as archive:  # stored, streamed: ZIP64 members, no compression
            assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
