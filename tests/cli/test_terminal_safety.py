"""Issue 26, item 2: nothing quoted from the input, a file name or a model reaches the terminal as a
control sequence, and nothing from them is read as rich markup.

The pretty paths run as on a terminal (stdout and stderr report ``isatty()``, TERM and COLORTERM
ask for colour), so rich adds its own styles; those are SGR sequences (``ESC [ ... m``) only, and
every check below tells them apart from the bytes of the input.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqattn.render.safe import printable
from tests.conftest import ROOT

OSC_TITLE = "\x1b]0;pwned\x07"  # sets the window title
CLEAR = "\x1b[2J"  # clears the screen
LINK = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a live hyperlink
C1 = "\x9b2J\x9d0;c1\x9c"  # the 8-bit forms of CSI, OSC and ST
BIDI = "\u202eevil\u202c\u2066x\u2069"
HOSTILE_TEXT = f"see {OSC_TITLE} {CLEAR} {LINK} {C1} a[/]b [blink]B {BIDI} .\n"


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def on_terminal(*args, input: bytes = b"") -> subprocess.CompletedProcess:
    """The CLI in-process with stdout and stderr as terminals (stdin a pipe): the pretty default,
    colours, progress bars.  Returns a CompletedProcess with bytes."""
    from seqattn.cli.main import run

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(input), encoding="utf-8")
    sys.stdout = _Terminal(out, encoding="utf-8", write_through=True)
    sys.stderr = _Terminal(err, encoding="utf-8", write_through=True)
    try:
        code = run([str(a) for a in args])
    finally:
        for wrapper in (sys.stdin, sys.stdout, sys.stderr):
            wrapper.flush() if wrapper is not sys.stdin else None
            wrapper.detach()
        sys.stdin, sys.stdout, sys.stderr = saved
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.setenv("COLUMNS", "400")  # wide: no wrapping inside an escaped word
    monkeypatch.delenv("NO_COLOR", raising=False)


SGR = re.compile(rb"\x1b\[[0-9;]*m")  # what rich writes for a style
CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r")  # ... and, on stderr, to draw and clear a progress bar


def assert_safe(data: bytes, controls: re.Pattern = SGR) -> str:
    """No control byte or sequence from the input in ``data``: every ESC starts one of rich's own
    sequences (``controls``), no BEL, no C1, no bidi control, no raw-byte surrogate.  Returns the
    text with rich's sequences removed."""
    assert b"\x07" not in data and b"\x1b]" not in data and b"\x1b\\" not in data, data
    assert b"\x1b[2J" not in data and b"\x1b[5m" not in data, data  # the input's clear; rich's blink
    plain = controls.sub(b"", data)
    assert b"\x1b" not in plain, data
    text = plain.decode("utf-8")  # strict: a lone surrogate could not have been written
    assert not [c for c in text if 0x80 <= ord(c) <= 0x9F or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067"
                "\u2068\u2069" or ord(c) < 0x20 and c != "\n"], text
    return text


def test_printable_escapes_controls_c1_bidi_and_keeps_the_rest():
    assert printable(OSC_TITLE) == "\\x1b]0;pwned\\x07"
    assert printable("\x9b2J \x85 \x7f") == "\\x9b2J \\x85 \\x7f"
    assert printable("a\tb\nc\r") == "a\\tb\\nc\\r"
    assert printable("\u202eevil\u2066\u200f\u2028") == "\\u202eevil\\u2066\\u200f\\u2028"
    assert printable(os.fsdecode(b"clip\x9b.wav")) == "clip\\x9b.wav"  # a byte of a non-UTF-8 file name
    keep = "Café naïve 東京 😀 [blink]B a[/]b back\\slash ¡\u00a0\u00ad"
    assert printable(keep) == keep
    for text in (HOSTILE_TEXT, printable(HOSTILE_TEXT)):
        assert printable(printable(text)) == printable(text)
        assert all(c.isprintable() or c == " " for c in printable(text))


def test_tag_pretty_shows_escape_sequences_and_markup_as_text(tmp_path):
    (tmp_path / "a.txt").write_text(HOSTILE_TEXT, encoding="utf-8")
    proc = on_terminal("tag", tmp_path / "a.txt", "--attention")  # pretty: the default on a terminal
    assert proc.returncode == 0, proc.stderr
    assert SGR.search(proc.stdout), "no colours: the terminal path was not taken"
    text = assert_safe(proc.stdout)
    assert "\\x1b]0;pwned\\x07" in text and "\\x9b2J" in text and "\\u202eevil" in text
    assert "[/]" in text and "blink" in text  # as typed, and no MarkupError (in the heatmap's labels too)
    assert proc.stderr == b""


def test_tag_on_a_real_pseudo_terminal(tmp_path):
    """The issue's reproducer, end to end: ``seqattn tag a.txt`` with stdout a pty."""
    pty = pytest.importorskip("pty")
    (tmp_path / "a.txt").write_bytes(b"see \x1b]0;pwned\x07 \x1b[2J .\n")
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "seqattn", "tag", str(tmp_path / "a.txt")], stdout=follower,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    out = b"".join(chunks).replace(b"\r\n", b"\n")
    assert SGR.search(out), out
    assert "\\x1b]0;pwned\\x07" in assert_safe(out)


def test_seq2seq_pretty_and_its_message_on_stderr(tmp_path):
    folder = tmp_path / f"in{OSC_TITLE}["
    folder.mkdir()
    source = folder / "]words.txt"  # the path reads .../in ESC]0;pwned BEL [/]words.txt
    source.write_text(f"AT{OSC_TITLE}TENTION[/]{CLEAR}\u202eX\n", encoding="utf-8")
    proc = on_terminal("seq2seq", source)
    assert proc.returncode == 0, proc.stderr
    out = assert_safe(proc.stdout)
    assert SGR.search(proc.stdout) and "AT\\x1b]0;pwned\\x07TENTION[/]\\x1b[2J\\u202eX  ->  " in out
    err = assert_safe(proc.stderr, CSI)  # "... symbols the model does not know": names the file
    assert "in\\x1b]0;pwned\\x07[/]words.txt:1: " in err and "read as <unk>" in err


CLASS_NAMES = [f"[/]{LINK}", f"[link=https://evil.example]c{OSC_TITLE}", f"{C1}[blink]\u202e"]


@pytest.fixture
def hostile_graph(tmp_path, tiny_graph_model_dir):
    """A node-link JSON graph whose node ids and gold classes are hostile, and a copy of the tiny
    graph model whose class names are too."""
    import numpy as np

    ids = ["[blink]B", "[link=https://evil.example]click", "[/]", OSC_TITLE + "t", "x\u202eevil" + C1]
    rng = np.random.default_rng(0)
    nodes = [{"id": n, "class": ["[/]", "[bold]g", CLEAR][k % 3], "features": rng.random(12).round(2).tolist()}
             for k, n in enumerate(ids)]
    links = [{"source": ids[k], "target": ids[(k + 1) % len(ids)]} for k in range(len(ids))]
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"directed": False, "nodes": nodes, "links": links}), encoding="utf-8")
    model = tmp_path / "hostile-model"
    shutil.copytree(tiny_graph_model_dir, model)
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["config"]["class_names"] = CLASS_NAMES[:len(config["config"]["classes"])]
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return graph, model, ids


def test_graph_node_ids_and_class_names_are_not_markup(hostile_graph):
    graph, model, ids = hostile_graph
    proc = on_terminal("graph", graph, "--model", model)
    assert proc.returncode == 0, proc.stderr
    out = assert_safe(proc.stdout)
    assert SGR.search(proc.stdout)
    rows = [line.split("\t") for line in on_terminal("graph", graph, "--model", model, "-f", "tsv").stdout
            .decode().splitlines()]  # the same classes as data: the model's names as written
    assert [r[0] for r in rows] == ids and {r[1] for r in rows} <= set(CLASS_NAMES)
    for node, predicted, _ in rows:
        assert re.search(f"{re.escape(printable(node))} +│ {re.escape(printable(predicted))} ", out), out
    for k in (0, 2, 3):  # --attention: the neighbour table of [blink]B, [/] and the OSC title
        proc = on_terminal("graph", graph, "--model", model, "--attention", ids[k])
        assert proc.returncode == 0, proc.stderr
        out = assert_safe(proc.stdout)
        assert f"node {printable(ids[k])}: {printable(rows[k][1])} (" in out
        assert f"{printable(ids[k])} (self)" in out and printable(ids[k - 1]) in out


def test_graph_message_quotes_a_hostile_file_name(hostile_graph, tmp_path):
    graph, model, _ = hostile_graph
    (tmp_path / f"e{OSC_TITLE}[").mkdir()
    edges = tmp_path / f"e{OSC_TITLE}[" / "].tsv"
    edges.write_text("0 1\n1 1\n0 1\n", encoding="utf-8")
    features = tmp_path / "f.csv"
    features.write_text("".join(f"{n}," + ",".join(["0.5"] * 12) + "\n" for n in "01"), encoding="utf-8")
    proc = on_terminal("graph", edges, "--features", features, "--model", model)
    assert proc.returncode == 0, proc.stderr
    err = assert_safe(proc.stderr, CSI)
    assert "e\\x1b]0;pwned\\x07[/].tsv: dropped 1 self-loops" in err
    title = re.sub(r"\s+", "", assert_safe(proc.stdout))  # the table's title, wrapped to the table's width
    assert "e\\x1b]0;pwned\\x07[/].tsv:2nodes" in title


@pytest.fixture
def hostile_clip(tmp_path):
    """data/speech/seven.wav under a name with ESC, BEL, C1, bidi and ``[/]`` in it."""
    folder = tmp_path / f"a[{OSC_TITLE}"
    folder.mkdir()
    clip = folder / f"][blink]{C1}\u202e{CLEAR}.wav"  # the path reads .../a[ESC]0;pwned BEL[/][blink]...
    shutil.copyfile(ROOT / "data" / "speech" / "seven.wav", clip)
    return clip


def test_speech_pretty_with_a_hostile_file_name(hostile_clip):
    proc = on_terminal("speech", hostile_clip)  # stderr a terminal too: the progress bar names the file
    assert proc.returncode == 0, proc.stderr
    out = assert_safe(proc.stdout)
    assert SGR.search(proc.stdout) and printable(str(hostile_clip)) in out and "transcript" in out
    assert "][blink]\\x9b2J\\x9d0;c1\\x9c\\u202e\\x1b[2J.wav" in assert_safe(proc.stderr, CSI)  # the bar


def test_frames_pretty_with_a_hostile_file_name(hostile_clip):
    proc = on_terminal("frames", hostile_clip)
    assert proc.returncode == 0, proc.stderr
    out = assert_safe(proc.stdout)
    assert SGR.search(proc.stdout) and printable(str(hostile_clip)) + "  " in out


def test_errors_escape_c1_and_bidi(tmp_path, hostile_clip):
    junk = hostile_clip.with_name(f"{C1}\u202ejunk.wav")
    junk.write_bytes(b"not audio")
    for command in ("speech", "frames"):
        proc = on_terminal(command, junk)
        assert proc.returncode == 2
        err = assert_safe(proc.stderr)
        assert err.startswith("seqattn: error: ") and err.count("\n") == 1
        assert "\\x9b2J\\x9d0;c1\\x9c\\u202ejunk.wav" in err


def test_data_formats_keep_the_input_bytes(tmp_path, hostile_graph):
    """tsv, conllu and jsonl are data, not terminal output: the user's characters as given."""
    (tmp_path / "a.txt").write_text("see \x1b]0;pwned\x07 \x9b2J \u202eevil .\n", encoding="utf-8")
    proc = on_terminal("tag", tmp_path / "a.txt", "--format", "tsv")
    assert proc.returncode == 0 and b"\x1b]0;pwned\x07\t" in proc.stdout and "\u202eevil".encode() in proc.stdout
    graph, model, ids = hostile_graph
    proc = on_terminal("graph", graph, "--model", model, "--format", "tsv")
    assert proc.returncode == 0 and [line.split("\t")[0] for line in proc.stdout.decode().splitlines()] == ids


def test_the_example_in_docs_cli_md_prints_what_it_says():
    from tests.conftest import seqattn

    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "printf 'see \\x1b]0;pwned\\x07 \\x1b[2J .\\n' | seqattn tag - -f pretty\n" in doc
    shown = "see/VERB \\x1b]0;pwned\\x07/ADJ \\x1b[2J/NUM ./PUNCT"
    assert f"prints `{shown}`" in doc
    proc = seqattn("tag", "-", "-f", "pretty", input=b"see \x1b]0;pwned\x07 \x1b[2J .\n")
    assert proc.returncode == 0 and proc.stdout.decode() == shown + "\n"


def test_every_message_on_stderr_is_escaped(capsys):
    """say() escapes the whole message, so a message that quotes a file name or a line (the next
    one anybody adds too) stays one line and cannot drive the terminal."""
    from seqattn.cli.common import say

    say(f"{OSC_TITLE}{C1}\u202e.txt:3: a\nb")
    assert capsys.readouterr().err == "\\x1b]0;pwned\\x07\\x9b2J\\x9d0;c1\\x9c\\u202e.txt:3: a\\nb\n"
    say("quiet", quiet=True)
    assert capsys.readouterr().err == ""
