"""--layer, --head and --attention-kind: declared once, parsed once, for every command that shows attention.

API (what a command such as ``seqattn classify`` uses):

    from seqattn.cli.attention_options import head_option, kind_option, layer_option, parse_request

    def classify_cli(..., attention: bool = ...,
                     layer: str = layer_option(),           # "-1" (default), "0", "2", "all"
                     head: Optional[str] = head_option(),   # None / "mean" (default), "3", "all"
                     attention_kind: str = kind_option(),   # "raw" (default) or "rollout"
                     ...):
        request = parse_request(layer, head, attention_kind)  # syntax: before any file or model is read
        ...load the model...
        selection = request.resolve(n_layers, n_heads)        # ranges: once the model is known
        for panel in selection.panels:                        # what to draw, in order
            panel.layer    # 0-based layer
            panel.head     # 0-based head, or None for the mean over heads
            panel.title    # "layer 2, mean of heads", "layer 0, head 1", "rollout through layer 1"
        selection.single                                      # one map (draw it) or several (a grid)
        selection.kind                                        # "raw" or "rollout"

``parse_request`` and ``resolve`` raise ``InputError`` (one line on stderr, exit code 2) for
``--layer x``, ``--head x``, ``--layer 9`` on a 2-layer model, ``--head 4`` with 4 heads, and
``--attention-kind rollout`` with one head or every head (rollout averages the heads of each
layer; a head of one layer has no counterpart in the next).  A command whose model has no
rollout passes ``rollout_refusal`` (the reason, one line) to ``parse_request``.

Rollout through layer l is R_l = Ã_l ... Ã_1 (seqattn.analysis.rollout); ``--layer all`` with
rollout draws R_1 .. R_L, the flow after each layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import typer

from seqattn.errors import InputError

KINDS = ("raw", "rollout")


def layer_option(default: str = "-1"):
    """``--layer L|all`` (a typer option; the command's parameter is a str)."""
    return typer.Option(default, "--layer", help="Layer whose attention --attention shows: 0-based, negative from "
                        "the last (-1 = last), or 'all' (a map per layer).")


def head_option(default: Optional[str] = None):
    """``--head H|mean|all`` (a typer option; the command's parameter is an Optional[str])."""
    return typer.Option(default, "--head", help="Head to show: 0-based, 'mean' (the mean over heads; the default) "
                        "or 'all' (a map per head).", show_default=default is not None)


def kind_option():
    """``--attention-kind raw|rollout`` (a typer option; the command's parameter is a str)."""
    return typer.Option("raw", "--attention-kind", help="raw (each layer's own weights) | rollout (attention "
                        "flow from the input through the layers up to --layer, mean of heads; Abnar & Zuidema "
                        "2020; docs/attention.md).")


@dataclass(frozen=True)
class Panel:
    """One map to draw: a layer, a head (None = mean over heads) and its title."""

    layer: int
    head: Optional[int]
    title: str  # "layer 2, mean of heads", "layer 0, head 1", "rollout through layer 1"
    short: str  # for a panel of a grid: "L2 mean", "L0 h1", "rollout L1"


@dataclass(frozen=True)
class AttentionSelection:
    """What to draw, resolved against a model's layers and heads (``AttentionRequest.resolve``)."""

    kind: str  # "raw" or "rollout"
    panels: tuple[Panel, ...]
    n_layers: int
    n_heads: int

    @property
    def single(self) -> bool:
        return len(self.panels) == 1

    @property
    def grid_title(self) -> str:
        """A line over a grid of panels that says how to read their short titles."""
        what = "rollout through layer L (mean of heads)" if self.kind == "rollout" else \
            "L<layer> h<head> (mean: the mean of the heads)"
        return f"{len(self.panels)} maps: {what}; one scale for all"

    @property
    def layers(self) -> tuple[int, ...]:
        """The distinct layers of the panels, in order."""
        return tuple(dict.fromkeys(p.layer for p in self.panels))


@dataclass(frozen=True)
class AttentionRequest:
    """``--layer``, ``--head`` and ``--attention-kind`` as given, checked for syntax only."""

    layer: Union[int, str]  # an int, or "all"
    head: Union[int, str]  # an int, "mean" or "all"
    kind: str = "raw"

    def resolve(self, n_layers: int, n_heads: int) -> AttentionSelection:
        """The panels to draw for a model of ``n_layers`` layers of ``n_heads`` heads.

        Raises:
            InputError: a layer or head outside the model's.
        """
        if self.layer == "all":
            layers = list(range(n_layers))
        else:
            if not -n_layers <= self.layer < n_layers:
                raise InputError(f"--layer {self.layer} is outside the model's {n_layers} layers "
                                 f"(0..{n_layers - 1}, -1 for the last, or all)")
            layers = [self.layer % n_layers]
        if self.head == "all":
            heads: list[Optional[int]] = list(range(n_heads))
        elif self.head == "mean":
            heads = [None]
        else:
            if not 0 <= self.head < n_heads:
                raise InputError(f"--head {self.head} is outside the model's {n_heads} heads "
                                 f"(0..{n_heads - 1}, mean or all)")
            heads = [self.head]
        panels = tuple(Panel(layer, head, *_titles(self.kind, layer, head)) for layer in layers for head in heads)
        return AttentionSelection(self.kind, panels, n_layers, n_heads)


def _titles(kind: str, layer: int, head: Optional[int]) -> tuple[str, str]:
    if kind == "rollout":
        return f"rollout through layer {layer}", f"rollout L{layer}"
    return (f"layer {layer}, " + ("mean of heads" if head is None else f"head {head}"),
            f"L{layer} " + ("mean" if head is None else f"h{head}"))


def _parse_int(option: str, text: str, words: tuple[str, ...]) -> Union[int, str]:
    value = text.strip().lower()
    if value in words:
        return value
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a number or {' or '.join(words)}") from None


def parse_request(layer: Union[str, int] = "-1", head: Union[str, int, None] = None, kind: str = "raw",
                  rollout_refusal: Optional[str] = None) -> AttentionRequest:
    """``--layer``, ``--head`` and ``--attention-kind`` as given on the command line, checked.

    Args:
        layer: "-1", "0", ..., or "all".
        head: None or "mean" (the mean over heads), "0", ..., or "all".
        kind: "raw" or "rollout".
        rollout_refusal: the reason this command has no rollout (raised when it is asked for).
    Raises:
        InputError: a value that is not a number or one of the words; an unknown kind; rollout
            where refused, or with ``--head`` other than mean.
    """
    parsed_layer = _parse_int("--layer", str(layer), ("all",))
    parsed_head = "mean" if head is None else _parse_int("--head", str(head), ("mean", "all"))
    if kind not in KINDS:
        raise InputError(f"unknown --attention-kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "rollout":
        if rollout_refusal is not None:
            raise InputError(rollout_refusal)
        if parsed_head != "mean":
            raise InputError(f"--attention-kind rollout averages the heads of each layer (Abnar & Zuidema 2020); "
                             f"drop --head {head}, or use --attention-kind raw to see one head")
    return AttentionRequest(parsed_layer, parsed_head, kind)
