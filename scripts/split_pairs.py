"""Split a source<TAB>target file by source: the sources listed in a file go to one output, the rest to another.

Usage (the en-g2p dev split: g014b2b.train minus dev_words.txt for training, dev_words.txt for selection):
  python scripts/split_pairs.py ../shared/data/cmudict/g2p_split/g014b2b.train \
      ../shared/data/cmudict/g2p_split/dev_words.txt --kept /tmp/g2p/train.tsv --held-out /tmp/g2p/dev.tsv
Every line of a held-out source moves (all its pronunciations).
"""

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("sources", type=Path, help="one source per line")
    parser.add_argument("--kept", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, required=True)
    args = parser.parse_args()
    held = {line.strip() for line in args.sources.read_text(encoding="utf-8").splitlines() if line.strip()}
    kept, out = [], []
    for line in args.pairs.read_text(encoding="utf-8").splitlines():
        if line.strip():
            (out if line.split("\t", 1)[0].strip() in held else kept).append(line + "\n")
    for path, lines in ((args.kept, kept), (args.held_out, out)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8")
    print(f"{len(kept):,} pairs kept in {args.kept}, {len(out):,} held out in {args.held_out}")


if __name__ == "__main__":
    main()
