"""Fuzz the readers (issue 7): >= 10,000 generated inputs per reader, a sample through the CLI.

Each input is a mutation of a valid seed file (bytes overwritten, cut short, spliced, hostile
pieces inserted: BOMs, CR, NUL, U+2028, invalid UTF-8, long lines, huge numbers) or plain random
bytes.  Every input must either read or raise the project's own InputError; anything else (or
more than --timeout seconds on one input) is a failure.  Every --cli-every-th input also goes
through the CLI in-process, which must exit 0 or 2 with no traceback and at most one error line.

    python benchmarks/fuzz.py                     # 10,000 inputs per reader, JSON on stdout
    python benchmarks/fuzz.py -n 500 --readers audio

Prints JSON: per reader the inputs, how many read, how many were input errors, failures
(with the first few saved under --save for replay), CLI runs, and seconds.  Exits 1 on any failure.
Not collected by pytest (benchmarks/ is not a test path); `make fuzz` runs it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOSTILE = [b"\xef\xbb\xbf", b"\r\n", b"\r", b"\x00", "\u2028".encode(), "\u2029".encode(), "\u0085".encode(),
           b"\xff", b"\xc3", b"\xed\xa0\x80", b"\t", b"\t\t\t", b"\n\n", b"#", b"-1", b"nan", b"1e400", b"9" * 30,
           b"a" * 5000, b"[" * 3000, b"{", b'"', b"<", b"&", "\u00b2".encode(), b"PK\x03\x04", b"RIFF"]


class Timeout(Exception):
    pass


def mutate(seed: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    """One generated input: a seed changed by 1-4 random operations, or random bytes."""
    if rng.random() < 0.08:
        return rng.randbytes(rng.choice([0, 1, 7, 64, 512, 4096]))
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:  # overwrite bytes (in a header, mostly: where the sizes are)
            for _ in range(rng.randint(1, 8)):
                position = rng.randrange(min(len(data), 96)) if rng.random() < 0.6 else rng.randrange(len(data))
                data[position] = rng.randrange(256)
        elif op == 1:  # cut short
            del data[at:]
        elif op == 2:  # insert a hostile piece
            data[at:at] = rng.choice(HOSTILE)
        elif op == 3 and data:  # delete a run
            del data[at:at + rng.randint(1, 64)]
        elif op == 4:  # splice another seed's tail
            other = rng.choice(seeds)
            data[at:] = other[rng.randrange(len(other) + 1):]
        elif op == 5 and data:  # repeat a run
            data[at:at] = data[at:at + rng.randint(1, 200)] * rng.randint(2, 20)
    return bytes(data)


# --------------------------------------------------------------------------- seeds


def text_seeds() -> list[bytes]:
    sample = (ROOT / "data" / "sample.txt").read_bytes()
    return [sample, b"The cat sat.\r\n\r\nA dog ran. Mr. Smith met J. Doe at 5 p.m.\n",
            "Caf\u00e9 \u201cquotes\u201d don't can't e-mail x@y.org https://a.b/c?d=1 ...\n".encode(), b""]


def conllu_seeds() -> list[bytes]:
    return [b"# sent_id = 1\n# text = The cat sat.\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n"
            b"2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_\n3\tsat\tsit\tVERB\t_\t_\t0\troot\t_\t_\n"
            b"4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_\n\n",
            "# text = don't\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_\n"
            "2\tn't\tnot\tPART\t_\t_\t1\tadvmod\t_\t_\n2.1\tgo\tgo\tVERB\t_\t_\t_\t_\t0:root\t_\n\n".encode()]


def audio_seeds() -> list[bytes]:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    seeds = []
    for fmt, subtype, channels in (("WAV", "PCM_16", 1), ("WAV", "FLOAT", 2), ("WAV", "ULAW", 1),
                                   ("WAV", "PCM_24", 1), ("FLAC", "PCM_16", 1), ("OGG", "VORBIS", 1)):
        buffer = io.BytesIO()
        sf.write(buffer, (0.3 * rng.standard_normal((1600, channels))).astype(np.float32), 8000,
                 format=fmt, subtype=subtype)
        seeds.append(buffer.getvalue())
    return seeds


def graph_seeds() -> list[tuple[str, bytes]]:
    import networkx as nx
    import numpy as np

    g = nx.Graph()
    g.add_nodes_from([("a", {"label": "x"}), ("b", {"label": "y"}), ("c", {})])
    g.add_edges_from([("a", "b", {"weight": 2.0}), ("b", "c", {"weight": 1.0})])
    seeds = [("g.tsv", b"# source target weight\n0\t1\t1.0\n1\t2\t0.5\n2\t2\t1\n0\t1\t3\n"),
             ("g.csv", b"source,target\na,b\nb,c\n"),
             ("g.json", json.dumps({"directed": False, "nodes": [{"id": 0, "class": "x", "features": [1, 0]},
                                                                 {"id": 1, "class": "y", "features": [0, 1]}],
                                    "links": [{"source": 0, "target": 1, "weight": 1.5}]}).encode()),
             ("f.csv", b"node,f1,f2,class\n0,1,0,x\n1,0.5,1,y\n2,0,0,_\n"),
             ("labels.txt", b"0\tx\n1\ty\n2\t_\n")]
    for name, write in (("g.graphml", nx.write_graphml), ("g.gml", nx.write_gml)):
        buffer = io.BytesIO()
        write(g, buffer)
        seeds.append((name, buffer.getvalue()))
    buffer = io.BytesIO()
    np.savez(buffer, features=np.eye(3, dtype=np.float32), nodes=np.array(["0", "1", "2"]))
    seeds.append(("f.npz", buffer.getvalue()))
    return seeds


# --------------------------------------------------------------------------- readers under test


def read_text(data: bytes, path: Path, fmt: str) -> None:
    from seqattn.readers.text import Lines, iter_items

    for _ in iter_items(Lines(io.BytesIO(data), str(path)), fmt):
        pass


def read_audio_file(data: bytes, path: Path) -> None:
    import numpy as np

    from seqattn.readers.audio import read_audio

    path.write_bytes(data)
    samples, _ = read_audio(path, 16000 if len(data) % 2 else None)
    assert samples.dtype == np.float32 and np.isfinite(samples).all(), "non-finite samples"


def read_graph_file(data: bytes, path: Path) -> None:
    from seqattn.readers.graph import read_features, read_graph, read_labels

    path.write_bytes(data)
    if path.name.startswith("f."):
        read_features(path)
    elif path.name.startswith("labels"):
        read_labels(path, ["0", "1", "2"])
    else:
        graph = read_graph(path, directed=len(data) % 2 == 1)
        n = graph.n_nodes
        assert ((graph.edge_index >= 0) & (graph.edge_index < n)).all(), "edge to a node that is not there"
        assert (graph.edge_index[0] != graph.edge_index[1]).all(), "self-loop kept"


# --------------------------------------------------------------------------- the CLI, in-process


def run_cli(args: list[str], stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """The CLI in-process, as a pipeline runs it (the test suite's runner): (exit code, stdout, stderr)."""
    from tests.conftest import seqattn

    proc = seqattn(*args, input=stdin)
    return proc.returncode, proc.stdout, proc.stderr


def cli_args(reader: str, path: Path) -> tuple[list[str], bool]:
    """(arguments, whether the input goes on stdin) of the command that reads this reader's files."""
    return {"text": (["tag", "-", "-f", "jsonl"], True),
            "conllu": (["tag", "-", "-i", "conllu", "-f", "conllu"], True),
            "audio": (["speech", str(path), "-f", "jsonl"], False),
            "graph": (["graph", str(path), "-f", "tsv"], False)}[reader]


def check_cli(reader: str, data: bytes, path: Path) -> str | None:
    """None when the CLI behaved: exit 0, or exit 2 with one 'seqattn: error:' line."""
    args, on_stdin = cli_args(reader, path)
    if not on_stdin:
        path.write_bytes(data)
    with tempfile.TemporaryFile() as fd2:  # what C libraries write to file descriptor 2 counts too
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(fd2.fileno(), 2)
        try:
            code, _, err = run_cli(args, data if on_stdin else b"")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        fd2.seek(0)
        err = fd2.read() + err
    text = err.decode("utf-8", "replace")
    if code == 0 and not text:
        return None
    lines = text.splitlines()
    if code == 2 and len(lines) == 1 and lines[0].startswith("seqattn: error: ") and "Traceback" not in text:
        return None
    return f"exit {code}: {text[:500]!r}"


# --------------------------------------------------------------------------- driver


def fuzz(reader: str, n: int, rng: random.Random, tmp: Path, save: Path, cli_every: int, timeout_s: float) -> dict:
    from seqattn.errors import InputError

    if reader in ("text", "conllu"):
        seeds = [("x.txt", s) for s in (text_seeds() if reader == "text" else conllu_seeds())]
    elif reader == "audio":
        seeds = [(f"x{i}.{'wav' if i < 4 else ('flac' if i == 4 else 'ogg')}", s) for i, s in enumerate(audio_seeds())]
    else:
        seeds = graph_seeds()
    raw = [s for _, s in seeds]
    result = {"inputs": 0, "read": 0, "input_errors": 0, "failures": 0, "cli_runs": 0, "cli_failures": 0,
              "examples": []}
    started = time.perf_counter()
    for i in range(n):
        name, seed = rng.choice(seeds)
        data = mutate(seed, raw, rng)
        path = tmp / name
        fmt = rng.choice(["text", "tokens"]) if reader == "text" else "conllu"
        problem = None
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            with warnings.catch_warnings(record=True) as caught:  # a warning would be chatter on stderr
                warnings.simplefilter("always")
                if reader in ("text", "conllu"):
                    read_text(data, path, fmt)
                elif reader == "audio":
                    read_audio_file(data, path)
                else:
                    read_graph_file(data, path)
            if caught:
                raise AssertionError(f"warning: {caught[0].category.__name__}: {caught[0].message}")
            result["read"] += 1
        except InputError as err:
            result["input_errors"] += 1
            if "\n" in str(err) or not str(err):
                problem = f"InputError message is not one line: {str(err)[:300]!r}"
        except Timeout:
            problem = f"more than {timeout_s} s"
        except Exception as err:  # noqa: BLE001 - this is what a fuzzer looks for
            problem = "".join(traceback.format_exception_only(type(err), err)).strip()[:500]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        result["inputs"] += 1
        if problem is None and cli_every and i % cli_every == 0:
            result["cli_runs"] += 1
            cli_problem = check_cli(reader, data, path)
            if cli_problem:
                result["cli_failures"] += 1
                problem = "CLI " + cli_problem
        if problem is not None:
            if not problem.startswith("CLI "):
                result["failures"] += 1
            if len(result["examples"]) < 5:
                saved = save / f"{reader}-{i}-{name}"
                saved.write_bytes(data)
                result["examples"].append({"file": str(saved), "problem": problem})
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["inputs_per_second"] = round(result["inputs"] / max(result["seconds"], 1e-9))
    return result


# --------------------------------------------------------------------------- terminal control in pretty output


TERMINAL_PIECES = [
    "\x1b]0;pwned\x07", "\x1b]0;pwned\x1b\\", "\x1b[2J", "\x1b[31m", "\x1b[0m", "\x1bc", "\x1b[?1049h", "\x1b[6n",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "\x1bP+q544e\x1b\\", "\x1b]52;c;cHduZWQ=\x07",
    "\x9b2J", "\x9d0;c1\x9c", "\x90q\x9c", "\x85", "\x1b", "\x07", "\x08\x08", "\r", "\t", "\x00", "\x7f",
    "[blink]", "[/]", "[/blink]", "[link=https://evil.example]", "[bold red]", "[reverse]", "[conceal]", "[u]",
    "[strike]", "[@click=app.bell]", "[on red]", "\\[", "[", "]", "\\", ":smile:", ":warning:", "[/bold]",
    "\u202e", "\u202d", "\u202a", "\u2066", "\u2067", "\u2069", "\u200f", "\u061c", "\u2028", "\u2029",
    "\udc9b", "\udcff",  # bytes of a file name that is not UTF-8, as Python carries them (PEP 383)
    "the", "cat", "sat", "Café", "東京", "😀", "n't", ".", "x",
]
BIDI_AND_BREAKS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_SGR = rb"\x1b\[([0-9;]*)m"  # a style: what rich writes on a colour terminal
# What seqattn's own styles write: reset, bold, dim, italic (table titles), colours; not underline,
# blink, reverse, conceal or strike, which only markup from the input could ask for.
_OWN_SGR = {0, 1, 2, 3, 22, 23, 39, 49, *range(30, 38), *range(40, 48), *range(90, 98), *range(100, 108)}


def terminal_words(rng: random.Random) -> list[str]:
    """1-12 'words', each a run of 1-4 pieces: escape sequences, C0/C1, rich markup, bidi, plain text."""
    return ["".join(rng.choice(TERMINAL_PIECES) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 12))]


def terminal_problem(out: bytes, shown: list[str]) -> str | None:
    """None when ``out`` (a render on a colour terminal) holds no control byte from the input and
    shows every string of ``shown`` as ``printable`` escapes it (so none was read as markup)."""
    import re

    from seqattn.render.safe import printable

    for match in re.finditer(_SGR, out):
        params, i = [int(p) if p else 0 for p in match.group(1).split(b";")], 0
        while i < len(params):
            if params[i] in (38, 48):  # 38;5;n or 38;2;r;g;b
                i += 3 if params[i + 1:i + 2] == [5] else 5
                continue
            if params[i] not in _OWN_SGR:
                return f"style {match.group(0)!r} that seqattn never writes (markup from the input?)"
            i += 1
    plain = re.sub(_SGR, b"", out)
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8: {err}"
    bad = sorted({c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F
                  or c in BIDI_AND_BREAKS or 0xD800 <= ord(c) < 0xE000})
    if bad:
        return f"raw control characters {bad!r} in the output"
    visible = re.sub(r"\s", "", text)  # tables wrap titles to their width
    for s in shown:
        if re.sub(r"\s", "", printable(s)) not in visible:
            return f"{s!r} is not shown as typed (read as markup?)"
    return None


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def render_on_terminal(draw) -> bytes:
    """What ``draw()`` prints through seqattn's console() when stdout is a colour terminal."""
    out = io.BytesIO()
    saved = sys.stdout
    sys.stdout = _Terminal(out, encoding="utf-8", write_through=True)
    try:
        draw()
        sys.stdout.flush()
    finally:
        sys.stdout.detach()
        sys.stdout = saved
    return out.getvalue()


def terminal_case(renderer: str, rng: random.Random):
    """(draw, strings that must be shown) for one generated input to one pretty renderer."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from seqattn.cli.common import console
    from seqattn.render import seq2seq, tags
    from seqattn.render.heatmap import heatmap

    words = terminal_words(rng)
    if renderer == "tag":  # words from the input; tags from a model file (hostile too, now and then)
        upos = [rng.choice(list(tags.TAG_COLOURS)) if rng.random() < 0.9 else rng.choice(TERMINAL_PIECES)
                for _ in words]
        weights = np.random.default_rng(rng.randrange(1 << 30)).random((len(words), len(words))).tolist()

        def draw():
            out = console()
            out.print(tags.pretty(words, upos))
            if rng.random() < 0.3:
                out.print(heatmap(weights, words, words, "attention"))
        return draw, words + upos
    if renderer == "seq2seq":  # a source line, and output symbols from a model's vocabulary
        source = " ".join(words)
        symbols = terminal_words(rng)
        attention = np.random.default_rng(rng.randrange(1 << 30)).random((len(symbols) + 1, len(source)))
        result = SimpleNamespace(text=" ".join(symbols), symbols=symbols, source_symbols=list(source),
                                 attention=attention, score=0.0)

        def draw():
            out = console()
            out.print(seq2seq.pretty(source, result), soft_wrap=True)
            if rng.random() < 0.3:
                out.print(seq2seq.alignment(result))
        return draw, [source, result.text]
    # graph: node ids and a file name from the input, class names from a model file
    from seqattn.cli.graph import _show_attention, _show_classes

    nodes = list(dict.fromkeys(words))
    classes = terminal_words(rng)[:3]
    n = len(nodes)
    predicted = [rng.choice(classes) for _ in nodes]
    gold = [rng.choice(classes + [None, "[/]"]) for _ in nodes] if rng.random() < 0.5 else None
    data = SimpleNamespace(source=rng.choice(TERMINAL_PIECES) + ".json", nodes=nodes, n_nodes=n, n_edges=2 * (n - 1),
                           labels=gold)
    cfg = SimpleNamespace(classes=[str(k) for k in range(len(classes))], display_names=lambda: classes)
    edge_index = torch.tensor([list(range(n)), [0] * n])  # every node -> node 0, with its self-loop
    result = SimpleNamespace(classes=predicted, probabilities=[0.5] * n, edge_index=edge_index,
                             attention=[torch.full((n, 2), 1 / n), torch.full((n, 1), 1 / n)])
    if rng.random() < 0.5:
        return (lambda: _show_attention(data, result, None, 0, "pretty")), nodes + predicted
    return (lambda: _show_classes(data, result, cfg, "pretty")), [data.source] + nodes + predicted


def fuzz_terminal(n: int, seed: int, save: Path, cli_every: int = 100) -> dict:
    """Issue 26: >= ``n`` generated inputs full of terminal controls and rich markup through the pretty
    renderers of tag, seq2seq and graph (on a colour terminal), and the error line; every
    ``cli_every``-th tag and seq2seq input also through the CLI with --format pretty."""
    from seqattn.cli.main import _one_line

    saved_env = {k: os.environ.get(k) for k in ("TERM", "COLORTERM", "COLUMNS", "NO_COLOR")}
    os.environ.update(TERM="xterm-256color", COLORTERM="truecolor", COLUMNS="100000")
    os.environ.pop("NO_COLOR", None)
    report = {}
    try:
        for renderer in ("tag", "seq2seq", "graph"):
            rng = random.Random(f"{seed}-terminal-{renderer}")
            result = {"inputs": 0, "failures": 0, "cli_runs": 0, "cli_failures": 0, "examples": []}
            started = time.perf_counter()
            for i in range(n):
                draw, shown = terminal_case(renderer, rng)
                try:
                    problem = terminal_problem(render_on_terminal(draw), shown)
                    if problem is None:  # the same text quoted in an error line
                        problem = terminal_problem(_one_line(" ".join(shown)).encode(), [])
                except Exception as err:  # noqa: BLE001 - a MarkupError, say
                    problem = "".join(traceback.format_exception_only(type(err), err)).strip()[:500]
                result["inputs"] += 1
                if problem is None and cli_every and i % cli_every == 0 and renderer != "graph":
                    result["cli_runs"] += 1
                    args = ["tag", "-", "-f", "pretty"] if renderer == "tag" else ["seq2seq", "-", "-f", "pretty"]
                    code, out, err = run_cli(args, " ".join(shown[:12]).encode("utf-8", "replace") + b"\n")
                    one_error = code == 2 and err.startswith(b"seqattn: error: ") and err.count(b"\n") == 1
                    cli_problem = (f"exit {code}: {err[:300]!r}" if code != 0 and not one_error else
                                   terminal_problem(out, []) or terminal_problem(err, []))
                    if cli_problem:
                        result["cli_failures"] += 1
                        problem = "CLI " + cli_problem
                if problem is not None:
                    if not problem.startswith("CLI "):
                        result["failures"] += 1
                    if len(result["examples"]) < 5:
                        saved = save / f"terminal-{renderer}-{i}.json"
                        saved.write_text(json.dumps(shown), encoding="utf-8")
                        result["examples"].append({"file": str(saved), "problem": problem})
            result["seconds"] = round(time.perf_counter() - started, 1)
            report[f"terminal-{renderer}"] = result
            print(f"terminal-{renderer}: {json.dumps({k: v for k, v in result.items() if k != 'examples'})}",
                  file=sys.stderr, flush=True)
    finally:
        for key, value in saved_env.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return report


# --------------------------------------------------------------------------- model directories (issue 26)

HOSTILE_VALUES = [0, -1, 1, 3, 7, 2 ** 31, 10 ** 30, -(10 ** 30), 0.5, -0.0, 1.0, 1e308, -1e308, True, False, None,
                  "", "8", "none", "dot", "x" * 20_000, [], [1], ["a"], ["a"] * 5, {}, {"d_model": 8}, [[[[[]]]]]]


def _config_paths(node, prefix=()):
    """Every (path, value) inside a config dict, nested configs included."""
    for key, value in node.items():
        yield prefix + (key,), value
        if isinstance(value, dict):
            yield from _config_paths(value, prefix + (key,))


def mutate_config(text: bytes, rng: random.Random) -> bytes:
    """A config.json changed in its bytes (half the time) or in its values: a setting replaced by a
    hostile value (or a near one, or NaN), dropped, or joined by an unknown key."""
    if rng.random() < 0.5:
        return mutate(text, [text], rng)
    meta = json.loads(text)
    for _ in range(rng.randint(1, 3)):
        paths = list(_config_paths(meta["config"])) if isinstance(meta.get("config"), dict) else []
        if not paths:
            break
        path, value = rng.choice(paths)
        parent = meta["config"]
        for key in path[:-1]:
            parent = parent[key]
        op = rng.random()
        if op < 0.6:
            parent[path[-1]] = rng.choice(HOSTILE_VALUES)
        elif op < 0.75 and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[path[-1]] = rng.choice([value * rng.choice([2, 10, 1000, -1]), value + 1, value - 1,
                                           float("nan"), float("inf"), float(value)])
        elif op < 0.85:
            del parent[path[-1]]
        elif op < 0.95:
            parent[rng.choice(["n_head", "bogus", "__proto__", "window_size"])] = 1
        else:
            meta[rng.choice(["task", "format_version", "config"])] = rng.choice(HOSTILE_VALUES)
    return json.dumps(meta, indent=rng.choice([None, 1])).encode()


def mutate_weights(data: bytes, rng: random.Random) -> bytes:
    """A safetensors file changed in its header: bytes of the header JSON, the length prefix, or
    one tensor's dtype, shape or offsets (the data stays as it was)."""
    size = int.from_bytes(data[:8], "little")
    header, body = data[8:8 + size], data[8 + size:]
    op = rng.random()
    if op < 0.35:
        header = mutate(header, [header], rng)
    elif op < 0.45:
        return rng.randbytes(8) + data[8:] if rng.random() < 0.5 else mutate(data, [data], rng)
    else:
        entries = json.loads(header)
        name = rng.choice([k for k in entries if k != "__metadata__"])
        entry = entries[name]
        choice = rng.random()
        if choice < 0.3:
            entry["dtype"] = rng.choice(["I64", "F16", "BF16", "F64", "BOOL", "U8", "XX", 7])
        elif choice < 0.6:
            entry["shape"] = rng.choice([[], [0], [1], [10 ** 9, 10 ** 9], [-1], ["a"], entry["shape"][::-1],
                                         entry["shape"] + [1]])
        elif choice < 0.8:
            entry["data_offsets"] = rng.choice([[0, 0], [0, 10 ** 12], [5, 1], [-1, 3], [0]])
        elif choice < 0.9:
            entries[name + rng.choice([".x", "", "\x1b[2J"])] = entries.pop(name)
        else:
            del entries[name]
        header = json.dumps(entries).encode()
        header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + body


def fuzz_models(n: int, seed: int, save: Path, timeout_s: float) -> dict:
    """Issue 26: >= ``n`` model directories (config.json and safetensors headers, mutated from small
    valid models of the four kinds) loaded, and where they load, run on a small input.  Each must
    load and run, or raise ModelError (an InputError from the run itself, such as a clip at another
    sample rate than a mutated frame spec's, is counted apart); anything else, or a hang, is a failure."""
    import shutil

    from seqattn.errors import InputError, ModelError
    from seqattn.readers.graph import read_planetoid
    from seqattn.tasks.graph import load_node_classifier
    from seqattn.tasks.seq2seq import load_seq2seq
    from seqattn.tasks.speech import load_speech_model, recognise
    from seqattn.tasks.tagging import load_tagger
    from tests.conftest import make_planetoid
    from tests.models.test_model_validation import build_models

    def run_tag(path):
        load_tagger(path, precision="fp32").predict([["the", "fox", "Quickly"]])

    def run_graph(path):
        load_node_classifier(path).predict(graph)

    def run_speech(path):
        recognise(load_speech_model(path), ROOT / "data" / "speech" / "seven.wav")

    def run_seq2seq(path):
        load_seq2seq(path).decode(["abc", "fed"], beam=2)

    report = {}
    with tempfile.TemporaryDirectory(prefix="seqattn-fuzz-models-") as tmp:
        tmp = Path(tmp)
        bases = build_models(tmp / "base")
        graph = read_planetoid(make_planetoid(tmp / "planetoid", n_words=12))
        runners = {"tag": run_tag, "graph": run_graph, "speech": run_speech, "seq2seq": run_seq2seq}
        for part in ("config", "weights"):
            rng = random.Random(f"{seed}-models-{part}")
            result = {"inputs": 0, "loaded": 0, "model_errors": 0, "input_errors": 0, "failures": 0,
                      "cli_runs": 0, "cli_failures": 0, "examples": []}
            started = time.perf_counter()
            for i in range(n):
                kind = ("tag", "graph", "speech", "seq2seq")[i % 4]
                case = tmp / "case"
                shutil.rmtree(case, ignore_errors=True)
                shutil.copytree(bases[kind], case)
                name = "config.json" if part == "config" else "model.safetensors"
                (case / name).write_bytes((mutate_config if part == "config" else mutate_weights)(
                    (bases[kind] / name).read_bytes(), rng))
                result["inputs"] += 1
                problem = None
                signal.setitimer(signal.ITIMER_REAL, timeout_s)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        runners[kind](case)
                    result["loaded"] += 1
                except ModelError:
                    result["model_errors"] += 1
                except InputError:
                    result["input_errors"] += 1
                except Timeout:
                    problem = f"more than {timeout_s} s"
                except Exception as err:  # noqa: BLE001 - what the fuzzer is for
                    problem = "".join(traceback.format_exception_only(type(err), err)).strip()[:500]
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if problem is not None:
                    result["failures"] += 1
                    if len(result["examples"]) < 5:
                        kept = save / f"model-{part}-{kind}-{i}"
                        shutil.rmtree(kept, ignore_errors=True)
                        shutil.copytree(case, kept)
                        result["examples"].append({"dir": str(kept), "kind": kind, "problem": problem})
            result["seconds"] = round(time.perf_counter() - started, 1)
            report[f"models-{part}"] = result
            print(f"models-{part}: {json.dumps({k: v for k, v in result.items() if k != 'examples'})}",
                  file=sys.stderr, flush=True)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="inputs per reader (default 10,000)")
    parser.add_argument("--readers", nargs="+", default=["text", "conllu", "audio", "graph"],
                        choices=["text", "conllu", "audio", "graph"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli-every", type=int, default=100, help="every k-th input also through the CLI (0: none)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    parser.add_argument("--save", type=Path, default=Path(tempfile.gettempdir()) / "seqattn-fuzz",
                        help="folder for inputs that failed")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # a shared machine; the readers do not need threads

    def alarm(signum, frame):
        raise Timeout

    signal.signal(signal.SIGALRM, alarm)
    args.save.mkdir(parents=True, exist_ok=True)
    report = {"seed": args.seed, "inputs_per_reader": args.n, "readers": {}}
    with tempfile.TemporaryDirectory(prefix="seqattn-fuzz-") as tmp:
        for reader in args.readers:
            folder = Path(tmp) / reader
            folder.mkdir()
            report["readers"][reader] = fuzz(reader, args.n, random.Random(f"{args.seed}-{reader}"), folder,
                                             args.save, args.cli_every, args.timeout)
            print(f"{reader}: {json.dumps({k: v for k, v in report['readers'][reader].items() if k != 'examples'})}",
                  file=sys.stderr, flush=True)
        report["readers"].update(fuzz_terminal(args.n, args.seed, args.save, args.cli_every))  # issue 26
        report["readers"].update(fuzz_models(args.n, args.seed, args.save, args.timeout))  # issue 26
    print(json.dumps(report, indent=1))
    failed = sum(r["failures"] + r["cli_failures"] for r in report["readers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
