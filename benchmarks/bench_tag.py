"""End-to-end tagging speed of the shipped en-upos on the EWT test words (gold tokens).

Three numbers, in words per second: ``seqattn benchmark speed`` at int8 and at fp32 (model
loaded, median of 5 passes; spaCy's ``spacy benchmark speed`` measures the same way), and the
command ``seqattn tag FILE --input-format tokens`` (one sentence per line, start-up and model
loading included), median of 3 runs, at the precision ``seqattn tag`` chooses on this machine
(``command_precision``: int8 where the C++ attention kernel makes it batch-invariant, else fp32;
seqattn.models.precision).  Each speed's precision is the one the run reports, not assumed.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqattn.bench.speed import speed
from seqattn.readers.conllu import read_conllu
from seqattn.tasks.tagging import load_tagger

TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-test.conllu"


def main() -> dict:
    runs = [speed("en-upos", TEST, repeats=5, precision=precision) for precision in ("int8", "fp32")]
    result = {run["precision"]: run for run in runs}  # keyed by the precision each run reports
    default_precision = load_tagger("en-upos", None).precision  # what the command below runs
    sentences = [s.words for s in read_conllu(TEST)]
    words = sum(map(len, sentences))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("".join(" ".join(s) + "\n" for s in sentences))
    command = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqattn", "tag", handle.name, "--input-format", "tokens"],
                       check=True, stdout=subprocess.DEVNULL)
        command.append(time.perf_counter() - start)
    Path(handle.name).unlink()
    return {"words": words, **{f"{p}_words_per_second": run["per_second"] for p, run in result.items()},
            "command_words_per_second": round(words / statistics.median(command)),
            "command_seconds": round(statistics.median(command), 2), "command_precision": default_precision,
            "threads": runs[0]["threads"]}


if __name__ == "__main__":
    print(json.dumps(main()))
