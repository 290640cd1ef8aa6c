"""Out-of-domain check of a sentiment classifier: Amazon product-review and tweet snippets (Hutto & Gilbert 2014).

The VADER paper's human-rated sentences ship in the vaderSentiment source distribution on PyPI
(MIT license, ``additional_resources/hutto_ICWSM_2014.tar.gz``): each sentence has the mean of
ten ratings on -4..+4.  Sentences rated >= 1 are taken as positive, <= -1 as negative, the rest
(neutral, mixed) are left out.  The movie-review snippets are skipped: they come from Rotten
Tomatoes, the source of SST itself.  The data is fetched with ``pip download`` (this script needs
the network once; it caches under ~/.cache/seqattn) and is never committed.

Usage: python scripts/eval_review_snippets.py [--model en-sentiment]  -> JSON on stdout
"""

import argparse
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "seqattn" / "vader-snippets"
SETS = {"amazon": "amazonReviewSnippets_GroundTruth.txt", "tweets": "tweets_GroundTruth.txt"}


def fetch() -> Path:
    """The extracted hutto_ICWSM_2014 folder (downloaded once)."""
    folder = CACHE / "hutto_ICWSM_2014"
    if folder.is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "vaderSentiment==3.3.2", "--no-deps", "--no-binary",
                    ":all:", "-d", str(CACHE), "-q"], check=True)
    with tarfile.open(CACHE / "vaderSentiment-3.3.2.tar.gz") as sdist:
        inner = sdist.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner)) as resources:
        resources.extractall(CACHE, filter="data")
    return folder


def polar(path: Path) -> list[tuple[str, str]]:
    """(text, "negative" | "positive") of the sentences rated <= -1 or >= 1."""
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        score, text = float(parts[1]), " ".join(parts[2:]).strip()
        if abs(score) >= 1 and text:
            rows.append((text, "positive" if score > 0 else "negative"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="en-sentiment")
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from seqattn.readers.labelled import LabelledText
    from seqattn.tasks.classification import evaluate_classifier, load_classifier

    folder, classifier, vader = fetch(), load_classifier(args.model), SentimentIntensityAnalyzer()
    result = {"model": args.model, "source": "vaderSentiment 3.3.2 sdist, hutto_ICWSM_2014 (MIT)"}
    for name, file in SETS.items():
        rows = polar(folder / file)
        report = evaluate_classifier(classifier, [LabelledText(t, l, i + 1) for i, (t, l) in enumerate(rows)], name)
        vader_correct = sum((vader.polarity_scores(t)["compound"] >= 0) == (l == "positive") for t, l in rows)
        result[name] = {"sentences": len(rows), "accuracy": round(report["accuracy"], 4),
                        "macro_f1": round(report["macro_f1"], 4), "vader_accuracy": round(vader_correct / len(rows), 4)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
