"""Hold whole speakers of a frames .npz (+ its transcript TSV) out as a dev set, as ESPnet's an4 train_dev.

Usage (the AN4 numbers of docs/seq2seq.md):
  python scripts/split_frames.py ../shared/data/an4_mfcc/train_mfcc.npz ../shared/data/an4_mfcc/train.tsv \
      --every 9 --out /tmp/an4
writes OUT/train.npz, OUT/train.tsv, OUT/dev.npz, OUT/dev.tsv; every 9th speaker in sorted order
(8 of AN4's 74 training speakers, about 100 utterances) goes to dev.
"""

import argparse
from pathlib import Path

import numpy as np


def _write(out: Path, name: str, data: dict, header: str, rows: list[str], keep: np.ndarray) -> None:
    offsets = data["offsets"]
    parts = [data["feats"][offsets[i]:offsets[i + 1]] for i in np.flatnonzero(keep)]
    lengths = np.array([len(p) for p in parts], dtype=np.int32)
    np.savez(out / f"{name}.npz", feats=np.concatenate(parts), lengths=lengths,
             offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
             utt_ids=data["utt_ids"][keep], speakers=data["speakers"][keep])
    (out / f"{name}.tsv").write_text(header + "".join(r for r, k in zip(rows, keep) if k), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", type=Path)
    parser.add_argument("tsv", type=Path)
    parser.add_argument("--every", type=int, default=9, help="every k-th speaker (sorted) goes to dev")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with np.load(args.npz, allow_pickle=False) as loaded:
        data = {k: loaded[k] for k in loaded.files}
    lines = args.tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    if [r.split("\t", 1)[0] for r in rows] != [str(u) for u in data["utt_ids"]]:
        raise SystemExit(f"{args.tsv}: rows are not in the order of {args.npz}")
    speakers = sorted(set(data["speakers"].tolist()))
    dev_speakers = set(speakers[args.every - 1::args.every])
    dev = np.array([s in dev_speakers for s in data["speakers"].tolist()])
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out, "train", data, header, rows, ~dev)
    _write(args.out, "dev", data, header, rows, dev)
    print(f"dev speakers {sorted(dev_speakers)}: {dev.sum()} utterances; train {(~dev).sum()}")


if __name__ == "__main__":
    main()
