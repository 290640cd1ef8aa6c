"""`seqattn tokenize`: every format gives back the input text from its offsets, --pieces-only is
sentencepiece's own encoding, streams, terminals, and the error contract (one line, exit 2)."""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from seqattn.readers.tokenize import Pieces, default_model_path
from tests.cli.test_tag_cli import assert_one_line_error
from tests.conftest import ROOT, seqattn
from tests.readers.test_text import TRICKY_LINES

LINES = TRICKY_LINES + [
    "Wait...what?! :-) ;-) <3 @bob #nlp mail me: bob@example.org or https://example.com/a?b=c.",
    "Family: 👨‍👩‍👧 👍🏽 🇬🇧 — ok ;)", "It costs $5, i.e. 3.14 or 1,000 (approx.)...", "tab\tseparated\t\twords\t",
    "", "\u00a0no-break\u00a0spaces and\u3000ideographic", "Mr. Smith  went to Washington.  He didn't stay!",
]
TEXT = "\n".join(LINES) + "\n"
WHITESPACE = re.compile(r"[\s\u2028\u2029\u0085\x00]")


def _run(*args, text: str = TEXT) -> str:
    proc = seqattn("tokenize", "-", *args, input=text.encode())
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    return proc.stdout.decode()


def assert_line_covered(line: str, spans: list[tuple[str, int, int]]) -> None:
    """The words sit at their offsets, in order, and what they leave out of the line is whitespace."""
    covered = [False] * len(line)
    position = 0
    for word, start, end in spans:
        assert line[start:end] == word and start >= position, (line, word, start, end)
        covered[start:end] = [True] * (end - start)
        position = end
    assert all(WHITESPACE.match(c) for c, hit in zip(line, covered) if not hit), line


def test_tsv_round_trip(tmp_path):
    out = _run("--format", "tsv")
    sentences = [[row.split("\t") for row in block.split("\n")] for block in re.split(r"\n\n+", out) if block.strip()]
    assert all(len(row) == 4 for sentence in sentences for row in sentence)
    # Offsets count from the start of each line: give each line the sentences that tile it.
    queue = iter(sentences)
    for line in LINES:
        spans, position = [], 0
        while any(not WHITESPACE.match(c) for c in line[position:]):
            sentence = next(queue)
            spans += [(w, int(s), int(e)) for w, s, e, _ in sentence]
            position = spans[-1][2]
        assert_line_covered(line, spans)
    assert next(queue, None) is None
    pieces = Pieces(default_model_path())
    assert all(p.split(" ") == list(pieces.word(w)) for sentence in sentences for w, _, _, p in sentence if p)


def test_tsv_keeps_empty_lines_as_an_extra_blank_line():
    assert _run("-f", "tsv", text="Hi.\n\nBye.\n") == \
        "Hi\t0\t2\t▁Hi\n.\t2\t3\t▁ .\n\n" "\n" "Bye\t0\t3\t▁By e\n.\t3\t4\t▁ .\n\n"


def test_jsonl_round_trip():
    out = _run("--format", "jsonl")
    assert not re.search("[\u2028\u2029\x85]", out)  # escaped: a reader that splits on them still sees one line
    objects = [json.loads(line) for line in out.splitlines()]
    by_line: dict[int, list] = {}
    for obj in objects:
        by_line.setdefault(obj["line"], []).append(obj)
    assert sorted(by_line) == list(range(1, len(LINES) + 1))
    for number, line in enumerate(LINES, 1):
        spans = []
        for obj in by_line[number]:
            assert obj["text"] == line[obj["start"]:obj["end"]]
            spans += [(w["word"], w["start"], w["end"]) for w in obj["words"]]
            if obj["words"]:
                assert (obj["start"], obj["end"]) == (obj["words"][0]["start"], obj["words"][-1]["end"])
        assert_line_covered(line, spans)
        if not spans:  # a blank line: one object without words
            assert by_line[number] == [{"line": number, "sentence": 0, "text": "", "start": 0, "end": 0, "words": []}]


def test_conllu_round_trip_from_token_ranges_and_spaces():
    import conllu

    sentences = conllu.parse(_run("--format", "conllu"))
    rebuilt: dict[int, str] = {}
    spans_of: dict[int, list] = {}
    for sentence in sentences:
        number, _ = map(int, sentence.metadata["sent_id"].split("-"))
        line = LINES[number - 1]
        spans = spans_of.setdefault(number, [])
        first_word = len(spans)
        text = rebuilt.get(number, "")
        for token in sentence:
            misc = token["misc"]
            start, end = map(int, misc["TokenRange"].split(":"))
            spans.append((token["form"], start, end))
            text = text.ljust(start) + token["form"]
            if misc.get("SpaceAfter") == "No":
                pass
            elif "SpacesAfter" in misc:
                text += misc["SpacesAfter"].replace("\\s", " ").replace("\\t", "\t").replace("\\n", "\n")
            elif not (token is sentence[-1] and end == len(line.rstrip())):
                text += " "
        first, last = spans[first_word][1], spans[-1][2]
        assert sentence.metadata["text"] == WHITESPACE.sub(" ", line[first:last])
        rebuilt[number] = text
    for number, line in enumerate(LINES, 1):
        if number in rebuilt:
            assert_line_covered(line, spans_of[number])  # leading whitespace comes back as spaces, the rest as written
            lead = len(line) - len(line.lstrip())
            assert rebuilt[number].rstrip(" ") == (" " * lead + line[lead:]).rstrip(" "), line
        else:
            assert not line.strip(), line
    assert any("newpar" in s.metadata for s in sentences)


def test_pieces_only_is_sentencepieces_own_encoding(tmp_path):
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(default_model_path()))
    out = _run("--pieces-only")
    assert out.split("\n") == [" ".join(processor.encode(line, out_type=str)) for line in LINES] + [""]


def test_another_spm_model(tmp_path):
    from seqattn.readers.subwords import train_subwords

    model = train_subwords(["the cat sat on the mat", "a dog and a cat"] * 50, tmp_path / "tiny.model", vocab_size=30)
    out = _run("--spm", model, "-f", "jsonl", text="the cat sat\n")
    words = json.loads(out)["words"]
    pieces = Pieces(model)
    assert [w["pieces"] for w in words] == [list(pieces.word(w["word"])) for w in words]
    assert words != json.loads(_run("-f", "jsonl", text="the cat sat\n"))["words"]  # not the default model's


def test_empty_input_is_not_an_error():
    for args in ([], ["--pieces-only"], ["-f", "jsonl"]):
        proc = seqattn("tokenize", "-", *args, input=b"")
        assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""


@pytest.mark.parametrize("args,data,match", [
    (["tokenize", "missing.txt"], None, "no such file"),
    (["tokenize", "seqattn"], None, "is a directory"),
    (["tokenize", "BINARY"], b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "not UTF-8"),
    (["tokenize", "BINARY"], "Caf\xe9 au lait.\n".encode("latin-1"), "BINARY:1: not UTF-8 text (byte offset 3"),
    (["tokenize", "-"], b"\xc3\x28 bad\n", "<stdin>:1: not UTF-8"),
    (["tokenize", "data/sample.txt", "--spm", "nowhere.model"], None, "no such sentencepiece model"),
    (["tokenize", "data/sample.txt", "--spm", "seqattn"], None, "is a directory"),
    (["tokenize", "data/sample.txt", "--spm", "README.md"], None, "not a sentencepiece model"),
    (["tokenize", "data/sample.txt", "--pieces-only", "--format", "tsv"], None, "leave out --format"),
    (["tokenize", "data/sample.txt", "--format", "xml"], None, "unknown --format"),
    (["tokenize", "data/sample.txt", "--max-line-bytes", "4"], None, "--max-line-bytes"),
])
def test_errors_are_one_line_and_exit_2(args, data, match, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    if data is not None and "BINARY" in args:
        path = tmp_path / "BINARY"
        path.write_bytes(data)
        args = [str(path) if a == "BINARY" else a for a in args]
    proc = seqattn(*args, input=data or b"")
    assert_one_line_error(proc)
    assert match in proc.stderr.decode(), proc.stderr


def test_a_bad_line_after_good_ones_stops_there():
    proc = seqattn("tokenize", "-", "-f", "tsv", input=b"Fine.\n\xff\n")
    assert proc.returncode == 2 and proc.stdout.startswith(b"Fine\t0\t4\t")
    assert proc.stderr.decode().strip().splitlines() == ["seqattn: error: <stdin>:2: not UTF-8 text (byte offset 6: "
                                                         "b'\\xff')"]


def test_streamed_input_is_answered_before_stdin_closes():
    """`tail -f chat.log | seqattn tokenize -`: each line's words come out while the writer holds the pipe."""
    import select

    for args, first in ((["-f", "tsv"], b"Wait\t0\t4\t"), (["--pieces-only"], b"\xe2\x96\x81W")):
        proc = subprocess.Popen([sys.executable, "-m", "seqattn", "tokenize", "-", *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            proc.stdin.write(b"Wait...what :-)\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, "no output while stdin stayed open"
            assert proc.stdout.readline().startswith(first)
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stderr.read()


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def _on_terminal(*args, input: bytes = b""):
    """The CLI in-process with stdout as a colour terminal: the pretty default."""
    from seqattn.cli.main import run

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(input), encoding="utf-8")
    sys.stdout = _Terminal(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        code = run([str(a) for a in args])
    finally:
        for wrapper in (sys.stdout, sys.stderr):
            wrapper.flush()
        for wrapper in (sys.stdin, sys.stdout, sys.stderr):
            wrapper.detach()
        sys.stdin, sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


def test_terminal_output_shows_escape_sequences_as_text(monkeypatch):
    from tests.cli.test_terminal_safety import HOSTILE_TEXT, SGR, assert_safe

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, err = _on_terminal("tokenize", "-", input=HOSTILE_TEXT.encode())
    assert code == 0 and err == b"", err
    assert SGR.search(out), "no colours: the terminal path was not taken"
    text = assert_safe(out)
    assert "\\x1b]0;pwned\\x07" in text and "\\x9b2J" in text and "\\u202eevil" in text and "a[/]b" in text
    code, out, err = _on_terminal("tokenize", "-", "--pieces-only", input=HOSTILE_TEXT.encode())
    assert code == 0 and "\\x9b" in assert_safe(out)  # sentencepiece drops ESC itself, but not CSI
    # in a pipe the data formats keep the characters as given
    assert "\x1b]0;pwned\x07" in _run("-f", "tsv", text=HOSTILE_TEXT)


def test_help_lists_tokenize():
    proc = seqattn("--help")
    assert b"tokenize" in proc.stdout
    proc = seqattn("tokenize", "--help")
    assert proc.returncode == 0 and b"--pieces-only" in proc.stdout and b"--spm" in proc.stdout


def test_tokenize_needs_no_torch():
    """A shell filter: it starts without the model stack (torch takes seconds to import)."""
    check = ("import sys, io\nsys.stdin = io.TextIOWrapper(io.BytesIO(b'Hi there.\\n'))\n"
             "from seqattn.cli.main import run\nassert run(['tokenize', '-', '-f', 'tsv']) == 0\n"
             "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(b"Hi\t0\t2\t")
