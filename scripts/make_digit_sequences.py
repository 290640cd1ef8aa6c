"""Write recordings of several digits spoken in a row, made from one-digit clips, and their manifest.

Each sequence joins 3 to 7 clips of a manifest (the FSDD test split for the model card) with a
pause of 0 to 0.5 s between clips and 0 to 0.3 s before and after, filled with noise at the
clips' own background level (seqattn.tasks.speech_training.make_example, no augmentation).
Every clip is used ``--passes`` times, in a new random order each pass, so the sequences cover
the split evenly.  The result is a manifest for ``seqattn evaluate speech`` whose labels are
digit strings ("4 7 1").

Usage: python scripts/make_digit_sequences.py MANIFEST OUT [--passes 5] [--seed 0]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqattn.readers.frames import FrameSpec  # noqa: E402
from seqattn.tasks.speech import read_manifest  # noqa: E402
from seqattn.tasks.speech_training import load_clips, make_example  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-rate", type=int, default=8000)
    args = parser.parse_args()
    rows = read_manifest(args.manifest)
    labels = sorted({r.labels[0] for r in rows})
    clips = load_clips(rows, labels, FrameSpec(args.sample_rate))
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["path\tlabel"]
    for p in range(args.passes):
        order = rng.permutation(len(clips)).tolist()
        while order:
            k = int(rng.integers(3, 8))
            group, order = order[:k], order[k:]
            if len(group) < 3:  # the remainder of a pass joins a full-length sequence of its own
                group += rng.choice(len(clips), 3 - len(group), replace=False).tolist()
            example = make_example([clips[i] for i in group], rng, augment=False, max_pause_s=0.5,
                                   sample_rate_hz=args.sample_rate)
            name = f"seq{len(lines):04d}.wav"
            sf.write(args.out / name, example.samples, args.sample_rate, subtype="PCM_16")
            lines.append(f"{name}\t{' '.join(labels[t - 1] for t in example.targets)}")
    (args.out / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines) - 1} sequences to {args.out}/manifest.tsv")


if __name__ == "__main__":
    main()
