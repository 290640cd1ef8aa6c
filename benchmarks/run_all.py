"""Run every benchmarks/bench_*.py, print their JSON and write it to docs/benchmarks.json.

Each benchmark script prints one JSON object (or list) on stdout; its name is the file stem.
Benchmarks measure speed and memory; tests never time anything.  A run of some of them replaces
only their entries; each entry records the date and the machine it was measured on.
Usage: python benchmarks/run_all.py [NAME ...]   (default: all)
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE.parent / "docs" / "benchmarks.json"


def machine() -> dict:
    """Where the numbers come from: platform, Python, CPU count and CPU model (from /proc/cpuinfo
    on Linux: the vendor string, family and model; "AMD EPYC" alone does not tell Zen 4 from Zen 5)."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                      if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    except (OSError, KeyError, ValueError):
        info["cpu"] = platform.processor() or "unknown"
    return info


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names or s.stem in names]
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    here = results["machine"] = machine()  # the latest run's; each benchmark's entry keeps its own
    failed = 0
    for script in scripts:
        start = time.time()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            failed += 1
            print(f"{script.stem}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        result = json.loads(proc.stdout)
        results[script.stem.removeprefix("bench_")] = {"result": result, "seconds": round(time.time() - start, 1),
                                                       "date": time.strftime("%Y-%m-%d"), "machine": here}
        print(json.dumps({script.stem.removeprefix("bench_"): result}), flush=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
