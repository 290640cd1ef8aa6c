"""`seqattn speech`, `seqattn frames`, `seqattn evaluate speech`, `seqattn train speech`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqattn.models.device import DEVICE_HELP

SPEECH_FORMATS_HELP = ("pretty (terminal default) | tsv (pipe default: file, class, confidence, transcript, "
                       "duration per line) | jsonl (one object per clip, with segments)")
FRAMES_FORMATS_HELP = "pretty (terminal default) | npy (pipe default: float32 (N, bins) bytes) | tsv | jsonl"


def frames_cli(
    clip: Optional[str] = typer.Argument(None, help="Audio file (WAV, FLAC, OGG or MP3); '-' or nothing reads "
                                         "stdin.", show_default=False),
    window: float = typer.Option(25.0, "--window", help="Frame length in ms."),
    hop: float = typer.Option(10.0, "--hop", help="Frame shift in ms."),
    features: str = typer.Option("logmel", "--features", help="logmel | mfcc"),
    bins: int = typer.Option(40, "--bins", help="Values per frame: mel bands (logmel) or coefficients (mfcc)."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Resample to this rate (Hz) first; "
                                              "default: the file's own.", show_default=False),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FRAMES_FORMATS_HELP, show_default=False),
) -> None:
    """Write the frame matrix of a clip: a WINDOW ms frame every HOP ms, log-mel or MFCC.

    Frame i covers samples [i*H, i*H + W) and only whole frames count, so a clip of T samples
    gives 1 + (T - W) // H frames (librosa's center=False); see docs/speech.md.
    """
    import sys
    from contextlib import ExitStack

    import numpy as np

    from seqattn.cli.common import (STDIN_NAME, choose_format, console, stdin_as_file, stdout_is_terminal,
                                    wants_stdin, write)
    from seqattn.errors import InputError, SeqattnError
    from seqattn.readers.audio import audio_info, iter_audio, resampled_length
    from seqattn.readers.frames import FeatureExtractor, FrameSpec
    from seqattn.render import speech as render

    fmt = choose_format(format, ("pretty", "npy", "tsv", "jsonl"), pipe_default="npy")
    if fmt == "npy" and stdout_is_terminal():
        raise InputError("npy is binary: redirect stdout (> frames.npy, or | python ...) or choose --format "
                         "pretty, tsv or jsonl")
    with ExitStack() as stack:
        path = stack.enter_context(stdin_as_file()) if wants_stdin(clip) else Path(clip)
        name = STDIN_NAME if clip in (None, "-") else clip
        info = audio_info(path)
        spec = FrameSpec(info.sample_rate_hz if sample_rate is None else sample_rate, window, hop, features, bins)
        n_frames = spec.frame_count(resampled_length(info.samples, info.sample_rate_hz, spec.sample_rate_hz))
        if n_frames == 0:
            raise InputError(f"{name}: {info.duration_s:.3f} s is shorter than one {window:g} ms frame")
        chunks = FeatureExtractor(spec).stream(iter_audio(path, spec.sample_rate_hz))
        if fmt == "pretty":
            from rich.text import Text

            from seqattn.render.safe import printable

            matrix = np.concatenate(list(chunks))
            out = console()
            head = Text(printable(name), style="bold")  # a file name is shown, never read as markup
            head.append(f"  {info.duration_s:.2f} s, {info.sample_rate_hz} Hz"
                        + (f" -> {spec.sample_rate_hz} Hz" if spec.sample_rate_hz != info.sample_rate_hz else "")
                        + f", {len(matrix):,} frames x {bins} {features} ({window:g} ms every {hop:g} ms)")
            out.print(head, soft_wrap=True)
            out.print(render.spectrogram(matrix))
            return
        done = 0
        if fmt == "npy":
            stream = sys.stdout.buffer
            np.lib.format.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (n_frames, bins)})
        for block in chunks:
            if fmt == "npy":
                stream.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
            elif fmt == "tsv":
                names = ["frame", "time_s"] + [f"{'mel' if features == 'logmel' else 'mfcc'}_{b}" for b in range(bins)]
                write(render.frames_tsv(block, done, spec.centre_s, names if done == 0 else None))
            else:
                write(render.frames_jsonl(block, done, spec.centre_s))
            done += len(block)
        if fmt == "npy":
            stream.flush()
        if done != n_frames:  # the header promised n_frames rows; never expected, but say so loudly
            raise SeqattnError(f"{name}: decoded {done} frames, the header predicted {n_frames}")


def speech_cli(
    clips: Optional[List[str]] = typer.Argument(None, help="Audio files (WAV, FLAC, OGG or MP3), any length; "
                                                "'-' or nothing reads one clip from stdin.", show_default=False),
    window: Optional[float] = typer.Option(None, "--window", help="Frame length in ms; must be the model's "
                                           "(digits: 25).", show_default=False),
    hop: Optional[float] = typer.Option(None, "--hop", help="Frame shift in ms; must be the model's (digits: 10).",
                                        show_default=False),
    model: str = typer.Option("digits", "--model", "-m", help="Shipped model name or model directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=SPEECH_FORMATS_HELP, show_default=False),
    attention: bool = typer.Option(False, "--attention", help="Draw the banded attention over time (pretty) "
                                                              "or add it to each object (jsonl)."),
    layer: int = typer.Option(-1, "--layer", help="Layer whose attention --attention shows (0-based; -1 = last)."),
    min_segment: float = typer.Option(0.15, "--min-segment", help="Frame-tag runs shorter than this (seconds) "
                                                                   "join a neighbour; 0 shows the raw runs."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar on stderr."),
) -> None:
    """Recognise spoken digits: the class of each clip, its digit string and its segments.

    Frames of WINDOW ms every HOP ms pass a truncated self-attention encoder (each frame sees
    the frames within the model's window); long files are processed in chunks, in bounded memory.
    """
    import math
    from contextlib import ExitStack

    from seqattn.cli.common import STDIN_NAME, choose_format, stdin_as_file, wants_stdin
    from seqattn.errors import InputError
    from seqattn.models.device import check_device
    from seqattn.readers.audio import audio_info

    fmt = choose_format(format, ("pretty", "tsv", "jsonl"))
    check_device(device)
    if attention and fmt == "tsv":
        raise InputError("--attention draws with --format pretty or adds weights with jsonl, not tsv")
    if not (math.isfinite(min_segment) and min_segment >= 0):
        raise InputError(f"--min-segment must be >= 0 seconds, got {min_segment}")
    names = clips or [None]
    if sum(wants_stdin(name) for name in names) > 1:
        raise InputError("stdin ('-') can be read once")
    with ExitStack() as stack:
        paths = [stack.enter_context(stdin_as_file()) if wants_stdin(name) else Path(name) for name in names]
        names = [STDIN_NAME if wants_stdin(name) else name for name in names]
        for path in paths:  # every file is checked before the model loads
            audio_info(path)
        _recognise_all(paths, names, window, hop, model, fmt, attention, layer, min_segment, quiet, device)


def _recognise_all(paths: list[Path], names: list[str], window, hop, model: str, fmt: str, attention: bool,
                   layer: int, min_segment: float, quiet: bool, device: str = "cpu") -> None:
    """Recognise each clip and write its result as soon as it is ready (one record per clip)."""
    from rich.markup import escape

    from seqattn.cli.common import console, progress, write
    from seqattn.errors import InputError
    from seqattn.render import speech as render
    from seqattn.render.safe import printable
    from seqattn.tasks.speech import load_speech_model, recognise

    loaded = load_speech_model(model, device)
    loaded.check_framing(window, hop)
    n_layers = loaded.cfg.encoder.n_layers
    if not -n_layers <= layer < n_layers:
        raise InputError(f"--layer {layer} is outside the model's {n_layers} layers (0..{n_layers - 1} or -1)")
    out = console() if fmt == "pretty" else None
    for k, (clip, name) in enumerate(zip(paths, names)):
        with progress(escape(printable(Path(name).name)), quiet) as bar:  # the bar reads rich markup
            result = recognise(loaded, clip, attention_layer=layer if attention else None,
                               on_frames=lambda done, total: bar.update(done, total), min_segment_s=min_segment)
        result.file = name
        if fmt == "pretty":
            if k:
                out.print()
            summary, segments = render.pretty(result, loaded.spec.window_ms, loaded.spec.hop_ms, loaded.cfg.silence)
            out.print(summary, soft_wrap=True)
            out.print(segments)
            if result.attention is not None:
                out.print(render.attention(result.attention, result.segments))
        elif fmt == "tsv":
            write(render.tsv(result))
        else:
            write(render.jsonl(result))


def evaluate_speech_cli(
    data: Path = typer.Option(..., "--data", "-d", help="TSV manifest with a header and the columns path and "
                                                        "label (paths relative to the manifest)."),
    model: str = typer.Option("digits", "--model", "-m", help="Shipped model name or model directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar on stderr."),
) -> None:
    """Class accuracy (one-label clips) and label error rate of transcripts (all clips) on a manifest.

    A label is one digit, or several separated by spaces for a clip in which several are spoken.
    """
    import json

    from seqattn.cli.common import choose_format, progress, write
    from seqattn.tasks.speech import evaluate_speech, load_speech_model, read_manifest
    from seqattn.models.device import check_device

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    check_device(device)
    rows = read_manifest(data)
    loaded = load_speech_model(model, device)
    with progress("evaluating", quiet) as bar:
        result = {"data": str(data), "model": model, "device": str(loaded.device),
                  **evaluate_speech(loaded, rows, on_clip=lambda i, n: bar.update(i, n))}
    if fmt == "json":
        write(json.dumps(result) + "\n")
        return
    lines = []
    if result["accuracy"] is not None:
        lines.append(f"class accuracy {100 * result['accuracy']:.2f}% on {result['single_label_clips']:,} "
                     "one-label clips")
    lines.append(f"label error rate {100 * result['label_error_rate']:.2f}% ({result['labels']:,} labels in "
                 f"{result['clips']:,} clips), {result['x_real_time']:,.0f}x real time")
    write("\n".join(lines) + "\n")


def train_speech_cli(
    train: List[Path] = typer.Option(..., "--train", help="Training manifest(s) (path, label TSV; one label per "
                                                          "clip); repeat to combine."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to (usable with --model)."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Manifest for model selection (keep the epoch with the "
                                       "best dev class accuracy); default: keep the last epoch.",
                                       show_default=False),
    seed: int = typer.Option(0, "--seed", help="Random seed (augmentation, sequences, initialisation)."),
    epochs: int = typer.Option(30, "--epochs", help="Passes over the training clips."),
    sequences: int = typer.Option(800, "--sequences", help="Made-up recordings of 2-7 clips in a row per epoch."),
    window: float = typer.Option(25.0, "--window", help="Frame length in ms."),
    hop: float = typer.Option(10.0, "--hop", help="Frame shift in ms."),
    features: str = typer.Option("logmel", "--features", help="logmel | mfcc"),
    bins: int = typer.Option(40, "--bins", help="Values per frame: mel bands (logmel) or coefficients (mfcc)."),
    sample_rate: int = typer.Option(8000, "--sample-rate", help="Sample rate (Hz) the model reads."),
    attention_window: int = typer.Option(8, "--attention-window", help="Attention half-width w in steps: "
                                                                       "step i sees steps j with |i - j| <= w."),
    stride: int = typer.Option(2, "--stride", help="Frames per attention step (a strided convolution pairs "
                                                    "frames before attention)."),
    layers: int = typer.Option(4, "--layers", help="Encoder blocks L."),
    d_model: int = typer.Option(96, "--d-model", help="Size of the frame vectors inside the encoder."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model directory."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its "
                                          "checkpoint directory (OUT.checkpoint, written after every epoch); "
                                          "give the same --train and --dev.", show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or per-epoch lines on stderr."),
) -> None:
    """Train a truncated self-attention speech model (the recipe of the shipped digits model).

    After every epoch the training state is saved to OUT.checkpoint/; after an interruption
    (even kill -9) the same command with --resume OUT.checkpoint continues where it stopped.
    """
    from seqattn.cli.common import progress, say, write
    from seqattn.errors import InputError

    for name, value in (("--epochs", epochs), ("--layers", layers), ("--d-model", d_model), ("--stride", stride)):
        if value < 1:
            raise InputError(f"{name} must be >= 1, got {value}")
    if sequences < 0 or attention_window < 0:
        raise InputError("--sequences and --attention-window must be >= 0")
    if d_model % 4:
        raise InputError(f"--d-model must be a multiple of the 4 attention heads, got {d_model}")
    from seqattn.readers.frames import FrameSpec

    spec = FrameSpec(sample_rate, window, hop, features, bins)  # checks the values before any data is read
    from seqattn.models.speech import SpeechConfig
    from seqattn.tasks.speech import read_manifest
    from seqattn.tasks.speech_training import TrainSettings, train_speech

    rows = [row for manifest in train for row in read_manifest(manifest)]
    dev_rows = read_manifest(dev) if dev else None
    config = SpeechConfig(frames=spec, stride=stride)
    config.encoder.window, config.encoder.n_layers = attention_window, layers
    config.encoder.d_model, config.encoder.d_ff = d_model, 2 * d_model
    with progress("reading", quiet) as bar:
        def on_step(step, total, phase):
            bar.update(step, total, description=phase)

        def on_epoch(r):
            dev_text = f"  dev accuracy {100 * r.dev_accuracy:.2f}%" if r.dev_accuracy is not None else ""
            say(f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}{dev_text}  {r.seconds:.0f} s", quiet)

        saved = train_speech(rows, out, config, TrainSettings(epochs=epochs, sequences=sequences, seed=seed),
                             dev_rows, on_step=on_step, on_epoch=on_epoch, force=force,
                             meta={"data": ", ".join(str(t) for t in train)}, resume=resume)
    dev_text = (f": dev accuracy {100 * saved['metrics']['dev_accuracy']:.2f}%"
                if "dev_accuracy" in saved["metrics"] else "")
    write(f"saved {out}{dev_text} after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the speech commands to the CLI."""
    app.command("speech")(speech_cli)
    app.command("frames")(frames_cli)
    evaluate_app.command("speech")(evaluate_speech_cli)
    train_app.command("speech")(train_speech_cli)
