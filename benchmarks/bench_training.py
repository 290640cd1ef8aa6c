"""Training throughput of the tagger through the one engine: 1 process, and 2 processes under torchrun.

The en-upos architecture trains for 2 epochs on the first 2,000 sentences of UD English EWT train
(dev: 100 sentences of EWT dev, so that scoring stays small); the second epoch's training time
(``train_seconds`` of the run record, scoring excluded, the first epoch's warm-up of the
allocator and threads left out) gives sentences per second.  Each process runs one thread
(OMP_NUM_THREADS=1): "1 process" is one core, "2 processes" is DistributedDataParallel over gloo
on two cores with the same global batch.  Median of 3 runs each, in fresh processes.
Prints one JSON object (benchmarks/run_all.py collects it).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EWT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud_english_ewt"
SENTENCES, DEV_SENTENCES, RUNS = 2000, 100, 3


def _slice(source: Path, target: Path, n: int) -> Path:
    blocks = [b for b in source.read_text(encoding="utf-8").split("\n\n") if b.strip()][:n]
    target.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return target


def _run(root: Path, name: str, processes: int) -> float:
    args = ["-m", "seqattn", "train", "tagger", "--train", str(root / "train.conllu"), "--dev",
            str(root / "dev.conllu"), "--out", str(root / name), "--epochs", "2", "--quiet", "--force"]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    subprocess.run([sys.executable, *args], check=True, env={**env, "OMP_NUM_THREADS": "1"},
                   stdout=subprocess.DEVNULL)
    history = json.loads((root / name / "config.json").read_text())["training"]["history"]
    return SENTENCES / history[1]["train_seconds"]


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _slice(EWT / "en_ewt-ud-train.conllu", root / "train.conllu", SENTENCES)
        _slice(EWT / "en_ewt-ud-dev.conllu", root / "dev.conllu", DEV_SENTENCES)
        rates = {1: [], 2: []}
        for run in range(RUNS):  # interleaved, so that a busy stretch of the machine hits both
            for processes in (1, 2):
                rates[processes].append(_run(root, f"m{processes}-{run}", processes))
    one, two = (statistics.median(rates[p]) for p in (1, 2))
    return {"sentences": SENTENCES, "threads_per_process": 1, "runs": RUNS,
            "sentences_per_second_1_process": round(one, 1), "sentences_per_second_2_processes": round(two, 1),
            "speedup_2_processes": round(two / one, 2),
            "all": {str(p): [round(r, 1) for r in rates[p]] for p in rates}}


if __name__ == "__main__":
    print(json.dumps(main()))
