"""`seqattn seq2seq`, `seqattn evaluate seq2seq`, `seqattn train seq2seq`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.cli.attention_options import head_option, kind_option, layer_option
from seqattn.cli.attention_out import attention_out_option
from seqattn.models.device import DEVICE_HELP
from seqattn.readers.text import MAX_LINE_BYTES

FORMATS_HELP = ("pretty (terminal default) | tsv (pipe default: input<TAB>output per line) | "
                "jsonl (one object per line, with the alignment under --attention)")
DATA_HELP = ("source<TAB>target file (a source on several lines: several accepted references), or a frames "
             ".npz (with --text)")


MAX_BEAM = 100  # beams past this find nothing more and cost beam x memory (10,000,000 asked for 38 GB)


def check_beam(beam: int) -> None:
    """Raises InputError unless 1 <= ``beam`` <= MAX_BEAM."""
    from seqattn.errors import InputError

    if not 1 <= beam <= MAX_BEAM:
        raise InputError(f"--beam must be 1..{MAX_BEAM}, got {beam}")


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
    file: Optional[str] = typer.Argument(None, help="Input file, one input per line; '-' or nothing reads "
                                         "stdin; or a frames .npz for a frames model.", show_default=False),
    model: str = typer.Option("en-g2p", "--model", "-m", help="Shipped model name or model directory."),
    beam: int = typer.Option(5, "--beam", "-k", help=f"Beam size (1 = greedy search; at most {MAX_BEAM})."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    attention: bool = typer.Option(False, "--attention", help="Draw the encoder-decoder attention (source "
                                   "symbols x output symbols) of each input: the alignment."),
    attention_type: str = typer.Option("cross", "--attention-type", help="Which attention --attention draws: "
                                       "cross (encoder-decoder, the alignment) | encoder (the encoder's "
                                       "self-attention) | decoder (the decoder's masked self-attention)."),
    layer: str = layer_option(),
    head: Optional[str] = head_option(),
    attention_kind: str = kind_option(),
    attention_out: Optional[Path] = attention_out_option(),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    max_line_bytes: int = typer.Option(MAX_LINE_BYTES, "--max-line-bytes", help="A longer input line is "
                                       "refused (an error on stderr, an empty output row), read in pieces of this "
                                       "size so memory stays bounded."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Map each input line to an output sequence (spelling -> phonemes with en-g2p).

    Empty input lines stay in place so that outputs line up with inputs.  A line with symbols
    the model never saw in training (digits for en-g2p) gets a message on stderr: they are read
    as the unknown symbol, and its output is a guess.  A line longer than the model takes (512
    source symbols, or --max-line-bytes) gets an error on stderr (even with --quiet) and an empty
    output row; the other lines are answered, and the command ends with exit code 2.
    """
    from seqattn.cli.common import STDIN_NAME, check_max_line_bytes, choose_format, console, say, write
    from seqattn.errors import InputError
    from seqattn.models.device import check_device
    from seqattn.render import seq2seq as render
    from seqattn.render.safe import printable

    fmt = choose_format(format, ("pretty", "tsv", "jsonl"))
    check_device(device)
    check_beam(beam)
    if attention and fmt == "tsv":
        raise InputError("--attention draws with --format pretty or adds weights with jsonl, not tsv")
    check_max_line_bytes(max_line_bytes)
    request = _attention_request(attention_type, layer, head, attention_kind)
    from seqattn.cli.attention_out import check_out

    export_to = check_out(attention_out, [file], attention_kind)
    from seqattn.cli.common import wants_stdin

    if wants_stdin(file):  # no FILE and stdin a terminal: say so instead of waiting (as tag does)
        file = "-"
    if file.endswith(".npz"):
        from seqattn.readers.pairs import read_frames

        inputs, sources = read_frames(file)
        batches = [(inputs, sources)]
    else:
        batches = None
    from seqattn.tasks.seq2seq import load_seq2seq

    loaded = load_seq2seq(model, device)
    part = loaded.cfg.encoder if attention_type == "encoder" else loaded.cfg.decoder
    selection = request.resolve(part.n_layers, part.n_heads)
    # The beam search keeps the alignment (last layer, mean of heads); anything else takes one more pass.
    with_maps = (attention and (fmt == "pretty" or _asks_more(attention_type, selection))) or export_to is not None
    out = console() if fmt == "pretty" else None
    from seqattn.cli.attention_out import finish
    from seqattn.export import RecordCollector, seq2seq_record

    collector = RecordCollector() if export_to else None  # the first inputs, memory capped

    def emit(inputs: list[str], outputs: list) -> None:
        for text, result in zip(inputs, outputs):
            if collector is not None and result is not None and result.maps is not None and collector.wants():
                m = result.maps
                collector.add(seq2seq_record(text.strip(), result.source_symbols, result.symbols, m.encoder, m.decoder,
                                             m.cross, m.window, f"output: {result.text}"))
            if fmt == "pretty":
                out.print(render.pretty(text, result), soft_wrap=True)
                if attention and result is not None:
                    out.print(render.attention_view(result, attention_type, *_attention_maps(result, attention_type,
                                                                                              selection)))
            elif fmt == "tsv":
                write(render.tsv(text, result))
            elif with_maps and result is not None:
                import json

                from seqattn.render.json_line import attention_json, json_line

                record = json.loads(render.jsonl(text, result, True))
                record["attention_type"] = attention_type
                record["attention"] = attention_json(_attention_maps(result, attention_type, selection)[0],
                                                     selection.panels, selection.kind)
                write(json_line(record, ensure_ascii=False))
            else:
                write(render.jsonl(text, result, attention))

    if batches is not None:
        for inputs, sources in batches:
            emit(inputs, loaded.decode(sources, beam=beam, with_attention=attention, with_maps=with_maps))
        if collector is not None:
            finish(export_to, collector.records, selection, quiet, attention_type, collector.dropped)
        return
    import itertools

    from seqattn.readers.text import open_text

    name = STDIN_NAME if file == "-" else file
    source = loaded.featurizer.source  # None for a frames model, whose decode refuses text
    max_symbols = max_source_symbols(loaded)
    refused = 0
    with open_text(file, max_line_bytes) as lines:
        pending: list[str] = []
        refusals: dict[int, str] = {}  # index in pending -> why that line gets no output (its text is "")
        numbers = itertools.count(1)  # input line numbers, for the messages on unknown symbols

        def flush():
            nonlocal refused
            for k, text in enumerate(pending):
                number = next(numbers)
                if k in refusals:  # an error even with --quiet: this line has no output
                    say(f"{name}:{number}: {refusals[k]}; no output for this line")
                    refused += 1
                    continue
                unknown = source.unknown(text.strip()) if source is not None and text.strip() else []
                if unknown:
                    say(printable(f"{name}:{number}: {len(unknown)} symbol{'s' if len(unknown) > 1 else ''} the model "
                                  f"does not know, read as <unk>: {' '.join(map(repr, unknown[:10]))}"), quiet)
            texts = [t.strip() for t in pending if t.strip()]
            decoded = iter(loaded.decode(texts, beam=beam, with_attention=attention, with_maps=with_maps)
                           if texts else [])
            emit(pending, [next(decoded) if t.strip() else None for t in pending])
            pending.clear()
            refusals.clear()

        skipping = False  # inside the rest of a line that is too long, read and dropped piece by piece
        for line, ends in lines.pieces():
            if not skipping:
                if not ends:  # said at once: the rest of the line may never end (/dev/zero)
                    refusals[len(pending)] = f"a line longer than {max_line_bytes:,} bytes (--max-line-bytes)"
                    pending.append("")
                    flush()
                    skipping = True
                    continue
                if source is not None and line.strip():
                    n = loaded.featurizer.source_length(line.strip())
                    if n > max_symbols:
                        refusals[len(pending)] = f"{n:,} source symbols, more than the {max_symbols} the model takes"
                        line = ""
                pending.append(line)  # an empty row keeps the outputs in line with the inputs
            skipping = not ends
            if not skipping and (len(pending) >= 256 or lines.would_block()):
                flush()
        flush()
    if collector is not None:
        finish(export_to, collector.records, selection, quiet, attention_type, collector.dropped)
    if refused:
        raise InputError(f"{refused:,} input line{'s were' if refused > 1 else ' was'} refused (see above)")


def _attention_request(attention_type: str, layer: str, head, kind: str):
    """--attention-type, --layer, --head and --attention-kind, checked before anything is read.

    Raises:
        InputError: an unknown type, a bad value (seqattn.cli.attention_options), or rollout of
            other than the encoder.
    """
    from seqattn.cli.attention_options import parse_request
    from seqattn.errors import InputError
    from seqattn.render.seq2seq import ATTENTION_TYPES

    if attention_type not in ATTENTION_TYPES:
        raise InputError(f"unknown --attention-type {attention_type!r}; expected one of {', '.join(ATTENTION_TYPES)}")
    refusal = None if attention_type == "encoder" else (
        f"--attention-kind rollout follows the encoder's self-attention (--attention-type encoder); the "
        f"{attention_type} attention also mixes in the {'encoder' if attention_type == 'cross' else 'cross attention'}"
        f"'s output, which rollout does not follow")
    return parse_request(layer, head, kind, rollout_refusal=refusal)


def _asks_more(attention_type: str, selection) -> bool:
    """True unless the selection is the alignment the beam search keeps (cross, last layer, mean)."""
    panel = selection.panels[0]
    return not (attention_type == "cross" and selection.single and selection.kind == "raw" and panel.head is None
                and panel.layer == selection.n_layers - 1)


def _attention_maps(result, attention_type: str, selection) -> tuple[list, str]:
    """((title, weights as nested lists) per panel of ``selection``, the grid's title) of ``result.maps``."""
    from seqattn.analysis.maps import attention_maps

    maps = result.maps
    window = maps.window if attention_type == "encoder" else None
    chosen = attention_maps(getattr(maps, attention_type), [(p.layer, p.head) for p in selection.panels], window,
                            selection.kind)
    return ([(p.title if selection.single else p.short, m.tolist()) for p, m in zip(selection.panels, chosen)],
            selection.grid_title)


MAX_SOURCE_SYMBOLS = 512  # the longest source `seqattn seq2seq` decodes (en-g2p: letters of one word)


def max_source_symbols(loaded) -> int:
    """The longest source a seq2seq model is given: ``MAX_SOURCE_SYMBOLS``, or its encoder's ``max_len`` if smaller.

    Full attention keeps S x S weights per head and the beam search runs up to
    ``max_output_ratio`` x S steps, so a source of 1 MB would not end in bounded memory or time.
    """
    return max(1, min(MAX_SOURCE_SYMBOLS, loaded.cfg.encoder.max_len))


def evaluate_seq2seq_cli(
    data: Path = typer.Option(..., "--data", "-d", help=DATA_HELP),
    text: Optional[Path] = typer.Option(None, "--text", help="Transcripts (TSV with utt_id and transcript "
                                        "columns) of a frames .npz given as --data.", show_default=False),
    model: str = typer.Option("en-g2p", "--model", "-m", help="Shipped model name or model directory."),
    beam: int = typer.Option(5, "--beam", "-k", help=f"Beam size (1 = greedy search; at most {MAX_BEAM})."),
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
    check_beam(beam)
    pairs = _read_data(data, text, "--")
    loaded = load_seq2seq(model, device)
    max_symbols = max_source_symbols(loaded)
    for pair in pairs:
        if isinstance(pair.source, str) and loaded.featurizer.source is not None:
            n = loaded.featurizer.source_length(pair.source)
            if n > max_symbols:
                raise InputError(f"{pair.where}: {n:,} source symbols, more than the {max_symbols} the model takes")
    with progress("decoding", quiet) as bar:
        result = {"data": str(data), "model": model, "device": str(loaded.device),
                  **evaluate_seq2seq(loaded, pairs, beam, on_batch=lambda i, n: bar.update(i, n))}
    if fmt == "json":
        write(json.dumps(result) + "\n")
        return
    from seqattn.render.seq2seq import metrics_text

    write(metrics_text(result))


def train_seq2seq_cli(
    train: Optional[Path] = typer.Option(None, "--train", help="Training pairs: " + DATA_HELP, show_default=False),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Pairs for model selection (the epoch with the lowest "
                                       "dev error is kept), same kind as --train.", show_default=False),
    train_text: Optional[Path] = typer.Option(None, "--train-text", help="Transcripts of a frames --train "
                                              "(.npz).", show_default=False),
    dev_text: Optional[Path] = typer.Option(None, "--dev-text", help="Transcripts of a frames --dev (.npz).",
                                            show_default=False),
    source: Optional[str] = typer.Option(None, "--source", help="How sources become symbols: chars | words | "
                                         "sentencepiece (default; frames: automatic for .npz).", show_default=False),
    target: Optional[str] = typer.Option(None, "--target", help="How targets become symbols: chars | words "
                                         "(e.g. phonemes) | sentencepiece (default).", show_default=False),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="Pieces per sentencepiece vocabulary "
                                             "(default 8000).", show_default=False),
    decoder_layers: Optional[int] = typer.Option(None, "--decoder-layers", help="Decoder blocks (default 3).",
                                                 show_default=False),
    stride: Optional[int] = typer.Option(None, "--stride", help="Frames per encoder step (frames only: 1, 2 or "
                                         "4; default 4).", show_default=False),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing of the loss "
                                                    "(default 0.1).", show_default=False),
    ctc_weight: Optional[float] = typer.Option(None, "--ctc-weight", help="Weight w of a CTC loss on the encoder "
                                               "(joint CTC-attention; helps frames models learn the alignment): "
                                               "(1-w) CE + w CTC.", show_default=False),
    time_masks: Optional[int] = typer.Option(None, "--time-masks", help="SpecAugment time masks per utterance "
                                             "(frames).", show_default=False),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this trained seq2seq model (name or "
                                       "directory) instead of random weights; its architecture and vocabularies "
                                       "replace the model options.", show_default=False),
    **shared,
) -> None:
    """Train an encoder-decoder on source<TAB>target pairs (or frames + transcripts); keep the best dev epoch.

    The model options (--layers --d-model --heads --d-ff --dropout --attention-window --score
    --positional --attention-activation) shape the encoder; --d-model, --heads, --d-ff and
    --dropout the decoder too.  Under torchrun it trains on several processes (docs/training.md).
    """
    from seqattn.cli.common import progress, say, write
    from seqattn.cli.train_options import (TrainReporter, annotations_of, fit_settings, gather, is_main_process,
                                           model_options, required)
    from seqattn.errors import InputError
    from seqattn.models.seq2seq import SOURCE_KINDS, SYMBOL_KINDS, Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig
    from seqattn.tasks.seq2seq import Seq2SeqOptions, seq2seq_settings, train_seq2seq
    from seqattn.training.options import ENCODER_OPTIONS

    own = {"train": train, "dev": dev, "train_text": train_text, "dev_text": dev_text, "source": source,
           "target": target, "vocab_size": vocab_size, "decoder_layers": decoder_layers, "stride": stride,
           "label_smoothing": label_smoothing, "ctc_weight": ctc_weight, "time_masks": time_masks, "init": init}
    merged = gather("seq2seq", {**own, **shared}, annotations_of(train_seq2seq_cli))
    required(merged, "train", "dev", "out")
    source, target = merged.get("source", "sentencepiece"), merged.get("target", "sentencepiece")
    if source not in SOURCE_KINDS or target not in SYMBOL_KINDS:
        raise InputError(f"--source is one of {', '.join(SYMBOL_KINDS)}; --target one of {', '.join(SYMBOL_KINDS)}")
    stride, ctc_weight = merged.get("stride", 4), merged.get("ctc_weight", 0.0)
    if stride not in (1, 2, 4):
        raise InputError(f"--stride must be 1, 2 or 4, got {stride}")
    if not 0 <= ctc_weight < 1:
        raise InputError(f"--ctc-weight must be in [0, 1), got {ctc_weight}")
    options = Seq2SeqOptions(**{k: merged[k] for k in ("label_smoothing", "time_masks") if k in merged},
                             **({"subword_vocab_size": merged["vocab_size"]} if "vocab_size" in merged else {}))
    options.check()
    given = model_options(merged, "seq2seq", ENCODER_OPTIONS)
    settings = fit_settings(seq2seq_settings(), merged)
    encoder = EncoderConfig(d_model=256, n_heads=4, n_layers=3, d_ff=1024, dropout=0.1, attention_dropout=0.1)
    given.apply_to_encoder(encoder)  # option errors before any data is read
    train_path, dev_path = merged["train"], merged["dev"]
    train_pairs = _read_data(train_path, merged.get("train_text"), "--train")
    dev_pairs = _read_data(dev_path, merged.get("dev_text"), "--dev")
    frames = train_path.suffix == ".npz"
    if frames != (dev_path.suffix == ".npz"):
        raise InputError("--train and --dev must both be pairs files or both frames .npz")
    decoder = DecoderConfig(d_model=encoder.d_model, n_heads=encoder.n_heads, d_ff=encoder.d_ff,
                            dropout=encoder.dropout, n_layers=merged.get("decoder_layers", 3))
    config = Seq2SeqConfig(source="frames" if frames else source, target=target, frame_stride=stride,
                           ctc_weight=ctc_weight, frame_dim=train_pairs[0].source.shape[1] if frames else 13,
                           encoder=encoder, decoder=decoder)
    quiet = merged["quiet"]

    def describe(r: dict) -> str:
        text = "  ".join(f"{k} {100 * r[k]:.2f}%" for k in ("wer", "per") if k in r)
        return f"dev {text}" + (f"  bleu {r['bleu']:.2f}" if "bleu" in r else "")

    with progress("training", quiet) as bar:
        saved = train_seq2seq(train_pairs, dev_pairs, merged["out"], config, settings, options,
                              TrainReporter(bar, quiet, describe), force=merged["force"],
                              resume=merged.get("resume"), init=merged.get("init"),
                              meta={"data": {"train": str(train_path), "dev": str(dev_path)}})
    if not is_main_process():
        return
    metrics = saved["metrics"]
    averaged = saved["training"].get("averaged")
    if averaged is not None:
        say(f"mean of epochs {averaged['epochs'][0]}-{averaged['epochs'][-1]}: dev error "
            f"{100 * averaged['error']:.2f}% ({'kept' if averaged['kept'] else 'not kept'})", quiet)
    write(f"saved {merged['out']}: dev wer {100 * metrics['dev_wer']:.2f}% per {100 * metrics['dev_per']:.2f}% "
          f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the seq2seq commands to the CLI."""
    app.command("seq2seq")(seq2seq_cli)
    evaluate_app.command("seq2seq")(evaluate_seq2seq_cli)
    from seqattn.cli.train_options import train_command

    train_app.command("seq2seq")(train_command(train_seq2seq_cli, "seq2seq"))
