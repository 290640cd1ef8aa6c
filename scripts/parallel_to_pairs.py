"""Join a parallel corpus (line i of SOURCE translates line i of TARGET) into one source<TAB>target file.

Usage (the Multi30k numbers of docs/seq2seq.md):
  for split in train val test_2016_flickr; do
    python scripts/parallel_to_pairs.py ../shared/data/multi30k/$split.en ../shared/data/multi30k/$split.de \
        /tmp/m30k/$split.tsv
  done
TABs inside a sentence become spaces; the two files must have the same number of lines.
"""

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sources = args.source.read_text(encoding="utf-8").splitlines()
    targets = args.target.read_text(encoding="utf-8").splitlines()
    if len(sources) != len(targets):
        raise SystemExit(f"{args.source} has {len(sources)} lines, {args.target} {len(targets)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"{s.replace(chr(9), ' ').strip()}\t{t.replace(chr(9), ' ').strip()}\n"
                                for s, t in zip(sources, targets)), encoding="utf-8")
    print(f"{len(sources):,} pairs in {args.out}")


if __name__ == "__main__":
    main()
