"""``--attention-out FILE``: declared once for every command that exports attention (seqattn.export).

API (what a command such as ``seqattn classify`` uses)::

    from seqattn.cli.attention_out import attention_out_option, check_out, finish

    def classify_cli(..., attention_out: Optional[Path] = attention_out_option(), ...):
        out = check_out(attention_out, [file], attention_kind)  # before any input is read
        collector = RecordCollector() if out else None         # seqattn.export
        ... collector.add(record) per input ...
        finish(out, collector, selection, quiet)                # writes, says where on stderr

The export holds the raw weights of every layer and head; ``--layer``/``--head`` choose what
a picture (.svg, .png) shows and what the page (.html) opens on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import typer

from seqattn.errors import InputError

HELP = ("Also write every layer's and head's attention to this file; the suffix chooses the format: .html "
        "(interactive page, one file, works offline), .svg or .png (a picture of --layer/--head), .npz (raw "
        "weights). See docs/attention.md.")


def attention_out_option():
    """``--attention-out FILE`` (a typer option; the command's parameter is an Optional[Path])."""
    return typer.Option(None, "--attention-out", help=HELP, show_default=False)


def check_out(path: Optional[Path], inputs: Iterable = (), kind: str = "raw") -> Optional[Path]:
    """The checked ``--attention-out`` (None when not given), before any input is read.

    Raises:
        InputError: the path is refused (seqattn.export.output), or ``--attention-kind rollout``
            was asked for too.
    """
    if path is None:
        return None
    from seqattn.export import check_attention_out

    out = check_attention_out(path, [str(p) for p in inputs if p is not None])
    if kind == "rollout":
        raise InputError("--attention-out exports the raw weights of every layer and head (the rollout can be "
                         "computed from them: seqattn.analysis.rollout); drop --attention-kind rollout, or run "
                         "it without --attention-out")
    return out


def panels_of(selection) -> Optional[list]:
    """(layer, head or None) pairs of an ``AttentionSelection`` (seqattn.cli.attention_options)."""
    if selection is None:
        return None
    return [(p.layer, p.head) for p in selection.panels]


def finish(out: Optional[Path], records, selection=None, quiet: bool = False, which: Optional[str] = None,
           dropped: int = 0, kept_what: str = "inputs", panels: Optional[list] = None) -> None:
    """Write the export (if asked for) and say on stderr where it went, and what the cap left out.

    ``selection`` (or ``panels``, (layer, head) pairs) chooses what a picture shows.
    """
    if out is None:
        return
    from seqattn.cli.common import say
    from seqattn.export import export_attention

    fmt = export_attention(out, records, panels if panels is not None else panels_of(selection), which=which)
    if dropped:
        say(f"--attention-out {out}: kept the first {len(records):,} {kept_what}; {dropped:,} more "
            f"{'was' if dropped == 1 else 'were'} not exported (the cap that keeps memory bounded)")
    elif fmt in ("svg", "png") and len(records) > 1:
        say(f"--attention-out {out}: a picture shows the first of {len(records):,} {kept_what}; .html or .npz "
            "hold them all", quiet)
    else:
        say(f"wrote {out}", quiet)
