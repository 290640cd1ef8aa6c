"""`seqattn tokenize`: sentences, words with character offsets, and sentencepiece pieces, from the shell."""

from __future__ import annotations

from typing import Optional

import typer

from seqattn.readers.text import MAX_LINE_BYTES

FORMATS = ("pretty", "tsv", "jsonl", "conllu")
FORMATS_HELP = ("pretty (terminal default) | tsv (pipe default: word<TAB>start<TAB>end<TAB>pieces) | jsonl "
                "(one object per sentence) | conllu (SpaceAfter=No, TokenRange=start:end)")


def tokenize_cli(
    file: str = typer.Argument(None, help="Text file; '-' or nothing reads stdin.", show_default=False),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    spm: Optional[str] = typer.Option(None, "--spm", help="Sentencepiece model file for the pieces; default: "
                                      "the shipped tagger's (en-upos subwords.model).", show_default=False),
    pieces_only: bool = typer.Option(False, "--pieces-only", help="Only pieces, one line per input line, as "
                                     "spm_encode --output_format=piece writes them (no words, no offsets)."),
    max_line_bytes: int = typer.Option(MAX_LINE_BYTES, "--max-line-bytes", help="Read a longer line in pieces "
                                       "of this many bytes (memory stays bounded); a sentence that runs on "
                                       "past a piece is cut, with a message on stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Split text into sentences and words (the UD English words `seqattn tag` uses), each word with
    its character offsets in the input line and its sentencepiece pieces.

    Offsets are Unicode code points from the start of the line, end exclusive (line[start:end] is
    the word).  An empty input line is kept: an extra blank line (tsv), an object without words
    (jsonl), '# newpar' before the next sentence (conllu).  Output is written line by line as the
    input comes.
    """
    import sys

    from seqattn.cli.common import check_max_line_bytes, choose_format, console, say, stdout_is_terminal, write
    from seqattn.errors import InputError
    from seqattn.readers.text import open_text
    from seqattn.readers.tokenize import Break, Pieces, default_model_path, iter_line_pieces, iter_sentences
    from seqattn.render import tokens as render

    if pieces_only and format is not None:
        raise InputError("--pieces-only writes pieces as spm_encode does; leave out --format")
    fmt = "pieces" if pieces_only else choose_format(format, FORMATS)
    check_max_line_bytes(max_line_bytes)
    if file is None:
        if sys.stdin.isatty():
            raise InputError("no input: give a FILE, or '-' and pipe text into seqattn tokenize")
        file = "-"

    with open_text(file, max_line_bytes) as lines:  # first, so a missing file is reported before the model loads
        pieces = Pieces(spm if spm is not None else default_model_path())
        if fmt == "pieces":
            from seqattn.render.safe import printable

            escape = printable if stdout_is_terminal() else str  # data stays as given, except on a terminal
            for line_pieces in iter_line_pieces(lines, pieces):
                write(escape(" ".join(line_pieces)) + "\n")
            return
        out = console() if fmt == "pretty" else None
        new_paragraph = False
        for item in iter_sentences(lines, pieces, warn=lambda message: say(message, quiet)):
            if isinstance(item, Break):  # an empty input line: keep it, so outputs line up with inputs
                new_paragraph = True
                if fmt == "pretty":
                    out.print()
                elif fmt == "tsv":
                    write("\n")
                elif fmt == "jsonl":
                    write(render.jsonl(None, item.line))
                continue
            if fmt == "pretty":
                out.print(render.pretty(item))
            elif fmt == "tsv":
                write(render.tsv(item))
            elif fmt == "jsonl":
                write(render.jsonl(item))
            else:
                write(render.conllu(item, new_paragraph))
            new_paragraph = False


def register(app: typer.Typer) -> None:
    """Add `seqattn tokenize` to the CLI."""
    app.command("tokenize")(tokenize_cli)
