"""`seqattn tag`, `seqattn evaluate tagger`, `seqattn train tagger`: UPOS tagging from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.cli.attention_options import head_option, kind_option, layer_option
from seqattn.cli.attention_out import attention_out_option
from seqattn.models.device import DEVICE_HELP
from seqattn.readers.text import MAX_LINE_BYTES

PRECISION_HELP = ("int8 (Linear layers in int8, faster; accuracy in the model card; the default on a CPU where the "
                  "C++ attention kernel runs) | fp32 (as trained; the default elsewhere)")
FORMATS_HELP = "pretty (terminal default) | tsv (pipe default: word<TAB>UPOS) | conllu | jsonl"


def tag_cli(
    file: str = typer.Argument(None, help="Text file to tag; '-' or nothing reads stdin.", show_default=False),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    model: str = typer.Option("en-upos", "--model", "-m", help="Shipped model name or model directory."),
    input_format: str = typer.Option("text", "--input-format", "-i",
                                     help="text (running text, one or more sentences per line) | tokens "
                                          "(one sentence per line, words separated by spaces) | conllu"),
    attention: bool = typer.Option(False, "--attention", help="Draw each sentence's attention weights "
                                                              "(pretty) or add them to each object (jsonl)."),
    layer: str = layer_option(),
    head: Optional[str] = head_option(),
    attention_kind: str = kind_option(),
    attention_out: Optional[Path] = attention_out_option(),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP, show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    max_line_bytes: int = typer.Option(MAX_LINE_BYTES, "--max-line-bytes", help="Read a longer line in pieces "
                                       "of this many bytes (memory stays bounded); a sentence that runs on "
                                       "past a piece is cut, with a message on stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Tag each word with its UPOS part of speech (shipped English model: en-upos).

    Memory is bounded whatever the input: a sentence of more than 512 words (or running on for
    more than --max-line-bytes without a sentence boundary) is tagged in pieces of at most 512
    words, each written as a sentence of its own, with one message on stderr per cut sentence.
    """
    import sys

    from seqattn.cli.common import check_max_line_bytes, choose_format, console, say, write
    from seqattn.errors import InputError
    from seqattn.readers.text import INPUT_FORMATS, iter_items, open_text
    from seqattn.render import tags as render

    from seqattn.models.device import check_device
    from seqattn.models.precision import check_precision

    fmt = choose_format(format)
    if precision is not None:
        check_precision(precision)
    check_device(device)
    if input_format not in INPUT_FORMATS:
        raise InputError(f"unknown --input-format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}")
    check_max_line_bytes(max_line_bytes)
    if attention and fmt not in ("pretty", "jsonl"):
        raise InputError(f"--attention draws with --format pretty or adds weights with jsonl, not {fmt}")
    from seqattn.cli.attention_options import parse_request

    request = parse_request(layer, head, attention_kind)
    from seqattn.cli.attention_out import check_out

    export_to = check_out(attention_out, [file], attention_kind)
    if file is None:
        if sys.stdin.isatty():
            raise InputError("no input: give a FILE, or '-' and pipe text into seqattn tag")
        file = "-"

    from seqattn.cli.common import TRIM_EVERY_WORDS, trim_heap
    from seqattn.tasks.tagging import iter_tagged, load_tagger

    with open_text(file, max_line_bytes) as lines:  # first, so a missing file is reported before the model loads
        tagger = load_tagger(model, precision, device)
        selection = request.resolve(tagger.model.cfg.encoder.n_layers, tagger.model.cfg.encoder.n_heads)
        out = console() if fmt == "pretty" else None
        items = iter_items(lines, input_format, tagger.max_words, warn=lambda message: say(message, quiet))
        new_paragraph = False
        since_trim = 0  # words since the heap was last trimmed: flat memory however long the input
        from seqattn.export import RecordCollector, tokens_record

        collector = RecordCollector() if export_to else None  # the first sentences, memory capped
        for item, result in iter_tagged(tagger, items, with_attention=attention or export_to is not None,
                                        flush_when=lines.would_block):
            if result is None:  # an empty input line: keep it, so outputs line up with inputs
                new_paragraph = True
                if fmt == "pretty":
                    out.print()
                elif fmt == "tsv":
                    write("\n")
                elif fmt == "jsonl":
                    write(render.jsonl([], [], []))
                continue
            since_trim += len(result.words)
            if since_trim >= TRIM_EVERY_WORDS:
                trim_heap()
                since_trim = 0
            if collector is not None and result.attention is not None and collector.wants():
                collector.add(tokens_record(" ".join(result.words), result.words, result.attention, tagger.window,
                                            " ".join(result.tags)))
            weights = _attention_maps(result.attention, selection, tagger.window) if attention else None
            if fmt == "pretty":
                out.print(render.pretty(result.words, result.tags))
                if weights is not None:
                    out.print(render.attention(result.words, weights, f"attention, {selection.grid_title}"))
                    out.print()
            elif fmt == "tsv":
                write(render.tsv(result.words, result.tags))
            elif fmt == "conllu":
                write(render.conllu(result.words, result.tags, item.sent_id, item.text, new_paragraph))
            else:
                line = render.jsonl(result.words, result.tags, result.probabilities, item.text)
                if weights is not None:
                    import json

                    from seqattn.render.json_line import attention_json, json_line

                    obj = json.loads(line)
                    obj["attention"] = attention_json(weights, selection.panels, selection.kind)
                    line = json_line(obj, ensure_ascii=False)
                write(line)
            new_paragraph = False
        if collector is not None:
            from seqattn.cli.attention_out import finish

            finish(export_to, collector.records, selection, quiet, dropped=collector.dropped, kept_what="sentences")


def _attention_maps(per_layer, selection, window: int | None) -> list[tuple[str, list[list[float]]]]:
    """(title, (N, N) weights as nested lists) for each panel of ``selection``
    (seqattn.cli.attention_options): one head, the mean of heads, or the rollout through a layer."""
    from seqattn.analysis.maps import attention_maps

    maps = attention_maps(per_layer, [(p.layer, p.head) for p in selection.panels], window, selection.kind)
    return [(f"attention, {p.title}" if selection.single else p.short, m.tolist())
            for p, m in zip(selection.panels, maps)]


def evaluate_tagger_cli(
    data: Path = typer.Option(..., "--data", "-d", help="CoNLL-U file with gold UPOS."),
    model: str = typer.Option("en-upos", "--model", "-m", help="Shipped model name or model directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP, show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """UPOS accuracy of a tagger on a CoNLL-U file's own (gold) tokens."""
    import json

    from seqattn.cli.common import choose_format, write
    from seqattn.errors import InputError
    from seqattn.readers.conllu import read_conllu
    from seqattn.tasks.tagging import evaluate_tagger, load_tagger
    from seqattn.models.device import check_device

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    check_device(device)
    sentences = read_conllu(data)
    if not any(s.upos for s in sentences):
        raise InputError(f"{data}: no sentence with gold UPOS (an empty file, or only '_' in the UPOS column)")
    tagger = load_tagger(model, precision, device)
    result = {"data": str(data), "model": model, "precision": tagger.precision, "device": str(tagger.device),
              **evaluate_tagger(tagger, sentences)}
    if fmt == "json":
        write(json.dumps(result) + "\n")
    else:
        write(f"UPOS accuracy {100 * result['upos_accuracy']:.2f}% on {result['tokens']:,} words "
              f"({result['sentences']:,} sentences), {result['tokens_per_second']:,.0f} words/s\n")


def train_tagger_cli(
    train: Optional[Path] = typer.Option(None, "--train", help="Training data (CoNLL-U with UPOS).",
                                         show_default=False),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Development data for model selection (CoNLL-U "
                                       "with UPOS).", show_default=False),
    word_dropout: Optional[float] = typer.Option(None, "--word-dropout", help="A training word becomes <unk> "
                                                 "with this probability (its characters stay).", show_default=False),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing in [0, 1).",
                                                    show_default=False),
    **shared,
) -> None:
    """Train a truncated self-attention UPOS tagger (the recipe of the shipped en-upos).

    After every epoch the training state is saved to OUT.checkpoint/; after an interruption
    (even kill -9) the same command with --resume OUT.checkpoint continues where it stopped.
    Under torchrun it trains on several processes (docs/training.md).
    """
    from seqattn.cli.common import progress, write
    from seqattn.cli.train_options import (TrainReporter, annotations_of, fit_settings, gather, is_main_process,
                                           model_options, required)
    from seqattn.models.tagger import TaggerConfig
    from seqattn.tasks.tagging import TaggerOptions, tagger_settings, train_tagger
    from seqattn.training.options import ENCODER_OPTIONS

    merged = gather("tagger", {"train": train, "dev": dev, "word_dropout": word_dropout,
                               "label_smoothing": label_smoothing, **shared}, annotations_of(train_tagger_cli))
    required(merged, "train", "dev", "out")
    settings = fit_settings(tagger_settings(), merged)
    config = TaggerConfig()
    model_options(merged, "tagger", ENCODER_OPTIONS).apply_to_encoder(config.encoder)
    options = TaggerOptions(**{k: merged[k] for k in ("word_dropout", "label_smoothing") if k in merged})
    options.check()
    with progress("training", merged["quiet"]) as bar:
        saved = train_tagger(merged["train"], merged["dev"], merged["out"], settings, config, options,
                             TrainReporter(bar, merged["quiet"], lambda r: f"dev UPOS {100 * r['upos_accuracy']:.2f}%"),
                             force=merged["force"], resume=merged.get("resume"))
    if is_main_process():
        write(f"saved {merged['out']}: dev UPOS {100 * saved['metrics']['dev_upos_accuracy']:.2f}% "
              f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the tagging commands to the CLI."""
    app.command("tag")(tag_cli)
    evaluate_app.command("tagger")(evaluate_tagger_cli)
    from seqattn.cli.train_options import train_command

    train_app.command("tagger")(train_command(train_tagger_cli, "tagger"))
