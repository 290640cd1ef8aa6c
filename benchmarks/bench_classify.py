"""`seqattn classify` throughput beside the VADER lexicon on the same file (SST-2 test sentences).

Both are timed as whole processes (start-up, model or lexicon loading included), median of 3
runs, on the 1,821 SST-2 test sentences written one per line: ``seqattn classify FILE --format
tsv`` and a Python process running vaderSentiment's ``SentimentIntensityAnalyzer.polarity_scores``
on every line (compound >= 0 -> positive, VADER's own convention).  Accuracy on the same
sentences is printed beside each speed.  vaderSentiment is the ``bench`` extra (``make bench``
installs it).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst" / "sst2" / "test.tsv"
MODEL = os.environ.get("SEQATTN_BENCH_CLASSIFIER", "en-sentiment")

VADER = """
import sys
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
analyzer = SentimentIntensityAnalyzer()
out = sys.stdout
for line in open(sys.argv[1], encoding="utf-8"):
    out.write("1\\n" if analyzer.polarity_scores(line.rstrip("\\n"))["compound"] >= 0 else "0\\n")
"""


def timed(command: list[str]) -> tuple[float, str]:
    """Median wall-clock seconds of 3 runs, and the last run's stdout."""
    seconds, out = [], ""
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), out


def main() -> dict:
    rows = [line.split("\t") for line in TEST.read_text(encoding="utf-8").splitlines()[1:]]
    texts, gold = [r[0] for r in rows], [r[1] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sst2-test.txt"
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        ours, out = timed([sys.executable, "-m", "seqattn", "classify", str(path), "--model", MODEL, "--format", "tsv"])
        names = {"negative": "0", "positive": "1"}
        predicted = [names.get(line.split("\t")[0], line.split("\t")[0]) for line in out.splitlines()]
        vader, vader_out = timed([sys.executable, "-c", VADER, str(path)])
    n = len(texts)
    return {"sentences": n, "model": MODEL,
            "seqattn_sentences_per_second": round(n / ours, 1), "seqattn_seconds": round(ours, 2),
            "seqattn_accuracy": round(sum(p == g for p, g in zip(predicted, gold)) / n, 4),
            "vader_sentences_per_second": round(n / vader, 1), "vader_seconds": round(vader, 2),
            "vader_accuracy": round(sum(p == g for p, g in zip(vader_out.split(), gold)) / n, 4),
            "threads": os.environ.get("OMP_NUM_THREADS", "default")}


if __name__ == "__main__":
    print(json.dumps(main()))
