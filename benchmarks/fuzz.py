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
    print(json.dumps(report, indent=1))
    failed = sum(r["failures"] + r["cli_failures"] for r in report["readers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
