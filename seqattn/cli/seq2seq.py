"""`seqattn seq2seq`, `seqattn evaluate seq2seq`, `seqattn train seq2seq`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.models.device import DEVICE_HELP

FORMATS_HELP = ("pretty (terminal default) | tsv (pipe default: input<TAB>output per line) | "
                "jsonl (one object per line, with the alignment under --attention)")
DATA_HELP = ("source<TAB>target file (a source on several lines: several accepted references), or a frames "
             ".npz (with --text)")


def _read_data(data: Path, text: Optional[Path], option: str):
    from seqattn.errors import InputError
    from seqattn.readers.pairs import read_frame_pairs, read_pairs

    if data.suffix == ".npz":
        if text is None:
            raise InputError(f"{data}: frames need their transcripts: pass {option}-text TSV (utt_id, transcript)")
        return read_frame_pairs(data, text)
    if text is not None:
        raise InputError(f"{option}-text is for a frames .npz, and {data} is a pairs file")
    return read_pairs(data)


def seq2seq_cli(
    file: str = typer.Argument("-", help="Input file, one input per line ('-' = stdin); or a frames .npz "
                                         "for a frames model."),
    model: str = typer.Option("en-g2p", "--model", "-m", help="Shipped model name or model directory."),
    beam: int = typer.Option(5, "--beam", "-k", help="Beam size (1 = greedy search)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    attention: bool = typer.Option(False, "--attention", help="Draw the encoder-decoder attention (source "
                                   "symbols x output symbols) of each input: the alignment."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Map each input line to an output sequence (spelling -> phonemes with en-g2p).

    Empty input lines stay in place so that outputs line up with inputs.  A line with symbols
    the model never saw in training (digits for en-g2p) gets a message on stderr: they are read
    as the unknown symbol, and its output is a guess.
    """
    from seqattn.cli.common import STDIN_NAME, choose_format, console, say, write
    from seqattn.errors import InputError
    from seqattn.models.device import check_device
    from seqattn.render import seq2seq as render
    from seqattn.render.safe import printable

    fmt = choose_format(format, ("pretty", "tsv", "jsonl"))
    check_device(device)
    if beam < 1:
        raise InputError(f"--beam must be >= 1, got {beam}")
    if attention and fmt == "tsv":
        raise InputError("--attention draws with --format pretty or adds weights with jsonl, not tsv")
    if file.endswith(".npz"):
        from seqattn.readers.pairs import read_frames

        inputs, sources = read_frames(file)
        batches = [(inputs, sources)]
    else:
        batches = None
    from seqattn.tasks.seq2seq import load_seq2seq

    loaded = load_seq2seq(model, device)
    out = console() if fmt == "pretty" else None

    def emit(inputs: list[str], outputs: list) -> None:
        for text, result in zip(inputs, outputs):
            if fmt == "pretty":
                out.print(render.pretty(text, result), soft_wrap=True)
                if attention and result is not None:
                    out.print(render.alignment(result))
            elif fmt == "tsv":
                write(render.tsv(text, result))
            else:
                write(render.jsonl(text, result, attention))

    if batches is not None:
        for inputs, sources in batches:
            emit(inputs, loaded.decode(sources, beam=beam, with_attention=attention))
        return
    import itertools

    from seqattn.readers.text import open_text

    name = STDIN_NAME if file == "-" else file
    source = loaded.featurizer.source  # None for a frames model, whose decode refuses text
    with open_text(file) as lines:
        pending: list[str] = []
        numbers = itertools.count(1)  # input line numbers, for the messages on unknown symbols

        def flush():
            for text in pending:
                number = next(numbers)
                unknown = source.unknown(text.strip()) if source is not None and text.strip() else []
                if unknown:
                    say(printable(f"{name}:{number}: {len(unknown)} symbol{'s' if len(unknown) > 1 else ''} the model "
                                  f"does not know, read as <unk>: {' '.join(map(repr, unknown[:10]))}"), quiet)
            texts = [t.strip() for t in pending if t.strip()]
            decoded = iter(loaded.decode(texts, beam=beam, with_attention=attention) if texts else [])
            emit(pending, [next(decoded) if t.strip() else None for t in pending])
            pending.clear()

        for line in lines:
            pending.append(line)
            if len(pending) >= 256 or lines.would_block():
                flush()
        flush()


def evaluate_seq2seq_cli(
    data: Path = typer.Option(..., "--data", "-d", help=DATA_HELP),
    text: Optional[Path] = typer.Option(None, "--text", help="Transcripts (TSV with utt_id and transcript "
                                        "columns) of a frames .npz given as --data.", show_default=False),
    model: str = typer.Option("en-g2p", "--model", "-m", help="Shipped model name or model directory."),
    beam: int = typer.Option(5, "--beam", "-k", help="Beam size (1 = greedy search)."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar on stderr."),
) -> None:
    """WER and PER (G2P: share of words with no correct pronunciation; phoneme edit rate), BLEU for text.

    A source may appear on several lines: each line is an accepted reference, and an output is
    scored against the closest one.  See docs/seq2seq.md for the definitions.
    """
    import json

    from seqattn.cli.common import choose_format, progress, write
    from seqattn.errors import InputError
    from seqattn.tasks.seq2seq import evaluate_seq2seq, load_seq2seq
    from seqattn.models.device import check_device

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    check_device(device)
    if beam < 1:
        raise InputError(f"--beam must be >= 1, got {beam}")
    pairs = _read_data(data, text, "--")
    loaded = load_seq2seq(model, device)
    with progress("decoding", quiet) as bar:
        result = {"data": str(data), "model": model, "device": str(loaded.device),
                  **evaluate_seq2seq(loaded, pairs, beam, on_batch=lambda i, n: bar.update(i, n))}
    if fmt == "json":
        write(json.dumps(result) + "\n")
        return
    from seqattn.render.seq2seq import metrics_text

    write(metrics_text(result))


def train_seq2seq_cli(
    train: Path = typer.Option(..., "--train", help="Training pairs: " + DATA_HELP),
    dev: Path = typer.Option(..., "--dev", help="Pairs for model selection (the epoch with the lowest dev "
                                                "error is kept), same kind as --train."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to (usable with --model)."),
    train_text: Optional[Path] = typer.Option(None, "--train-text", help="Transcripts of a frames --train "
                                              "(.npz).", show_default=False),
    dev_text: Optional[Path] = typer.Option(None, "--dev-text", help="Transcripts of a frames --dev (.npz).",
                                            show_default=False),
    source: str = typer.Option("sentencepiece", "--source", help="How sources become symbols: chars | words | "
                               "sentencepiece (frames: automatic for .npz)."),
    target: str = typer.Option("sentencepiece", "--target", help="How targets become symbols: chars | words "
                               "(e.g. phonemes) | sentencepiece."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="Pieces per sentencepiece vocabulary."),
    d_model: int = typer.Option(256, "--d-model", help="Size of every vector in encoder and decoder."),
    layers: int = typer.Option(3, "--layers", help="Encoder blocks."),
    decoder_layers: int = typer.Option(3, "--decoder-layers", help="Decoder blocks."),
    heads: int = typer.Option(4, "--heads", help="Attention heads."),
    d_ff: Optional[int] = typer.Option(None, "--d-ff", help="FFN hidden size (default 4 x d-model).",
                                       show_default=False),
    window: Optional[int] = typer.Option(None, "--window", help="Truncated encoder attention |i - j| <= w "
                                         "(default: full attention).", show_default=False),
    dropout: float = typer.Option(0.1, "--dropout", help="Dropout on residual branches and attention."),
    stride: int = typer.Option(4, "--stride", help="Frames per encoder step (frames only: 1, 2 or 4)."),
    epochs: int = typer.Option(30, "--epochs", help="Passes over the training pairs."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop after the epoch that passes "
                                                "this training time.", show_default=False),
    max_tokens: int = typer.Option(4096, "--max-tokens", help="Padded source + target positions per batch."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (linear warm-up, then cosine decay to 0 at the last epoch)."),
    warmup: int = typer.Option(1000, "--warmup", help="Warm-up steps."),
    label_smoothing: float = typer.Option(0.1, "--label-smoothing", help="Label smoothing of the loss."),
    ctc_weight: float = typer.Option(0.0, "--ctc-weight", help="Weight w of a CTC loss on the encoder (joint "
                                     "CTC-attention; helps frames models learn the alignment): (1-w) CE + w CTC."),
    time_masks: int = typer.Option(0, "--time-masks", help="SpecAugment time masks per utterance (frames)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (initialisation, batch order, dropout)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its "
                                          "OUT.checkpoint directory.", show_default=False),
    average_last: int = typer.Option(0, "--average-last", help="Also score the mean weights of the last K "
                                     "epochs (checkpoint averaging) on dev; kept if better than the best epoch. "
                                     "0 = off."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this trained seq2seq model (name or "
                                       "directory) instead of random weights; its architecture and vocabularies "
                                       "replace the options above.", show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace an existing model directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or per-epoch lines on stderr."),
) -> None:
    """Train an encoder-decoder on source<TAB>target pairs (or frames + transcripts); keep the best dev epoch."""
    from seqattn.cli.common import progress, say, write
    from seqattn.errors import InputError
    from seqattn.models.seq2seq import SOURCE_KINDS, SYMBOL_KINDS

    for name, value in (("--epochs", epochs), ("--layers", layers), ("--decoder-layers", decoder_layers),
                        ("--d-model", d_model), ("--heads", heads), ("--max-tokens", max_tokens),
                        ("--warmup", warmup), ("--vocab-size", vocab_size)):
        if value < 1:
            raise InputError(f"{name} must be >= 1, got {value}")
    if d_model % heads:
        raise InputError(f"--d-model {d_model} is not divisible by --heads {heads}")
    if source not in SOURCE_KINDS or target not in SYMBOL_KINDS:
        raise InputError(f"--source is one of {', '.join(SYMBOL_KINDS)}; --target one of {', '.join(SYMBOL_KINDS)}")
    if stride not in (1, 2, 4):
        raise InputError(f"--stride must be 1, 2 or 4, got {stride}")
    if average_last < 0:
        raise InputError(f"--average-last must be >= 0, got {average_last}")
    if not 0 <= ctc_weight < 1:
        raise InputError(f"--ctc-weight must be in [0, 1), got {ctc_weight}")
    if window is not None and window < 0:
        raise InputError(f"--window must be >= 0, got {window}")
    from seqattn.models.seq2seq import Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig
    from seqattn.tasks.seq2seq import TrainSettings, train_seq2seq

    train_pairs = _read_data(train, train_text, "--train")
    dev_pairs = _read_data(dev, dev_text, "--dev")
    frames = train.suffix == ".npz"
    if frames != (dev.suffix == ".npz"):
        raise InputError("--train and --dev must both be pairs files or both frames .npz")
    ff = d_ff or 4 * d_model
    config = Seq2SeqConfig(
        source="frames" if frames else source, target=target, frame_stride=stride, ctc_weight=ctc_weight,
        frame_dim=train_pairs[0].source.shape[1] if frames else 13,
        encoder=EncoderConfig(d_model=d_model, n_heads=heads, n_layers=layers, d_ff=ff, dropout=dropout,
                              attention_dropout=dropout, window=window),
        decoder=DecoderConfig(d_model=d_model, n_heads=heads, n_layers=decoder_layers, d_ff=ff, dropout=dropout))
    settings = TrainSettings(epochs=epochs, max_tokens=max_tokens, lr=lr, warmup_steps=warmup,
                             label_smoothing=label_smoothing, time_masks=time_masks, seed=seed,
                             max_minutes=max_minutes, average_last=average_last)
    with progress("training", quiet) as bar:
        def on_epoch(r):
            dev_text = "  ".join(f"{k} {100 * r.dev[k]:.2f}%" for k in ("wer", "per") if k in r.dev)
            if "bleu" in r.dev:
                dev_text += f"  bleu {r.dev['bleu']:.2f}"
            say(f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  dev {dev_text}  {r.seconds:.0f} s", quiet)

        saved = train_seq2seq(train_pairs, dev_pairs, out, config, settings, vocab_size,
                              on_step=lambda step, total: bar.update(step, total), on_epoch=on_epoch,
                              force=force, resume=resume, init=init,
                              meta={"data": {"train": str(train), "dev": str(dev)}})
    metrics = saved["metrics"]
    averaged = saved["training"].get("averaged")
    if averaged is not None:
        say(f"mean of epochs {averaged['epochs'][0]}-{averaged['epochs'][-1]}: dev error "
            f"{100 * averaged['dev_error']:.2f}% ({'kept' if averaged['kept'] else 'not kept'})", quiet)
    write(f"saved {out}: dev wer {100 * metrics['dev_wer']:.2f}% per {100 * metrics['dev_per']:.2f}% "
          f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the seq2seq commands to the CLI."""
    app.command("seq2seq")(seq2seq_cli)
    evaluate_app.command("seq2seq")(evaluate_seq2seq_cli)
    train_app.command("seq2seq")(train_seq2seq_cli)
