"""`seqattn speech`, `seqattn frames`, `seqattn evaluate speech`, `seqattn train speech`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from seqattn.cli.attention_options import head_option, kind_option, layer_option
from seqattn.cli.attention_out import attention_out_option
from seqattn.models.device import DEVICE_HELP

SPEECH_FORMATS_HELP = ("pretty (terminal default) | tsv (pipe default: file, class, confidence, transcript, "
                       "duration per line) | jsonl (one object per clip, with segments)")
FRAMES_FORMATS_HELP = "pretty (terminal default) | npy (pipe default: float32 (N, bins) bytes) | tsv | jsonl"


def check_frame_options(window: float | None, hop: float | None) -> None:
    """--window and --hop (ms) up front: finite, > 0 and <= MAX_FRAME_MS, before any file is read.

    Raises:
        InputError: a value outside that range (NaN and inf included).
    """
    from seqattn.errors import InputError
    from seqattn.readers.frames import MAX_FRAME_MS

    for name, value in (("window", window), ("hop", hop)):
        if value is not None and not 0 < value <= MAX_FRAME_MS:  # NaN fails the comparison too
            raise InputError(f"--{name} {value:g}: frame length and shift must be > 0 and <= {MAX_FRAME_MS:g} ms")


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
    check_frame_options(window, hop)
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
    layer: str = layer_option(),
    head: Optional[str] = head_option(),
    attention_kind: str = kind_option(),
    attention_rows: Optional[int] = typer.Option(None, "--attention-rows", help="Time rows of the attention "
                                                 "view (each averages the steps in it); default: the terminal's "
                                                 "height, at least 40.", show_default=False),
    attention_span: Optional[str] = typer.Option(None, "--attention-span", help="START:END seconds (either may "
                                                 "be left out): the attention view covers only this part of the "
                                                 "clip.", show_default=False),
    attention_out: Optional[Path] = attention_out_option(),
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
    check_frame_options(window, hop)
    from seqattn.cli.attention_options import parse_request

    request = parse_request(layer, head, attention_kind)
    from seqattn.cli.attention_out import check_out

    export_to = check_out(attention_out, clips or [], attention_kind)
    span = _parse_span(attention_span)
    if attention_rows is not None and attention_rows < 1:
        raise InputError(f"--attention-rows must be >= 1, got {attention_rows}")
    names = clips or [None]
    if sum(wants_stdin(name) for name in names) > 1:
        raise InputError("stdin ('-') can be read once")
    with ExitStack() as stack:
        paths = [stack.enter_context(stdin_as_file()) if wants_stdin(name) else Path(name) for name in names]
        names = [STDIN_NAME if wants_stdin(name) else name for name in names]
        for path in paths:  # every file is checked before the model loads
            audio_info(path)
        _recognise_all(paths, names, window, hop, model, fmt, attention, request, min_segment, quiet, device,
                       attention_rows, span, export_to)


def _parse_span(text: str | None) -> tuple[float, float | None] | None:
    """--attention-span START:END (seconds; START defaults to 0, END to the clip's end).

    Raises:
        InputError: not two numbers around a colon, a negative start, or END <= START.
    """
    import math

    from seqattn.errors import InputError

    if text is None:
        return None
    start_text, colon, end_text = text.partition(":")
    try:
        if not colon:
            raise ValueError
        start = float(start_text) if start_text.strip() else 0.0
        end = float(end_text) if end_text.strip() else None
    except ValueError:
        raise InputError(f"--attention-span {text!r}: expected START:END in seconds (e.g. 120:130, 60:, :30)") from None
    if not (math.isfinite(start) and start >= 0) or (end is not None and not (math.isfinite(end) and end > start)):
        raise InputError(f"--attention-span {text!r}: expected 0 <= START < END seconds")
    return start, end


def _attention_hint(view, rows_asked: int | None, clip_steps: int) -> str:
    """How to see finer rows, when a row averages several steps."""
    if view.bin_steps == 1:
        return f"one attention step per row ({view.bin_s * 1000:g} ms)"
    steps = min(clip_steps, len(view.rows) * view.bin_steps)  # in the span shown
    return (f"each row averages {view.bin_steps} steps; --attention-rows N shows finer rows (one step per row: "
            f"--attention-rows {steps}), --attention-span START:END seconds a part of the clip")


def _recognise_all(paths: list[Path], names: list[str], window, hop, model: str, fmt: str, attention: bool,
                   request, min_segment: float, quiet: bool, device: str = "cpu", attention_rows: int | None = None,
                   span: tuple[float, float | None] | None = None, export_to: Path | None = None) -> None:
    """Recognise each clip and write its result as soon as it is ready (one record per clip);
    with ``export_to``, every clip's attention goes to that file at the end (seqattn.export)."""
    from rich.markup import escape

    from seqattn.cli.common import console, progress, write
    from seqattn.errors import InputError
    from seqattn.render import speech as render
    from seqattn.render.safe import printable
    from seqattn.tasks.speech import load_speech_model, recognise

    loaded = load_speech_model(model, device)
    loaded.check_framing(window, hop)
    selection = request.resolve(loaded.cfg.encoder.n_layers, loaded.cfg.encoder.n_heads)
    out = console() if fmt == "pretty" else None
    if attention_rows is None:
        from seqattn.cli.common import stdout_is_terminal
        from seqattn.tasks.speech import ATTENTION_ROWS

        attention_rows = max(ATTENTION_ROWS, out.height - 12) if out is not None and stdout_is_terminal() \
            else ATTENTION_ROWS
    from seqattn.export.speech import SpeechExport

    exporter = SpeechExport.for_model(loaded) if export_to else None  # band and spectrogram spilled to disk
    for k, (clip, name) in enumerate(zip(paths, names)):
        with progress(escape(printable(Path(name).name)), quiet) as bar:  # the bar reads rich markup
            result = recognise(loaded, clip, **(exporter.hooks() if exporter else {}),
                               on_frames=lambda done, total: bar.update(done, total),
                               min_segment_s=min_segment, attention_rows=attention_rows,
                               attention_panels=[(p.layer, p.head) for p in selection.panels] if attention else None,
                               attention_kind=selection.kind, attention_span_s=span)
        result.file = name
        if exporter is not None:
            exporter.add(name, result)
        if fmt == "pretty":
            if k:
                out.print()
            summary, segments = render.pretty(result, loaded.spec.window_ms, loaded.spec.hop_ms, loaded.cfg.silence)
            out.print(summary, soft_wrap=True)
            out.print(segments)
            if result.attention is not None:
                clip_steps = loaded.cfg.steps(result.frames)
                out.print(render.attention(result.attention_views, result.segments,
                                           _attention_hint(result.attention, attention_rows, clip_steps)))
        elif fmt == "tsv":
            write(render.tsv(result))
        else:
            write(render.jsonl(result))
    if exporter is not None:
        from seqattn.cli.attention_out import finish

        try:
            finish(export_to, exporter.records, selection, quiet, dropped=exporter.dropped, kept_what="clips")
        finally:
            exporter.close()


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
    train: Optional[List[Path]] = typer.Option(None, "--train", help="Training manifest(s) (path, label TSV; one "
                                               "label per clip); repeat to combine.", show_default=False),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Manifest for model selection (keep the epoch with the "
                                       "best dev class accuracy); default: keep the last epoch.",
                                       show_default=False),
    sequences: Optional[int] = typer.Option(None, "--sequences", help="Made-up recordings of 2-7 clips in a row "
                                            "per epoch (default 800).", show_default=False),
    window: Optional[float] = typer.Option(None, "--window", help="Frame length in ms (default 25).",
                                           show_default=False),
    hop: Optional[float] = typer.Option(None, "--hop", help="Frame shift in ms (default 10).", show_default=False),
    features: Optional[str] = typer.Option(None, "--features", help="logmel | mfcc (default logmel).",
                                           show_default=False),
    bins: Optional[int] = typer.Option(None, "--bins", help="Values per frame: mel bands (logmel) or coefficients "
                                       "(mfcc); default 40.", show_default=False),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Sample rate (Hz) the model reads "
                                              "(default 8000).", show_default=False),
    stride: Optional[int] = typer.Option(None, "--stride", help="Frames per attention step (a strided "
                                         "convolution pairs frames before attention; default 2).", show_default=False),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing in [0, 1).",
                                                    show_default=False),
    **shared,
) -> None:
    """Train a truncated self-attention speech model (the recipe of the shipped digits model).

    --window is the frame length in ms; the attention half-width is --attention-window, in
    attention steps.  After every epoch the training state is saved to OUT.checkpoint/; after an
    interruption (even kill -9) the same command with --resume OUT.checkpoint continues where it
    stopped.  Under torchrun it trains on several processes (docs/training.md).
    """
    from seqattn.cli.common import progress, write
    from seqattn.cli.train_options import (TrainReporter, annotations_of, fit_settings, gather, is_main_process,
                                           model_options, required)
    from seqattn.training.options import ENCODER_OPTIONS

    merged = gather("speech", {"train": train, "dev": dev, "sequences": sequences, "window": window, "hop": hop,
                               "features": features, "bins": bins, "sample_rate": sample_rate, "stride": stride,
                               "label_smoothing": label_smoothing, **shared}, annotations_of(train_speech_cli))
    required(merged, "train", "out")
    from seqattn.models.speech import SpeechConfig
    from seqattn.readers.frames import FrameSpec
    from seqattn.tasks.speech import read_manifest
    from seqattn.tasks.speech_training import SpeechOptions, speech_settings, train_speech

    config = SpeechConfig()
    spec = config.frames.to_dict()
    for key, flag in (("sample_rate", "sample_rate_hz"), ("window", "window_ms"), ("hop", "hop_ms"),
                      ("features", "features"), ("bins", "bins")):
        if merged.get(key) is not None:
            spec[flag] = merged[key]
    config.frames = FrameSpec.from_dict(spec)  # checks the values before any data is read
    if merged.get("stride") is not None:
        config.stride = merged["stride"]
    given = model_options(merged, "speech", ENCODER_OPTIONS)
    given.apply_to_encoder(config.encoder)
    if given.d_model is not None and given.d_ff is None:
        config.encoder.d_ff = 2 * given.d_model  # the digits recipe's FFN
    config = SpeechConfig.from_dict(config.to_dict())  # the config's own rules (odd kernel, truncated attention)
    settings = fit_settings(speech_settings(), merged)
    options = SpeechOptions(**{k: merged[k] for k in ("sequences", "label_smoothing") if k in merged})
    rows = [row for manifest in merged["train"] for row in read_manifest(manifest)]
    dev_rows = read_manifest(merged["dev"]) if merged.get("dev") else None
    quiet = merged["quiet"]
    with progress("reading", quiet) as bar:
        saved = train_speech(rows, merged["out"], config, settings, dev_rows, options,
                             TrainReporter(bar, quiet, lambda r: f"dev accuracy {100 * r['accuracy']:.2f}%"
                                           if "accuracy" in r else ""),
                             force=merged["force"], meta={"data": ", ".join(str(t) for t in merged["train"])},
                             resume=merged.get("resume"), on_clip=lambda i, n: bar.update(i, n, description="reading"))
    if is_main_process():
        dev_text = (f": dev accuracy {100 * saved['metrics']['dev_accuracy']:.2f}%"
                    if "dev_accuracy" in saved["metrics"] else "")
        write(f"saved {merged['out']}{dev_text} after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the speech commands to the CLI."""
    app.command("speech")(speech_cli)
    app.command("frames")(frames_cli)
    evaluate_app.command("speech")(evaluate_speech_cli)
    from seqattn.cli.train_options import train_command

    train_app.command("speech")(train_command(train_speech_cli, "speech"))
