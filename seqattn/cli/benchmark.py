"""`seqattn benchmark attention`: kernel time, memory and GEMM-peak share, measured in one run."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqattn.models.device import DEVICE_HELP

MAX_LENGTH = 1 << 24  # N: 16,777,216 positions (the grid's largest is 65,536)
MAX_WINDOW = 1 << 16  # w
MAX_PROCESSES = 50
MAX_REPEATS = 1000

benchmark_app = typer.Typer(help="Measure speed and memory (JSON with --format json).", no_args_is_help=True)


@benchmark_app.command("attention")
def attention_cli(
    length: List[int] = typer.Option([1024, 4096, 16384, 65536], "--length", "-n", help="Sequence lengths N."),
    window: List[int] = typer.Option([16, 64, 256], "--window", "-w", help="Attention half-widths w."),
    impl: List[str] = typer.Option(["seqattn", "blocks", "dense", "flex"], "--impl",
                                   help="seqattn (as the commands run it: the C++ kernel where built) | blocks "
                                   "(its torch path, SDPA per query block) | dense (SDPA + band mask) | flex "
                                   "(compiled FlexAttention)."),
    backward: bool = typer.Option(False, "--backward", help="Also time a training step (forward + backward)."),
    processes: int = typer.Option(1, "--processes", "-p", help="Measure each this many times, in separate sweeps "
                                  "over the grid, and report the median process (make bench: 3)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
) -> None:
    """Truncated attention: median ms, peak MB and share of the fp32 GEMM peak per (N, w, impl).

    Each measurement runs in a fresh child process; dense SDPA is skipped (and said so) where
    its N x N scores would not fit, FlexAttention is compiled first (10-20 s per shape) and has
    no CPU backward.
    """
    import json

    from seqattn.bench.attention import IMPLS, benchmark
    from seqattn.cli.common import choose_format, console, write
    from seqattn.errors import InputError

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    for name in impl:
        if name not in IMPLS:
            raise InputError(f"unknown --impl {name!r}; expected one of {', '.join(IMPLS)}")
    for name, values, low, high in (("--length", length, 1, MAX_LENGTH), ("--window", window, 0, MAX_WINDOW),
                                    ("--processes", [processes], 1, MAX_PROCESSES)):
        bad = next((v for v in values if not low <= v <= high), None)
        if bad is not None:
            raise InputError(f"{name} must be {low}..{high:,}, got {bad}")
    out = console() if fmt == "pretty" else None

    def line(r, share: bool) -> str:
        step = "fwd" if r["pass"] == "forward" else "fwd+bwd"
        kernel = f" ({r['kernel']})" if r.get("kernel") and r["impl"] == "seqattn" else ""
        detail = r.get("skipped") or (f"{r['ms']:>9.2f} ms {r['peak_mb']:>7.1f} MB {r['gflops']:>6.1f} GFLOP/s"
                                      + (f" {100 * r['peak_fraction']:>3.0f}% ({100 * r['beside_fraction']:.0f}% of the "
                                         f"GEMMs beside it)" if share else ""))
        return f"N={r['length']:>6} w={r['window']:>3} {r['impl']:>7} {step:>7}: {detail}{kernel}"

    def progress(r):  # shares of the peak are known only at the end (the peak is the run's maximum)
        if out is not None:
            out.print(line(r, share=False), soft_wrap=True, style="dim")

    report = benchmark(length, window, impl, progress, passes=(False, True) if backward else (False,),
                       processes=processes)
    if fmt == "json":
        gemm = {"impl": "gemm", "gflops": report["gemm_gflops"], "lowest_gflops": report["gemm_gflops_lowest"],
                "backends": report["gemm_backends"], "processes": processes}
        write(json.dumps(report["results"] + [gemm]) + "\n")
    else:
        each = f" (each the median of {processes} processes)" if processes > 1 else ""
        libraries = f" ({', '.join(report['gemm_backends'])})" if report["gemm_backends"] else ""
        out.print(f"fp32 GEMM peak in this run{libraries}: {report['gemm_gflops']} GFLOP/s (slowest re-measurement: "
                  f"{report['gemm_gflops_lowest']}; far below the peak means a disturbed run); share of it{each}:")
        for r in report["results"]:
            out.print(line(r, share=True), soft_wrap=True)


@benchmark_app.command("speed")
def speed_cli(
    model: str = typer.Option(..., "--model", "-m", help="Shipped model name or model directory."),
    data: Path = typer.Option(..., "--data", "-d", help="Tagger: CoNLL-U or text; speech: a clip or a "
                              "manifest TSV; graph: what 'seqattn graph' reads."),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes over the data (the median is reported)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Taggers: int8 | fp32 (default: as 'seqattn "
                                            "tag', int8 on the CPU and fp32 on a GPU).", show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
) -> None:
    """End-to-end throughput of a model on real data (words/s, x real time, nodes/s), like spacy benchmark speed."""
    import json

    from seqattn.bench.speed import speed
    from seqattn.cli.common import choose_format, write
    from seqattn.models.device import check_device
    from seqattn.models.precision import check_precision

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    if precision is not None:
        check_precision(precision)
    check_device(device)
    if not 1 <= repeats <= MAX_REPEATS:
        from seqattn.errors import InputError

        raise InputError(f"--repeats must be 1..{MAX_REPEATS}, got {repeats}")
    result = speed(model, data, repeats, precision, device)
    if fmt == "json":
        write(json.dumps(result) + "\n")
    else:
        from seqattn.render.safe import printable

        unit = "x real time" if result["unit"] == "audio_seconds" else f"{result['unit']}/s"
        where = f"{result['threads']} threads" if result["device"] == "cpu" else result["device"]
        write(f"{printable(result['model'])} ({result['task']}, {result['precision']}, {where}) on "
              f"{printable(result['data'])}: {result['per_second']:,.1f} {unit} (median of {len(result['runs'])} runs over "
              f"{result['units']:,} {result['unit'].replace('_', ' ')}); loading took {result['load_seconds']} s\n")


def register(app: typer.Typer) -> None:
    app.add_typer(benchmark_app, name="benchmark")
