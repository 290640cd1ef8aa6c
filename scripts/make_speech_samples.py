"""Spoken digits synthesised with espeak-ng: the sample clips in data/speech/, and synthetic training data.

    python scripts/make_speech_samples.py samples [--out data/speech]
        The clips the README and docs/speech.md show (8 kHz mono 16-bit WAV) and their manifest.
        Their voices (espeak-ng variants) are kept out of the training set below, so the shipped
        model hears them for the first time.
    python scripts/make_speech_samples.py train OUT
        One clip per digit for each of 96 voices (6 English accents x 16 variants) at random
        speeds and pitches: 960 clips and OUT/manifest.tsv, for `seqattn train speech --train`.

Needs espeak-ng (apt-get install espeak-ng); it is not a runtime dependency of seqattn.
espeak-ng writes 22,050 Hz; clips are resampled to 8 kHz (soxr), peak-normalised to 0.5.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SAMPLE_RATE_HZ = 8000
TRAIN_ACCENTS = ["en-us", "en-gb", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-us-nyc"]
TRAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "klatt", "klatt3", "Alex", "Jacky",
                  "Mike", "linda", "steph"]
# The samples' voices: variants that never occur in the synthetic training data.
SAMPLES = [  # file, digits, voice, words per minute, pitch (0-99)
    ("seven.wav", "7", "en-us+f4", 150, 50),
    ("three.wav", "3", "en-gb+m7", 170, 40),
    ("zero.wav", "0", "en-gb-x-rp+f5", 140, 60),
    ("nine.wav", "9", "en-us+Andy", 160, 45),
    ("pi.wav", "3 1 4 1 5 9", "en-gb+f4", 140, 50),
    ("phone.wav", "8 6 7 5 3 0 9", "en-us+m7", 160, 45),
    ("pin.wav", "2 0 4 8", "en-gb-x-rp+Andy", 120, 55),
]


def synthesise(text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    """espeak-ng speech of ``text`` as 8 kHz float32 samples, peak 0.5."""
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-g", "6", "-w", str(wav), text],
                       check=True, capture_output=True)
        samples, rate = sf.read(wav, dtype="float32")
    samples = soxr.resample(samples, rate, SAMPLE_RATE_HZ, quality="HQ")
    return (0.5 * samples / max(1e-6, float(np.abs(samples).max()))).astype(np.float32)


def words(digits: str) -> str:
    return ", ".join(WORDS[int(d)] for d in digits.split())


def make_samples(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = ["path\tlabel\tvoice"]
    for name, digits, voice, wpm, pitch in SAMPLES:
        sf.write(out / name, synthesise(words(digits), voice, wpm, pitch), SAMPLE_RATE_HZ, subtype="PCM_16")
        lines.append(f"{name}\t{digits}\t{voice} {wpm} wpm pitch {pitch}")
    (out / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(SAMPLES)} clips and manifest.tsv to {out}")


def make_training_set(out: Path, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = ["path\tlabel\tspeaker"]
    for accent in TRAIN_ACCENTS:
        for variant in TRAIN_VARIANTS:
            voice = f"{accent}+{variant}"
            for digit, word in enumerate(WORDS):
                wpm, pitch = int(rng.integers(110, 230)), int(rng.integers(20, 80))
                name = f"{digit}_{accent}-{variant}_{wpm}_{pitch}.wav"
                sf.write(out / name, synthesise(word, voice, wpm, pitch), SAMPLE_RATE_HZ, subtype="PCM_16")
                lines.append(f"{name}\t{digit}\tespeak-{voice}")
    (out / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines) - 1} clips and manifest.tsv to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    samples = sub.add_parser("samples")
    samples.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "speech")
    train = sub.add_parser("train")
    train.add_argument("out", type=Path)
    train.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "samples":
        make_samples(args.out)
    else:
        make_training_set(args.out, args.seed)


if __name__ == "__main__":
    sys.exit(main())
