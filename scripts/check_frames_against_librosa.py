"""Compare `seqattn frames` features with librosa's on real recordings (the numbers in docs/speech.md).

For every clip of a manifest: our log-mel and MFCC frames against
librosa.power_to_db(librosa.feature.melspectrogram(..., center=False), top_db=None) and
librosa.feature.mfcc(S=that), at the clip's own rate, 25 ms / 10 ms, 40 bands, 13 coefficients.
Prints one JSON object: clips, frames, largest absolute differences (dB and MFCC units),
and whether every frame count matched.

Usage: python scripts/check_frames_against_librosa.py MANIFEST
"""

import json
import sys
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqattn.readers.audio import read_audio  # noqa: E402
from seqattn.readers.frames import FrameSpec, frames  # noqa: E402
from seqattn.tasks.speech import read_manifest  # noqa: E402


def main() -> None:
    rows = read_manifest(sys.argv[1])
    worst_logmel = worst_mfcc = 0.0
    n_frames, counts_match = 0, True
    for row in rows:
        samples, info = read_audio(row.path)
        spec = FrameSpec(info.sample_rate_hz)
        ours = frames(samples, spec)
        mel = librosa.feature.melspectrogram(y=samples, sr=info.sample_rate_hz, n_fft=spec.window_samples,
                                             hop_length=spec.hop_samples, center=False, n_mels=40)
        theirs = librosa.power_to_db(mel, top_db=None).T
        counts_match &= ours.shape == theirs.shape == (spec.frame_count(len(samples)), 40)
        worst_logmel = max(worst_logmel, float(np.abs(ours - theirs).max()))
        mfcc = frames(samples, FrameSpec(info.sample_rate_hz, features="mfcc", bins=13))
        worst_mfcc = max(worst_mfcc, float(np.abs(mfcc - librosa.feature.mfcc(S=theirs.T, n_mfcc=13).T).max()))
        n_frames += len(ours)
    print(json.dumps({"clips": len(rows), "frames": n_frames, "frame_counts_match": bool(counts_match),
                      "max_abs_diff_logmel_db": worst_logmel, "max_abs_diff_mfcc": worst_mfcc,
                      "librosa": librosa.__version__}))


if __name__ == "__main__":
    main()
