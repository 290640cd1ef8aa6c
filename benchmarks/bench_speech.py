"""Long audio: `seqattn speech` on a synthetic 60-minute clip; peak memory and speed.

The clip is the sample digits of data/speech/ (espeak-ng voices, 8 kHz) repeated in random
order with random pauses and a little noise until it lasts 60 minutes (57.6 MB of 16-bit WAV);
a second run reads the same audio at 16 kHz so that resampling is part of the work.  The
digits spoken are known, so the transcript's digit error rate over the hour is reported too.  Each run
is the real command in a child process (`python -m seqattn speech CLIP --format jsonl`),
torch's default threads; peak RSS is the child's ru_maxrss.  The figures include start-up
(importing torch, loading the model), which a 1-second clip measures on its own (median of 3 runs).

Targets (issue 3): peak RSS < 1.5 GB and >= 200x real time on 2 cores (issue 6 wants 500x).
Prints one JSON object.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MINUTES = 60
SAMPLE_RATE_HZ = 8000


def make_clip(path: Path, sample_rate_hz: int, minutes: float, seed: int = 0) -> tuple[float, list[str]]:
    """Write the synthetic clip block by block (never all in memory).

    Returns its duration in seconds and the digits spoken in it (from data/speech/manifest.tsv).
    """
    import soxr

    from seqattn.tasks.speech import read_manifest

    rng = np.random.default_rng(seed)
    rows = read_manifest(ROOT / "data" / "speech" / "manifest.tsv")
    words = [sf.read(row.path, dtype="float32")[0] for row in rows]
    if sample_rate_hz != SAMPLE_RATE_HZ:
        words = [soxr.resample(w, SAMPLE_RATE_HZ, sample_rate_hz) for w in words]
    total = int(minutes * 60 * sample_rate_hz)
    written, digits = 0, []
    with sf.SoundFile(path, "w", sample_rate_hz, 1, "PCM_16") as out:
        while written < total:
            pause = (rng.standard_normal(int(rng.uniform(0.2, 1.5) * sample_rate_hz)) * 0.002).astype(np.float32)
            k = int(rng.integers(len(words)))
            block = np.concatenate([pause, words[k] * rng.uniform(0.3, 1.0)])
            if written + len(block) > total:  # the clip ends in a pause, never inside a word
                out.write(np.zeros(total - written, np.float32))
                break
            out.write(block)
            written += len(block)
            digits += rows[k].labels
    return total / sample_rate_hz, digits


def measure(clip: Path, reference: list[str] | None = None) -> dict:
    """Run the command on ``clip`` in a fresh child; wall seconds and that child's peak RSS (wait4)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "seqattn", "speech", str(clip), "--format", "jsonl", "-q"],
                                 stdout=stdout, stderr=stderr, env=env, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"seqattn speech failed: {stderr.read()}")
        result = json.loads(stdout.read())
    found = {"wall_s": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
             "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "frames": result["frames"],
             "digits_out": len(result["transcript"].split()), "segments": len(result["segments"])}
    if reference is not None:
        from seqattn.tasks.scoring import edit_distance

        found["digits_spoken"] = len(reference)
        found["digit_error_rate"] = round(edit_distance(result["transcript"].split(), reference) / len(reference), 4)
    return found


def main() -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        short = Path(tmp) / "one_second.wav"
        make_clip(short, SAMPLE_RATE_HZ, 1 / 60)
        startups = sorted((measure(short) for _ in range(3)), key=lambda r: r["wall_s"])
        startup = startups[1]  # the median of three: one cold run can take a second more
        runs = {}
        for rate in (SAMPLE_RATE_HZ, 16000):
            clip = Path(tmp) / f"long_{rate}.wav"
            audio_s, digits = make_clip(clip, rate, MINUTES)
            run = measure(clip, digits)
            clip.unlink()
            run["x_real_time"] = round(audio_s / run["wall_s"], 1)
            run["x_real_time_without_startup"] = round(audio_s / max(1e-9, run["wall_s"] - startup["wall_s"]), 1)
            runs[f"{rate}_hz"] = run
    head = runs[f"{SAMPLE_RATE_HZ}_hz"]
    print(json.dumps({
        "audio_minutes": MINUTES, "model": "digits",
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs.values()),
        "x_real_time": head["x_real_time"], "x_real_time_without_startup": head["x_real_time_without_startup"],
        "digit_error_rate": head["digit_error_rate"],
        "startup_s": startup["wall_s"], "runs": runs,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "targets": {"peak_rss_mb": "< 1536", "x_real_time": ">= 200 (issue 6: 500)"},
    }))


if __name__ == "__main__":
    main()
