"""Memory bounded by design (issue 26, item 3): peak RSS of commands on endless and one-line input.

Each run is a child process (``python -m seqattn ...``, one torch thread, the shipped models) whose
peak RSS comes from ``os.wait4``'s rusage of that child:

- ``tag /dev/zero``: NUL bytes are text (spaces), so it reads on in 1 MiB pieces without output
  until stopped: SIGTERM after ``--zero-seconds``; the bytes it read (``/proc/PID/io`` rchar)
  show it kept reading.
- ``evaluate tagger --data /dev/zero``: ends by its limit (a CoNLL-U line of more than 1 MiB, exit 2).
- ``seq2seq /dev/zero``: refuses the endless first line and reads on through it; SIGTERM.
- ``tag`` on one unpunctuated line: 1 MB of short words (the issue's reproducer, 2.2 GB before),
  and ``--line-mb`` (50) MB of long words (fewer words, so that the run takes minutes, not hours;
  the words per piece held are then fewer than with short words: the 4 MB run of short words
  holds the most, two 1 MiB pieces of words at once).
- ``split_sentences`` on ``"Mr. " * n`` (every period an abbreviation's), in-process: seconds
  per n, linear since issue 26 (quadratic before: 0.37 s at n = 40,000, 15.5 s at 200,000).

    python benchmarks/bench_memory.py                   # everything (several minutes)
    python benchmarks/bench_memory.py --line-mb 10 --zero-seconds 10

Prints JSON; exits 1 if a peak passes ``--limit-mb`` (1,024, the issue's target) or a run that
should end by its limit does not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT_WORDS = "the cat sees a big dog in Paris and likes every small house".split()
LONG_WORDS = ("internationalization counterrevolutionaries representativeness incomprehensibilities "
              "electroencephalographically uncharacteristically telecommunications misunderstandings "
              "interdisciplinary establishmentarianism").split()


def one_line(path: Path, megabytes: float, words: list[str]) -> Path:
    """One line of ``megabytes`` MB: the words in turn, separated by spaces, no punctuation."""
    target = int(megabytes * 1_000_000)
    if path.exists() and path.stat().st_size == target + 1:
        return path
    block = (" ".join(words[(i * 7 + i // 13) % len(words)] for i in range(20_000)) + " ").encode()
    with open(path, "wb") as handle:
        written = 0
        while written < target:
            chunk = block[:target - written]
            handle.write(chunk)
            written += len(chunk)
        handle.write(b"\n")
    return path


def _read_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))
    except (OSError, StopIteration, ValueError):
        return None


def run_child(args: list[str], stop_after_s: float | None = None) -> dict:
    """Run ``python -m seqattn ARGS``; SIGTERM after ``stop_after_s`` if given; peak RSS and outcome."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "seqattn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env)
    read = [None]
    stop = None
    if stop_after_s is not None:
        def terminate():
            read[0] = _read_bytes(proc.pid)
            proc.send_signal(signal.SIGTERM)

        stop = threading.Timer(stop_after_s, terminate)
        stop.start()
    err_chunks: list[bytes] = []
    err_reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    err_reader.start()
    out_bytes = out_lines = 0
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        out_bytes += len(chunk)
        out_lines += chunk.count(b"\n")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if stop is not None:
        stop.cancel()
    err_reader.join()
    stderr = b"".join(err_chunks).decode(errors="replace").strip().splitlines()
    run = {"command": "seqattn " + " ".join(args), "exit_code": os.waitstatus_to_exitcode(status),
           "seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
           "stdout_lines": out_lines, "stderr_first_line": stderr[0][:200] if stderr else ""}
    if read[0] is not None:
        run["bytes_read_before_sigterm"] = read[0]
    return run


def split_speed(counts: list[int]) -> list[dict]:
    """Seconds of ``split_sentences`` on ``"Mr. " * n + "Smith left."``, best of three."""
    sys.path.insert(0, str(ROOT))
    from seqattn.readers.text import split_sentences

    rows = []
    for n in counts:
        line = "Mr. " * n + "Smith left."
        best = min(_timed(split_sentences, line) for _ in range(3))
        rows.append({"n": n, "seconds": round(best, 3), "microseconds_per_period": round(1e6 * best / n, 2)})
    return rows


def _timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-mb", type=float, default=50, help="size of the long-word one-line file (MB)")
    parser.add_argument("--short-mb", type=float, nargs="*", default=[1, 4], help="sizes of short-word lines (MB)")
    parser.add_argument("--zero-seconds", type=float, default=30, help="how long the /dev/zero runs read")
    parser.add_argument("--limit-mb", type=float, default=1024, help="the peak RSS every run must stay under")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "seqattn-bench-memory",
                        help="where the generated one-line files go (kept for reruns)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    runs = {}
    ok = True

    def record(name: str, run: dict, expect_exit: int | None = None) -> None:
        nonlocal ok
        runs[name] = run
        bounded = run["peak_rss_mb"] < args.limit_mb
        ok = ok and bounded and (expect_exit is None or run["exit_code"] == expect_exit)
        print(f"{name}: peak {run['peak_rss_mb']} MB, {run['seconds']} s, exit {run['exit_code']}",
              file=sys.stderr, flush=True)

    record("tag_dev_zero", run_child(["tag", "/dev/zero", "-f", "tsv", "-q"], args.zero_seconds))
    record("evaluate_tagger_dev_zero", run_child(["evaluate", "tagger", "--data", "/dev/zero"]), expect_exit=2)
    record("seq2seq_dev_zero", run_child(["seq2seq", "/dev/zero", "-f", "tsv", "-q"], args.zero_seconds))
    for mb in args.short_mb:
        path = one_line(args.dir / f"line-short-{mb:g}MB.txt", mb, SHORT_WORDS)
        record(f"tag_one_line_{mb:g}MB_short_words", run_child(["tag", str(path), "-f", "tsv", "-q"]), expect_exit=0)
    path = one_line(args.dir / f"line-long-{args.line_mb:g}MB.txt", args.line_mb, LONG_WORDS)
    record(f"tag_one_line_{args.line_mb:g}MB_long_words", run_child(["tag", str(path), "-f", "tsv", "-q"]),
           expect_exit=0)
    report = {"runs": runs, "limit_mb": args.limit_mb, "all_under_limit": ok,
              "split_sentences_abbreviations": split_speed([50_000, 100_000, 200_000, 400_000, 800_000])}
    print(json.dumps(report, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
