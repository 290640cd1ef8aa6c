"""`seqattn classify`, `seqattn evaluate classifier`, `seqattn train classifier`: one class per text (N -> 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.cli.attention_out import attention_out_option
from seqattn.cli.attention_options import head_option, kind_option, layer_option
from seqattn.models.device import DEVICE_HELP
from seqattn.readers.text import MAX_LINE_BYTES

FORMATS_HELP = "pretty (terminal default: a table) | tsv (pipe default: label<TAB>probability<TAB>text) | jsonl"
UNKNOWN_WARNING = 0.5  # above this share of words outside the training vocabulary, the answer is called a guess
BATCH_TEXTS = 256


def classify_cli(
    file: str = typer.Argument(None, help="Text file, one text per line; '-' or nothing reads stdin.",
                               show_default=False),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    model: str = typer.Option("en-sentiment", "--model", "-m", help="Shipped model name or classifier directory."),
    attention: bool = typer.Option(False, "--attention", help="Show which words the text's vector attended to "
                                   "(the pooling attention, per head) and one layer's self-attention (pretty), or "
                                   "add both to each object (jsonl)."),
    layer: str = layer_option(),
    head: Optional[str] = head_option(),
    attention_kind: str = kind_option(),
    attention_out: Optional[Path] = attention_out_option(),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    max_line_bytes: int = typer.Option(MAX_LINE_BYTES, "--max-line-bytes", help="Longest line read whole; the "
                                       "rest of a longer line is skipped, with a message on stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Classify each line of text (shipped English model: en-sentiment, negative | positive).

    One line in, one answer out; empty lines stay empty lines.  A text of more than 2,048 words
    is classified on its first 2,048, with a message on stderr.  When most of a text's words are
    unknown to the model (another language, code, noise) a message on stderr says the answer is
    a guess, and jsonl carries the share as "unknown_words".
    """
    import sys

    from seqattn.cli.common import check_max_line_bytes, choose_format, console, say
    from seqattn.errors import InputError
    from seqattn.models.device import check_device
    from seqattn.readers.text import open_text

    fmt = choose_format(format, ("pretty", "tsv", "jsonl"))
    check_device(device)
    check_max_line_bytes(max_line_bytes)
    from seqattn.cli.attention_options import parse_request

    request = parse_request(layer, head, attention_kind)
    if attention and fmt not in ("pretty", "jsonl"):
        raise InputError(f"--attention draws with --format pretty or adds weights with jsonl, not {fmt}")
    from seqattn.cli.attention_out import check_out

    export_to = check_out(attention_out, [file])
    if file is None:
        if sys.stdin.isatty():
            raise InputError("no input: give a FILE, or '-' and pipe text into seqattn classify")
        file = "-"

    from seqattn.tasks.classification import MAX_TEXT_WORDS, load_classifier

    with open_text(file, max_line_bytes) as lines:  # first, so a missing file is reported before the model loads
        classifier = load_classifier(model, device)
        encoder = classifier.cfg.encoder
        selection = request.resolve(encoder.n_layers, encoder.n_heads)
        out = console() if fmt == "pretty" else None
        pending: list[tuple[int, str, list[str]]] = []  # (line number, text, words); words [] = empty line
        from seqattn.export import RecordCollector, classify_record

        collector = RecordCollector() if export_to else None  # the first texts, memory capped

        def flush() -> None:
            texts = [words for _, _, words in pending if words]
            results = iter(classifier.predict(texts, with_attention=attention or export_to is not None)
                           if texts else [])
            rows = []
            for number, text, words in pending:
                result = next(results) if words else None
                if collector is not None and result is not None and collector.wants():
                    collector.add(classify_record(text.strip(), result.words, result.pooling, result.attention,
                                                  classifier.window, f"{result.label} ({result.probability:.3f})"))
                _emit(fmt, out, rows, classifier, number, text, result, attention, selection, quiet)
            if fmt == "pretty" and rows:
                from seqattn.render.classes import table

                out.print(table(rows))
            pending.clear()

        skipped_line = 0
        for text, ends in lines.pieces():
            number = lines.line_number
            if skipped_line == number:
                continue  # the rest of an over-long line
            if not ends:
                say(f"{lines.name}:{number}: a line longer than {max_line_bytes:,} bytes; classified on its first "
                    f"{max_line_bytes:,} bytes", quiet)
                skipped_line = number
            words = classifier.words(text)
            if len(words) == MAX_TEXT_WORDS:
                say(f"{lines.name}:{number}: classified on its first {MAX_TEXT_WORDS:,} words", quiet)
            pending.append((number, text, words))
            if len(pending) >= BATCH_TEXTS or lines.would_block() or (attention and fmt == "pretty"):
                flush()
        flush()
        if collector is not None:
            from seqattn.cli.attention_out import finish

            finish(export_to, collector.records, quiet=quiet, which="self", dropped=collector.dropped,
                   kept_what="texts", panels=[(p.layer, p.head) for p in selection.panels])


def _emit(fmt, out, rows, classifier, number, text, result, attention, selection, quiet) -> None:
    """Write one line's answer (or its empty line) in ``fmt``."""
    from seqattn.cli.common import say, write
    from seqattn.render import classes as render

    if result is not None and result.unknown > UNKNOWN_WARNING:
        say(f"line {number}: {100 * result.unknown:.0f}% of the words are unknown to the model; "
            f"its answer is a guess", quiet)
    if fmt == "tsv":
        write("\n" if result is None else render.tsv(result.label, result.probability, text))
        return
    if fmt == "jsonl":
        if result is None:
            write(render.jsonl(text, None, classifier.labels, None))
            return
        extra = {"unknown_words": round(result.unknown, 4)}
        if attention:
            from seqattn.render.json_line import attention_json

            extra.update(words=result.words,
                         pooling=[[round(v, 4) for v in row] for row in result.pooling.tolist()],
                         attention=attention_json(_attention_maps(result, selection, classifier.window),
                                                  selection.panels, selection.kind))
        write(render.jsonl(text, result.label, classifier.labels, result.probabilities, extra))
        return
    rows.append((None, None, text) if result is None else (result.label, result.probability, text))
    if attention and result is not None:
        from seqattn.render.heatmap import heatmap

        out.print(render.table(rows))
        rows.clear()
        pooling = result.pooling.tolist()
        out.print(heatmap(pooling, [f"pool {h}" for h in range(len(pooling))], result.words,
                          "attention pooling: the text's vector, per head"))
        from seqattn.render.tags import attention as attention_maps

        out.print(attention_maps(result.words, _attention_maps(result, selection, classifier.window),
                                 f"self-attention, {selection.grid_title}"))
        out.print()


def _attention_maps(result, selection, window: int | None) -> list[tuple[str, list[list[float]]]]:
    """(title, (N, N) weights as nested lists) per panel of ``selection`` (seqattn.cli.attention_options):
    one head, the mean of heads, or the rollout through a layer."""
    from seqattn.analysis.maps import attention_maps

    maps = attention_maps(result.attention, [(p.layer, p.head) for p in selection.panels], window, selection.kind)
    return [(f"self-attention, {p.title}" if selection.single else p.short, m.tolist())
            for p, m in zip(selection.panels, maps)]


def evaluate_classifier_cli(
    data: Path = typer.Option(..., "--data", "-d", help="Labelled texts: TSV (text<TAB>label, header optional), "
                              "CSV with named columns, or JSONL ({\"text\", \"label\"})."),
    model: str = typer.Option("en-sentiment", "--model", "-m", help="Shipped model name or classifier directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty (terminal default) | json (pipe "
                                         "default)", show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix on labelled texts."""
    import json

    from seqattn.cli.common import choose_format, console, write
    from seqattn.models.device import check_device
    from seqattn.readers.labelled import read_labelled
    from seqattn.tasks.classification import evaluate_classifier, load_classifier

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    check_device(device)
    examples = read_labelled(data)
    classifier = load_classifier(model, device)
    result = {"data": str(data), "model": model, **evaluate_classifier(classifier, examples, str(data))}
    if fmt == "json":
        write(json.dumps(result) + "\n")
        return
    _print_report(console(), result)


def _print_report(out, result: dict) -> None:
    """The evaluation as rich tables: summary, per class, confusion matrix."""
    from rich.table import Table
    from rich.text import Text

    from seqattn.render.safe import printable

    out.print(f"accuracy {100 * result['accuracy']:.2f}%, macro-F1 {100 * result['macro_f1']:.2f}% on "
              f"{result['examples']:,} texts ({result['texts_per_second']:,.0f} texts/s)")
    labels = result["labels"]
    per_class = Table("class", "precision", "recall", "F1", "support", title="per class", box=None)
    for label in labels:
        row = result["per_class"][label]
        per_class.add_row(Text(printable(label)), f"{100 * row['precision']:.2f}", f"{100 * row['recall']:.2f}",
                          f"{100 * row['f1']:.2f}", f"{row['support']:,}")
    out.print(per_class)
    confusion = Table("gold \\ predicted", *(printable(label) for label in labels), title="confusion matrix", box=None)
    for label, row in zip(labels, result["confusion"]):
        confusion.add_row(Text(printable(label)), *(f"{count:,}" for count in row))
    out.print(confusion)


def _parse_label_names(value: str | None) -> dict[str, str] | None:
    """``0=negative,1=positive`` -> {"0": "negative", "1": "positive"}.  Raises InputError on another shape."""
    from seqattn.errors import InputError

    if value is None:
        return None
    mapping = {}
    for part in value.split(","):
        label, sep, name = part.partition("=")
        if not sep or not label.strip() or not name.strip():
            raise InputError(f"--label-names {value!r}: expected LABEL=NAME pairs separated by commas, "
                             f"e.g. 0=negative,1=positive")
        if label.strip() in mapping:
            raise InputError(f"--label-names names the label {label.strip()!r} twice")
        mapping[label.strip()] = name.strip()
    return mapping


def train_classifier_cli(
    train: Optional[Path] = typer.Option(None, "--train", help="Training texts: TSV (text<TAB>label, header "
                                         "optional), CSV with named columns, or JSONL.", show_default=False),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Development texts for model selection (same "
                                       "formats; its labels must occur in --train).", show_default=False),
    label_names: Optional[str] = typer.Option(None, "--label-names", help="Printed names of the data's labels, "
                                              "e.g. 0=negative,1=positive.", show_default=False),
    word_dropout: Optional[float] = typer.Option(None, "--word-dropout", help="A training word becomes <unk> "
                                                 "with this probability (its characters stay).", show_default=False),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing in [0, 1).",
                                                    show_default=False),
    **shared,
) -> None:
    """Train a sentence classifier: truncated self-attention and attention pooling (the en-sentiment recipe).

    Any number of classes.  After every epoch the training state is saved to OUT.checkpoint/;
    the same command with --resume OUT.checkpoint continues an interrupted run.  Under torchrun
    it trains on several processes (docs/training.md).
    """
    from seqattn.cli.common import progress, write
    from seqattn.cli.train_options import (TrainReporter, annotations_of, fit_settings, gather, is_main_process,
                                           model_options, required)
    from seqattn.models.classifier import ClassifierConfig
    from seqattn.tasks.classification import ClassifierOptions, classifier_settings, train_classifier
    from seqattn.training.options import ENCODER_OPTIONS

    merged = gather("classifier", {"train": train, "dev": dev, "label_names": label_names,
                                   "word_dropout": word_dropout, "label_smoothing": label_smoothing, **shared},
                    annotations_of(train_classifier_cli))
    required(merged, "train", "dev", "out")
    settings = fit_settings(classifier_settings(), merged)
    config = ClassifierConfig()
    model_options(merged, "classifier", ENCODER_OPTIONS).apply_to_encoder(config.encoder)
    options = ClassifierOptions(**{k: merged[k] for k in ("word_dropout", "label_smoothing") if k in merged},
                                label_names=_parse_label_names(merged.get("label_names")))
    options.check()
    with progress("training", merged["quiet"]) as bar:
        saved = train_classifier(merged["train"], merged["dev"], merged["out"], settings, config, options,
                                 TrainReporter(bar, merged["quiet"], lambda r: f"dev accuracy {100 * r['accuracy']:.2f}%"),
                                 force=merged["force"], resume=merged.get("resume"))
    if is_main_process():
        write(f"saved {merged['out']}: dev accuracy {100 * saved['metrics']['dev_accuracy']:.2f}% "
              f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the classification commands to the CLI."""
    from seqattn.cli.train_options import train_command

    app.command("classify")(classify_cli)
    evaluate_app.command("classifier")(evaluate_classifier_cli)
    train_app.command("classifier")(train_command(train_classifier_cli, "classifier"))
