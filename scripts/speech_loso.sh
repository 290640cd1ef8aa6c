#!/usr/bin/env bash
# Leave-one-speaker-out on FSDD: for each of the 6 speakers, train a digits model without that
# speaker (its 500 recordings held out; the other 2500 and the espeak-ng voices for training)
# and score it on the held-out speaker.  One JSON per speaker in OUT, a summary in OUT/summary.json.
#
# The recipe is the shipped model's with fewer epochs and sequences (15 and 300 instead of 40
# and 800) so that six runs fit in a few CPU hours; resumable (speakers with a JSON are skipped).
#
# Usage: scripts/speech_loso.sh [MANIFESTS=/tmp/fsdd-manifests] [ESPEAK=/tmp/espeak-digits] [OUT=/tmp/speech-loso]
#   (MANIFESTS from scripts/fsdd_manifests.py, ESPEAK from scripts/make_speech_samples.py train)
set -euo pipefail
cd "$(dirname "$0")/.."
MANIFESTS=${1:-/tmp/fsdd-manifests}
ESPEAK=${2:-/tmp/espeak-digits}
OUT=${3:-/tmp/speech-loso}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
for speaker in george jackson lucas nicolas theo yweweler; do
    [ -s "$OUT/$speaker.json" ] && continue
    $PYTHON -m seqattn train speech --train "$MANIFESTS/loso/$speaker/train.tsv" --train "$ESPEAK/manifest.tsv" \
        --out "$OUT/$speaker-model" --epochs 15 --sequences 300 --seed 0 --force -q > "$OUT/$speaker-train.txt"
    $PYTHON -m seqattn evaluate speech --data "$MANIFESTS/loso/$speaker/test.tsv" --model "$OUT/$speaker-model" \
        --format json -q > "$OUT/$speaker.json.tmp"
    mv "$OUT/$speaker.json.tmp" "$OUT/$speaker.json"
done
$PYTHON - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "summary"}
summary = {s: {"accuracy": r["accuracy"], "clips": r["clips"]} for s, r in rows.items()}
summary["mean_accuracy"] = round(sum(r["accuracy"] for r in rows.values()) / len(rows), 5)
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps(summary))
PY
