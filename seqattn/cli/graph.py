"""`seqattn graph`, `seqattn evaluate graph`, `seqattn train graph`: node classification from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqattn.cli.attention_options import head_option, kind_option, layer_option
from seqattn.cli.attention_out import attention_out_option
from seqattn.models.device import DEVICE_HELP

FORMATS_HELP = "pretty (terminal default) | tsv (pipe default: node<TAB>class<TAB>probability) | jsonl"
NO_ROLLOUT = ("--attention-kind rollout is not offered for graph: a GAT layer has no residual connection for "
              "rollout's 0.5 I to stand for, and a node's rollout row spans its whole L-hop neighbourhood "
              "(docs/attention.md); use --attention-kind raw")
GRAPH_HELP = ("A Planetoid-layout directory (features.npz, labels.txt, edges.txt, *_idx.txt) or a graph file: "
              "edge list (.tsv/.txt/.csv: source target [weight]), node-link .json, .graphml or .gml.")


def graph_cli(
    graph: Optional[str] = typer.Argument(None, help=GRAPH_HELP + " '-' or nothing reads stdin.", show_default=False),
    input_format: Optional[str] = typer.Option(None, "--input-format", "-i", help="edgelist | json | graphml | gml "
                                               "(default: from the file name; stdin: edgelist).", show_default=False),
    features: Optional[Path] = typer.Option(None, "--features", help="Node features: CSV (node,f1,f2,...) "
                                            "or NPZ (dense, or scipy sparse).", show_default=False),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Node classes: 'node<TAB>class' lines, or one "
                                          "class per line in node order (adds a gold column).", show_default=False),
    model: str = typer.Option("cora", "--model", "-m", help="Shipped model name or model directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help=FORMATS_HELP, show_default=False),
    attention: Optional[str] = typer.Option(None, "--attention", help="Show this node's neighbours and the "
                                            "weight each layer's heads give them.", show_default=False),
    layer: str = layer_option("all"),
    head: Optional[str] = head_option("all"),
    attention_kind: str = kind_option(),
    attention_out: Optional[Path] = attention_out_option(),
    directed: bool = typer.Option(False, "--directed", help="Read an edge list as directed (a b: a -> b)."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No messages on stderr."),
) -> None:
    """Classify every node of a graph with self-attention along its edges (shipped model: cora)."""
    from seqattn.cli.attention_options import parse_request
    from contextlib import ExitStack

    from seqattn.cli.common import GRAPH_STDIN_MAX_BYTES, STDIN_NAME, choose_format, say, stdin_as_file, wants_stdin
    from seqattn.errors import InputError
    from seqattn.models.device import check_device
    from seqattn.readers.graph import FORMATS, read_graph

    fmt = choose_format(format, ("pretty", "tsv", "jsonl"))
    check_device(device)
    if input_format is not None and input_format not in FORMATS:
        raise InputError(f"unknown --input-format {input_format!r}; expected one of {', '.join(FORMATS)}")
    request = parse_request(layer, head, attention_kind, rollout_refusal=NO_ROLLOUT)
    from seqattn.cli.attention_out import check_out

    export_to = check_out(attention_out, [graph, features, labels], attention_kind)
    with ExitStack() as stack:  # first: bad input before the model loads
        if wants_stdin(graph):
            path = stack.enter_context(stdin_as_file(max_bytes=GRAPH_STDIN_MAX_BYTES))
            data = read_graph(path, features, labels, fmt=input_format or "edgelist", directed=directed)
            data.source = STDIN_NAME
        else:
            data = read_graph(graph, features, labels, fmt=input_format, directed=directed)
    node = data.index_of(attention) if attention is not None else None
    from seqattn.tasks.graph import load_node_classifier

    classifier = load_node_classifier(model, device)
    wanted = node is not None or export_to is not None
    columns = _attention_columns(request, classifier.cfg) if wanted else None
    result = classifier.predict(data, with_attention=wanted)
    if data.self_loops_dropped or data.duplicates_dropped:  # after any error: an error is one line alone
        from seqattn.render.safe import printable

        say(f"{printable(data.source)}: dropped {data.self_loops_dropped:,} self-loops and "
            f"{data.duplicates_dropped:,} duplicate edges (every node attends to itself once)", quiet)
    if node is not None:
        _show_attention(data, result, classifier, node, fmt, columns)
    else:
        _show_classes(data, result, classifier.cfg, fmt)
    if export_to is not None:
        from seqattn.cli.attention_out import finish
        from seqattn.export import graph_record

        record = graph_record(str(data.source), data.nodes, result.edge_index, result.attention, result.classes, node,
                              f"{data.n_nodes:,} nodes, {data.n_edges:,} directed edges; model {model}")
        finish(export_to, [record], quiet=quiet, panels=columns, kept_what="graphs")


def _show_classes(data, result, cfg, fmt: str) -> None:
    from seqattn.cli.common import console, write
    from seqattn.render.json_line import json_line

    names = dict(zip(cfg.classes, cfg.display_names()))  # gold class ids read as the model's names
    gold = None if data.labels is None else [None if g is None else names.get(g, g) for g in data.labels]
    if fmt == "tsv":
        write("".join(f"{n}\t{c}\t{p:.4f}\n" for n, c, p in zip(data.nodes, result.classes, result.probabilities)))
    elif fmt == "jsonl":
        lines = []
        for k, (n, c, p) in enumerate(zip(data.nodes, result.classes, result.probabilities)):
            record = {"node": n, "class": c, "probability": round(float(p), 4)}
            if gold is not None:
                record["gold"] = gold[k]
            lines.append(json_line(record, ensure_ascii=False))
        write("".join(lines))
    else:
        from rich.table import Table
        from rich.text import Text

        from seqattn.render.safe import printable

        def cell(value) -> Text:  # node ids and class names are shown as given, never read as markup
            return Text(printable(value))

        table = Table(title=cell(f"{data.source}: {data.n_nodes:,} nodes, {data.n_edges:,} directed edges"))
        for column in ("node", "class", "probability") + (("gold",) if gold is not None else ()):
            table.add_column(column, justify="right" if column == "probability" else "left")
        for k, (n, c, p) in enumerate(zip(data.nodes, result.classes, result.probabilities)):
            table.add_row(cell(n), cell(c), f"{p:.3f}",
                          *((cell(gold[k] if gold[k] is not None else "-"),) if gold is not None else ()))
        console().print(table)


def _attention_columns(request, cfg) -> list[tuple[int, int | None]]:
    """(layer, head; None for the mean of heads) of each weight column that --layer and --head ask for.

    The output layer of a GAT has its own number of heads (``out_heads``); a head it lacks is
    left out of ``--layer all``.
    Raises:
        InputError: a layer or head the model lacks (seqattn.cli.attention_options).
    """
    from seqattn.errors import InputError

    heads = [cfg.n_heads] * (cfg.n_layers - 1) + [cfg.out_heads]
    selection = request.resolve(cfg.n_layers, max(heads))
    columns = [(p.layer, p.head) for p in selection.panels if p.head is None or p.head < heads[p.layer]]
    if not columns:
        layer = selection.panels[0].layer
        raise InputError(f"--head {request.head} is outside layer {layer}'s {heads[layer]} head(s) "
                         f"(0..{heads[layer] - 1}, mean or all)")
    return columns


def _show_attention(data, result, classifier, node: int, fmt: str, columns: list[tuple[int, int | None]]) -> None:
    """The edges into ``node`` (its neighbours and itself) with the weight of each (layer, head) in
    ``columns`` (head None: the mean of the layer's heads); jsonl keeps every layer and head."""
    from seqattn.cli.common import console, write
    from seqattn.render.json_line import json_line

    into = (result.edge_index[1] == node).nonzero().flatten()  # edges j -> node, self-loop included
    sources = result.edge_index[0, into].tolist()
    per_layer = [w[into] for w in result.attention]  # L x (neighbours, heads)
    order = sorted(range(len(sources)), key=lambda r: -float(per_layer[0][r].mean()))
    name = data.nodes[node]

    def weight(r: int, layer: int, head: int | None) -> float:
        w = per_layer[layer][r]
        return float(w.mean() if head is None else w[head])

    if fmt == "tsv":
        write("".join(f"{name}\t{data.nodes[sources[r]]}\t{layer}\t{'mean' if head is None else head}\t"
                      f"{weight(r, layer, head):.4f}\n" for r in order for layer, head in columns))
    elif fmt == "jsonl":
        write("".join(json_line({"node": name, "neighbour": data.nodes[sources[r]],
                                 "class": result.classes[sources[r]],
                                 "weights": [[round(float(v), 4) for v in w[r]] for w in per_layer]},
                                ensure_ascii=False) for r in order))
    else:
        from seqattn.render.graph import neighbour_table

        out = console()
        rows = [(str(data.nodes[sources[r]]) + (" (self)" if sources[r] == node else ""), result.classes[sources[r]],
                 [weight(r, layer, head) for layer, head in columns]) for r in order]
        names = [f"L{layer}" + ("mean" if head is None else f"h{head}") for layer, head in columns]
        title = (f"node {name}: {result.classes[node]} ({result.probabilities[node]:.3f}); "
                 f"attention over its {len(sources) - 1} neighbours and itself")
        caption = ("L<layer>h<head>: each column sums to 1 (a softmax over the node's incoming edges; L<layer>mean: "
                   "the mean of the layer's heads); rows by layer-0 mean weight")
        for line in neighbour_table(title, rows, names, caption, width=out.width):
            out.print(line)


def evaluate_graph_cli(
    data: str = typer.Option(..., "--data", "-d", help="Planetoid-layout directory with labels and splits."),
    split: str = typer.Option("test", "--split", help="train | val | test | all (every labelled node)."),
    model: str = typer.Option("cora", "--model", "-m", help="Shipped model name or model directory."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="pretty | json", show_default=False),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Node classification accuracy of a model on one split of a labelled graph."""
    import json

    from seqattn.cli.common import choose_format, write
    from seqattn.errors import InputError
    from seqattn.readers.graph import read_planetoid
    from seqattn.models.device import check_device

    fmt = choose_format(format, ("pretty", "json"), pipe_default="json")
    check_device(device)
    if split not in ("train", "val", "test", "all"):
        raise InputError(f"unknown --split {split!r}; expected train, val, test or all")
    graph = read_planetoid(data)
    from seqattn.tasks.graph import evaluate_node_classifier, load_node_classifier

    classifier = load_node_classifier(model, device)
    result = {"data": str(data), "model": model, "device": str(classifier.device),
              **evaluate_node_classifier(classifier, graph, split)}
    if fmt == "json":
        write(json.dumps(result) + "\n")
    else:
        write(f"accuracy {100 * result['accuracy']:.2f}% on the {result['nodes']:,} {split} nodes "
              f"({result['correct']:,} correct); graph of {result['graph_nodes']:,} nodes, "
              f"{result['edges']:,} directed edges, {result['seconds']:.2f} s\n")


def train_graph_cli(
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Planetoid-layout directory (train and val "
                                       "splits used).", show_default=False),
    class_names: Optional[str] = typer.Option(None, "--class-names", help="Comma-separated names of the class "
                                              "ids 0, 1, ... in order (default: classes.txt, else the ids).",
                                              show_default=False),
    consistency_samples: Optional[int] = typer.Option(None, "--consistency-samples", help="Dropout samples per "
                                                      "step for GRAND's consistency loss (1: plain GAT training).",
                                                      show_default=False),
    consistency_weight: Optional[float] = typer.Option(None, "--consistency-weight", help="Weight of the "
                                                       "consistency loss.", show_default=False),
    sharpening_temperature: Optional[float] = typer.Option(None, "--sharpening-temperature", help="Temperature "
                                                           "that sharpens the samples' mean, in (0, 1].",
                                                           show_default=False),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", hidden=True, help="Old name of --epochs.",
                                             show_default=False),
    **shared,
) -> None:
    """Train a graph attention node classifier (the recipe of the shipped cora model).

    --layers, --d-model (hidden size: heads x head size), --heads, --dropout (inputs and attention
    weights) and --score gat|dot|additive (along edges) choose the architecture.  Every 20 epochs
    (--checkpoint-every N: every N; one epoch is one step on the whole graph) the training state is
    saved to OUT.checkpoint/; after an interruption (even kill -9) the same command with --resume
    OUT.checkpoint continues where it stopped.
    """
    from seqattn.cli.common import progress, say, write
    from seqattn.cli.train_options import (TrainReporter, annotations_of, fit_settings, gather, is_main_process,
                                           model_options, required)
    from seqattn.errors import InputError
    from seqattn.models.graph import NodeClassifierConfig
    from seqattn.nn.graph_attention import GRAPH_SCORES
    from seqattn.readers.graph import read_planetoid
    from seqattn.tasks.graph import NodeOptions, node_settings, sort_classes, train_node_classifier

    own = ("consistency_samples", "consistency_weight", "sharpening_temperature")
    merged = gather("graph", {"data": data, "class_names": class_names, "max_epochs": max_epochs,
                              **dict(zip(own, (consistency_samples, consistency_weight, sharpening_temperature))),
                              **shared}, annotations_of(train_graph_cli))
    if merged.get("max_epochs") is not None and merged.get("epochs") is None:
        merged["epochs"] = merged["max_epochs"]
    required(merged, "data", "out")
    for name, why in (("batch_size", "every step takes the whole graph"),
                      ("warmup_steps", "the learning rate is constant")):
        if merged.get(name) is not None:
            raise InputError(f"--{name.replace('_', '-')} does not apply to train graph ({why})")
    score = merged.get("score")  # the graph scores: gat (the recipe's), dot, additive
    if score is not None and score not in GRAPH_SCORES:
        raise InputError(f"--score {score!r}: expected one of {', '.join(GRAPH_SCORES)}")
    options = model_options({**merged, "score": None}, "graph", applies=("layers", "d_model", "heads", "dropout",
                                                                          "score"))
    settings = fit_settings(node_settings(), merged)
    if settings.checkpoint_every:  # one step per epoch: every N steps is every N epochs
        settings.checkpoint_epochs, settings.checkpoint_every = settings.checkpoint_every, 0
    config = NodeClassifierConfig()
    if options.layers is not None:
        config.n_layers = options.layers
    if options.heads is not None:
        config.n_heads = options.heads
    hidden = options.d_model if options.d_model is not None else config.n_heads * config.d_head
    if options.d_model is not None or options.heads is not None:
        if hidden % config.n_heads:
            raise InputError(f"--d-model {hidden} is not divisible by --heads {config.n_heads}")
        config.d_head = hidden // config.n_heads
    if options.dropout is not None:
        config.dropout = config.attention_dropout = options.dropout
    if score is not None:
        config.score = score
    node_options = NodeOptions(**{k: merged[k] for k in own if merged.get(k) is not None})
    node_options.check()
    graph = read_planetoid(merged["data"])
    if merged.get("class_names") is not None:
        names = [n.strip() for n in merged["class_names"].split(",")]
        classes = sort_classes({c for c in graph.labels if c is not None})
        if len(names) != len(classes) or not all(n for n in names):
            raise InputError(f"--class-names gives {len(names)} names for the {len(classes)} classes of "
                             f"{merged['data']}")
        config.classes, config.class_names = classes, names
    quiet = merged["quiet"]

    def describe(record: dict) -> str:
        return f"val accuracy {100 * record['val_accuracy']:.1f}% loss {record['val_loss']:.3f}"

    with progress("training", quiet) as bar:
        saved = train_node_classifier(graph, merged["out"], settings, config, node_options,
                                      TrainReporter(bar, quiet, describe), force=merged["force"],
                                      resume=merged.get("resume"))
    if is_main_process():
        say(f"stopped after {saved['training']['epochs_run']} epochs (best epoch {saved['training']['best_epoch']})",
            quiet)
        write(f"saved {merged['out']}: val accuracy {100 * saved['metrics']['val_accuracy']:.2f}% "
              f"after {saved['training']['seconds']:.0f} s\n")


def register(app: typer.Typer, evaluate_app: typer.Typer, train_app: typer.Typer) -> None:
    """Add the graph commands to the CLI."""
    app.command("graph")(graph_cli)
    evaluate_app.command("graph")(evaluate_graph_cli)
    from seqattn.cli.train_options import train_command

    train_app.command("graph")(train_command(train_graph_cli, "graph"))
