"""Attention export of long audio (issue 28, part 2): time and peak memory of ``--attention-out``.

A made-up recording of ``--minutes`` (15) minutes, the data/speech clips in turn with 0.4 s of
silence between them, 8 kHz mono, goes through ``seqattn speech`` with the shipped ``digits``
model (4 layers x 4 heads, window 8, stride 2: 45,000 attention steps for 15 minutes) four
times, each a child process whose peak RSS comes from ``os.wait4``:

- no export (the baseline), ``--attention-out clip.npz`` (every step, 49 MB of band weights),
  ``clip.html`` (binned to at most 1,500 time columns) and ``clip.png``;
- then the run without export and the .npz run again at twice the length: what the export adds
  to the peak does not grow with the length (the band and spectrogram go to disk chunk by
  chunk: seqattn/export/spill.py).

The dense N x N weights the band stands for would be 45,000^2 x 16 x 4 bytes = 130 GB.

    python benchmarks/bench_export.py [--minutes 15]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE_HZ = 8000


def long_clip(path: Path, minutes: float) -> Path:
    """The data/speech clips in turn, 0.4 s of silence after each, to ``minutes`` minutes."""
    import soundfile

    clips = [soundfile.read(p, dtype="float32")[0] for p in sorted((ROOT / "data" / "speech").glob("*.wav"))]
    gap = np.zeros(int(0.4 * RATE_HZ), np.float32)
    target = int(minutes * 60 * RATE_HZ)
    with soundfile.SoundFile(path, "w", RATE_HZ, 1, "PCM_16") as out:
        written, k = 0, 0
        while written < target:
            block = np.concatenate([clips[k % len(clips)], gap])[: target - written]
            out.write(block)
            written += len(block)
            k += 1
    return path


def run(args: list[str]) -> dict:
    """One ``seqattn`` child: wall seconds, peak RSS (MB) and exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "seqattn", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"seqattn {' '.join(args)}: exit {code}\n{err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    options = parser.parse_args()
    results: dict = {"minutes": options.minutes, "model": "digits", "runs": {}}
    with tempfile.TemporaryDirectory(prefix="seqattn-bench-export-") as tmp:
        folder = Path(tmp)
        clip = long_clip(folder / "clip.wav", options.minutes)
        results["runs"]["no export"] = run(["speech", str(clip), "--format", "tsv", "--quiet"])
        for suffix in ("npz", "html", "png"):
            out = folder / f"clip.{suffix}"
            entry = run(["speech", str(clip), "--format", "tsv", "--quiet", "--attention-out", str(out)])
            entry["file_mb"] = round(out.stat().st_size / 1e6, 2)
            entry["export_seconds"] = round(entry["seconds"] - results["runs"]["no export"]["seconds"], 2)
            results["runs"][suffix] = entry
            if suffix == "npz":
                with np.load(out, allow_pickle=False) as z:
                    shape = z["r0/m0/weights"].shape
                results["band_shape"] = list(shape)
                results["dense_equivalent_gb"] = round(shape[0] * shape[1] * shape[2] ** 2 * 4 / 1e9, 1)
            if suffix == "html":
                from seqattn.export.html import MAX_TIME_COLUMNS

                results["html_columns"] = MAX_TIME_COLUMNS
                results["html_steps_per_column"] = -(-results["band_shape"][2] // MAX_TIME_COLUMNS)
            out.unlink()
        double = long_clip(folder / "double.wav", 2 * options.minutes)
        results["runs"][f"no export, {2 * options.minutes:g} minutes"] = run(
            ["speech", str(double), "--format", "tsv", "--quiet"])
        entry = run(["speech", str(double), "--format", "tsv", "--quiet", "--attention-out", str(folder / "d.npz")])
        entry["file_mb"] = round((folder / "d.npz").stat().st_size / 1e6, 2)
        results["runs"][f"npz, {2 * options.minutes:g} minutes"] = entry
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
