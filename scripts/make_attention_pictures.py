"""Make the pictures of docs/attention.md (and the README's) with seqattn itself, from data/ inputs.

Each picture is a ``--attention-out FILE.png`` of a command in docs/attention.md, run from the
repository root with the shipped models; the last one (``attention-page.png``) is a screenshot
of an exported HTML page taken by headless chromium, where /usr/bin/chromium exists.

    python scripts/make_attention_pictures.py          # writes docs/images/attention-*.png
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
CORA = ROOT.parent / "shared" / "data" / "planetoid" / "cora"

PICTURES = {  # file in docs/images -> (seqattn arguments, stdin)
    "attention-tag-layer2.png": (["tag", "data/sample.txt", "--layer", "2", "--head", "mean"], None),
    "attention-tag-grid.png": (["tag", "data/sample.txt", "--layer", "all", "--head", "all"], None),
    "attention-speech.png": (["speech", "data/speech/pi.wav", "--format", "tsv", "--layer", "all"], None),
    "attention-g2p-cross.png": (["seq2seq", "-", "--format", "tsv", "--layer", "all", "--head", "mean"],
                                b"ATTENTION\n"),
    "attention-graph.png": (["graph", str(CORA), "--attention", "0", "--layer", "all", "--head", "all"], None),
}


def seqattn(args: list[str], out: Path, stdin: bytes | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "seqattn", *args, "--attention-out", str(out)], cwd=ROOT, env=env,
                   input=stdin, stdout=subprocess.DEVNULL, check=True)


def screenshot(page: Path, out: Path, fragment: str = "") -> bool:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        print(f"{out.name}: skipped, no {chromium}", file=sys.stderr)
        return False
    with tempfile.TemporaryDirectory(prefix="seqattn-chromium-") as profile:
        subprocess.run([str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1100,640",
                        f"--screenshot={out}", page.as_uri() + fragment], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
    return True


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, (args, stdin) in PICTURES.items():
        if "graph" in args and not CORA.exists():
            print(f"{name}: skipped, {CORA} is absent", file=sys.stderr)
            continue
        seqattn(args, IMAGES / name, stdin)
        print(f"wrote docs/images/{name}")
    with tempfile.TemporaryDirectory(prefix="seqattn-pictures-") as tmp:
        page = Path(tmp) / "sample.html"
        seqattn(["tag", "data/sample.txt", "--head", "all"], page)
        shot = Path(tmp) / "shot.png"
        if screenshot(page, shot, "#view=model"):
            shutil.copy(shot, IMAGES / "attention-page.png")
            print("wrote docs/images/attention-page.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
