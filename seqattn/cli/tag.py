"""`seqattn tag`, `seqattn evaluate tagger`, `seqattn train tagger`: UPOS tagging from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.models.device import DEVICE_HELP

PRECISION_HELP = ("int8 (Linear layers quantised, faster; accuracy in the model card; the default on the CPU) | "
                  "fp32 (as trained; the default on a GPU)")
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
    layer: int = typer.Option(-1, "--layer", help="Layer whose attention --attention shows (0-based; -1 = last)."),
    head: Optional[int] = typer.Option(None, "--head", help="Head to show (0-based); default: mean over heads.",
                                       show_default=False),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP, show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Tag each word with its UPOS part of speech (shipped English model: en-upos)."""
    import sys

    from seqattn.cli.common import choose_format, console, write
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
    if attention and fmt not in ("pretty", "jsonl"):
        raise InputError(f"--attention draws with --format pretty or adds weights with jsonl, not {fmt}")
    if file is None:
        if sys.stdin.isatty():
            raise InputError("no input: give a FILE, or '-' and pipe text into seqattn tag")
        file = "-"

    from seqattn.cli.common import TRIM_EVERY_WORDS, trim_heap
    from seqattn.tasks.tagging import iter_tagged, load_tagger

    with open_text(file) as lines:  # first, so a missing file is reported before the model loads
        tagger = load_tagger(model, precision, device)
        n_layers, n_heads = tagger.model.cfg.encoder.n_layers, tagger.model.cfg.encoder.n_heads
        if not -n_layers <= layer < n_layers:
            raise InputError(f"--layer {layer} is outside the model's {n_layers} layers (0..{n_layers - 1} or -1)")
        if head is not None and not 0 <= head < n_heads:
            raise InputError(f"--head {head} is outside the model's {n_heads} heads (0..{n_heads - 1})")
        out = console() if fmt == "pretty" else None
        items = iter_items(lines, input_format)
        new_paragraph = False
        since_trim = 0  # words since the heap was last trimmed: flat memory however long the input
        for item, result in iter_tagged(tagger, items, with_attention=attention, flush_when=lines.would_block):
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
            weights = _attention_matrix(result.attention, layer, head, tagger.window) if attention else None
            if fmt == "pretty":
                out.print(render.pretty(result.words, result.tags))
                if weights is not None:
                    from seqattn.render.heatmap import heatmap

                    title = f"attention, layer {layer % n_layers}, " + ("mean of heads" if head is None else f"head {head}")
                    out.print(heatmap(weights, result.words, result.words, title))
                    out.print()
            elif fmt == "tsv":
                write(render.tsv(result.words, result.tags))
            elif fmt == "conllu":
                write(render.conllu(result.words, result.tags, item.sent_id, item.text, new_paragraph))
            else:
                line = render.jsonl(result.words, result.tags, result.probabilities, item.text)
                if weights is not None:
                    import json

                    obj = json.loads(line)
                    obj["attention"] = [[round(v, 4) for v in row] for row in weights]
                    line = json.dumps(obj, ensure_ascii=False) + "\n"
                write(line)
            new_paragraph = False


def _attention_matrix(per_layer, layer: int, head: int | None, window: int | None) -> list[list[float]]:
    """(N, N) weights of one layer, one head or the mean of heads, as nested lists."""
    from seqattn.nn.attention import band_to_dense

    weights = per_layer[layer]  # (H, N, N) full, or (H, N, 2w + 1) band layout when truncated
    if window is not None:
        weights = band_to_dense(weights, window)
    chosen = weights.mean(0) if head is None else weights[head]
    return chosen.tolist()


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
    train: Path = typer.Option(..., "--train", help="Training data (CoNLL-U with UPOS)."),
    dev: Path = typer.Option(..., "--dev", help="Development data for model selection (CoNLL-U with UPOS)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to (usable with --model)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (data order, initialisation, dropout)."),
    epochs: int = typer.Option(40, "--epochs", help="Passes over the training data."),
    window: Optional[int] = typer.Option(8, "--window", help="Attention half-width w in words; -1 = full attention."),
    layers: int = typer.Option(3, "--layers", help="Encoder blocks L."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model directory."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its "
                                          "checkpoint directory (OUT.checkpoint, written after every epoch).",
                                          show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or per-epoch lines on stderr."),
) -> None:
    """Train a truncated self-attention UPOS tagger (the recipe of the shipped en-upos).

    After every epoch the training state is saved to OUT.checkpoint/; after an interruption
    (even kill -9) the same command with --resume OUT.checkpoint continues where it stopped.
    """
    from seqattn.cli.common import progress, say, write
    from seqattn.errors import InputError
    from seqattn.models.io import write_model_dir  # noqa: F401  (fail early on a broken install)

    if epochs < 1:
        raise InputError(f"--epochs must be >= 1, got {epochs}")
    if window is not None and window < -1:
        raise InputError(f"--window must be >= 0, or -1 for full attention; got {window}")
    from seqattn.models.tagger import TaggerConfig
    from seqattn.tasks.tagging import TrainSettings, train_tagger

    config = TaggerConfig()
    config.encoder.window = None if window == -1 else window
    config.encoder.n_layers = layers
    config.encoder.relative_bias = config.encoder.window is not None
    with progress("training", quiet) as bar:
        def on_epoch(r):
            say(f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  dev UPOS {100 * r.dev_accuracy:.2f}%  "
                f"best {100 * r.best_dev_accuracy:.2f}%  {r.seconds:.0f} s", quiet)

        def on_step(step, total):
            bar.update(step, total)

        saved = train_tagger(train, dev, out, TrainSettings(epochs=epochs, seed=seed), config,
                             on_step=on_step, on_epoch=on_epoch, force=force, resume=resume)
    write(f"saved {out}: dev UPOS {100 * saved['metrics']['dev_upos_accuracy']:.2f}% "
          f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the tagging commands to the CLI."""
    app.command("tag")(tag_cli)
    evaluate_app.command("tagger")(evaluate_tagger_cli)
    train_app.command("tagger")(train_tagger_cli)
