"""Bounded memory when streaming (issue 7): `seqattn tag` on generated text of growing size.

Each size runs `python -m seqattn tag FILE -f tsv -q` in a child process (one torch thread) and
reports its peak RSS (``os.wait4``'s rusage of that child), its RSS sampled over time from
/proc (the slope: memory that grows with input shows as a rising series), words tagged and
words/s.  ``--reader-mb`` does the same for the reader alone (lines -> sentences -> words, no
model), which is fast enough to reach hundreds of MB on a small machine.

    python benchmarks/bench_stream.py                       # tag 1, 4 and 8 MB; read 16 and 256 MB
    python benchmarks/bench_stream.py --tag-mb 10 100 --reader-mb 1024

Prints JSON.  RSS must not grow with input size: "bounded_memory" compares, in the largest run,
the peak RSS of the second half of the run with that of the first half (start-up and warm-up
are in the first); more than 5% (+10 MB) of growth fails the benchmark (exit 1).  The
peak RSS of every size is listed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the a this every cat dog idea house model word sees likes builds tags big small green fast in on near "
         "Paris Alice Bob can't don't e-mail U.S. Mr. Smith 3.5 1,000 (see) \"quoted\" well-known").split()

READER = """
import sys
from seqattn.readers.text import iter_items, open_text
words = 0
with open_text(sys.argv[1]) as lines:
    for item in iter_items(lines, "text"):
        words += len(item.words or ())
print(words)
"""


def make_text(path: Path, megabytes: float, seed: int = 0) -> Path:
    """Running text of about ``megabytes`` MB: sentences of 4-20 words, lines of 1-4 sentences,
    an empty line (a paragraph break) now and then.  Reused when it already exists."""
    target = int(megabytes * 1_000_000)
    if path.exists() and path.stat().st_size >= target:
        return path
    rng = random.Random(seed)
    # Build a 1 MB block of varied lines once, then repeat it: generation stays cheap.
    lines, size = [], 0
    while size < min(target, 1_000_000):
        if rng.random() < 0.05:
            line = ""
        else:
            sentences = []
            for _ in range(rng.randint(1, 4)):
                words = rng.choices(WORDS, k=rng.randint(4, 20))
                sentences.append(" ".join(words).capitalize() + rng.choice(".!?"))
            line = " ".join(sentences)
        lines.append(line)
        size += len(line) + 1
    block = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as handle:
        written = 0
        while written < target:
            handle.write(block)
            written += len(block)
    return path


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_child(args: list[str], count_tabs: bool) -> dict:
    """Run a child; count its stdout's TABs (one per tagged word) or read its last line; sample RSS."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss = _rss_mb(proc.pid)
            if rss is not None:
                samples.append((round(time.perf_counter() - started, 1), round(rss, 1)))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tabs, tail = 0, b""
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        if count_tabs:
            tabs += chunk.count(b"\t")
        else:
            tail = (tail + chunk)[-200:]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed: {' '.join(args)}: {err}")
    words = tabs if count_tabs else int(tail.split()[-1])
    # Ten evenly spaced samples are enough to see a slope.
    step = max(1, len(samples) // 10)
    return {"seconds": round(seconds, 1), "words": words, "words_per_second": round(words / seconds),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rss_mb_over_time": samples[::step],
            "rss_samples": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag-mb", type=float, nargs="*", default=[1, 4, 8], help="sizes to tag (MB)")
    parser.add_argument("--reader-mb", type=float, nargs="*", default=[16, 256], help="sizes to read only (MB)")
    parser.add_argument("--model", default="en-upos")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "seqattn-bench-stream",
                        help="where the generated text files go (kept for reruns)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    report = {"tag": [], "reader": []}
    for mb in args.tag_mb:
        path = make_text(args.dir / f"text-{mb:g}MB.txt", mb)
        run = run_child([sys.executable, "-m", "seqattn", "tag", str(path), "-f", "tsv", "-q", "-m", args.model],
                        count_tabs=True)
        report["tag"].append({"megabytes": mb, **run})
        print(f"tag {mb:g} MB: {run['peak_rss_mb']} MB peak, {run['words_per_second']:,} words/s",
              file=sys.stderr, flush=True)
    for mb in args.reader_mb:
        path = make_text(args.dir / f"text-{mb:g}MB.txt", mb)
        run = run_child([sys.executable, "-c", READER, str(path)], count_tabs=False)
        report["reader"].append({"megabytes": mb, **run})
        print(f"read {mb:g} MB: {run['peak_rss_mb']} MB peak, {run['words_per_second']:,} words/s",
              file=sys.stderr, flush=True)
    verdicts = {}
    for kind, runs in report.items():
        if not runs:
            continue
        # Does memory still grow late in the largest run?  Peak of the second half of the RSS
        # samples against the peak of the first half (start-up and warm-up live in the first).
        series = [rss for _, rss in runs[-1]["rss_samples"]]
        half = len(series) // 2
        first, second = max(series[:half] or [0]), max(series[half:] or [0])
        verdicts[kind] = {"sizes_mb": [r["megabytes"] for r in runs], "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
                          "largest_run_rss_first_half_mb": first, "largest_run_rss_second_half_mb": second,
                          "bounded": second <= 1.05 * first + 10}
    for runs in report.values():
        for run in runs:
            del run["rss_samples"]
    report["bounded_memory"] = verdicts
    print(json.dumps(report, indent=1))
    return 0 if all(v["bounded"] for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
