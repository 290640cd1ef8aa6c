"""Write TSV manifests (path, label, speaker) for the Free Spoken Digit Dataset.

Official split (FSDD README, "Usage"): recordings numbered 0-4 of every speaker and digit are
the test set (300), 5-49 the training set (2700).  Also one pair of manifests per speaker for
leave-one-speaker-out: train on the other five speakers (all 2500 of their recordings), test on
all 500 recordings of the held-out speaker.

Usage: python scripts/fsdd_manifests.py [--fsdd ../shared/data/fsdd] [--out /tmp/fsdd-manifests]
Writes OUT/train.tsv, OUT/test.tsv and OUT/loso/<speaker>/{train,test}.tsv; paths are absolute.
"""

import argparse
import csv
from pathlib import Path


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("path\tlabel\tspeaker\n")
        for r in rows:
            out.write(f"{r['path']}\t{r['digit']}\t{r['speaker']}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/fsdd")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fsdd-manifests"))
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.fsdd / "metadata.csv", encoding="utf-8")))
    for r in rows:
        r["path"] = str((args.fsdd / r["file"]).resolve())
        assert r["split"] == ("test" if int(r["index"]) <= 4 else "train"), r
    write(args.out / "train.tsv", [r for r in rows if r["split"] == "train"])
    write(args.out / "test.tsv", [r for r in rows if r["split"] == "test"])
    for speaker in sorted({r["speaker"] for r in rows}):
        write(args.out / "loso" / speaker / "train.tsv", [r for r in rows if r["speaker"] != speaker])
        write(args.out / "loso" / speaker / "test.tsv", [r for r in rows if r["speaker"] == speaker])
    print(f"wrote {args.out}/train.tsv, test.tsv and loso/<speaker>/ for {len(rows)} recordings")


if __name__ == "__main__":
    main()
