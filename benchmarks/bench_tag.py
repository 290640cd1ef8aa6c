"""End-to-end tagging speed of the shipped en-upos on the EWT test words (gold tokens).

Two numbers: the library (`LoadedTagger.predict`, model already loaded) and the command
(`seqattn tag - --input-format tokens`, one sentence per line, start-up included), both in words
per second; the median of 3 runs.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqattn.readers.conllu import read_conllu
from seqattn.tasks.tagging import load_tagger

TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-test.conllu"


def main() -> dict:
    sentences = [s.words for s in read_conllu(TEST)]
    words = sum(map(len, sentences))
    tagger = load_tagger("en-upos")
    tagger.predict(sentences[:100])
    library = []
    for _ in range(3):
        start = time.perf_counter()
        tagger.predict(sentences)
        library.append(time.perf_counter() - start)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("".join(" ".join(s) + "\n" for s in sentences))
    command = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqattn", "tag", handle.name, "--input-format", "tokens"],
                       check=True, stdout=subprocess.DEVNULL)
        command.append(time.perf_counter() - start)
    return {"words": words, "library_words_per_second": round(words / statistics.median(library)),
            "command_words_per_second": round(words / statistics.median(command)),
            "command_seconds": round(statistics.median(command), 2)}


if __name__ == "__main__":
    print(json.dumps(main()))
