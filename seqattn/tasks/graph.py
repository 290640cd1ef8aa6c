"""Node classification as a library: train, load, predict and evaluate graph attention models.

The CLI (seqattn.cli.graph) parses arguments and renders; these functions never print.  Progress
is reported through an optional callback.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from seqattn.errors import InputError, ModelError
from seqattn.models.graph import NodeClassifier, NodeClassifierConfig, features_tensor
from seqattn.models.device import resolve_device
from seqattn.models.io import read_model, write_model_dir
from seqattn.readers.graph import Graph, read_planetoid

TASK = "graph"


@dataclass
class NodePredictions:
    """A node classifier's output for one graph.

    classes: predicted class name per node (N); probabilities: its probability (N,);
    attention: per layer, (E + N, heads) weights of the edges in ``edge_index`` (2, E + N), which
    holds the graph's edges plus one self-loop per node (only when asked for).
    """

    classes: list[str]
    class_ids: np.ndarray
    probabilities: np.ndarray
    attention: list[torch.Tensor] | None = None
    edge_index: torch.Tensor | None = None


class LoadedNodeClassifier:
    """A node classifier ready to predict: model in eval mode, config and metadata."""

    def __init__(self, model: NodeClassifier, meta: dict, path: Path):
        self.model, self.meta, self.path = model.eval(), meta, path
        self.device = next(model.parameters()).device  # where it runs (seqattn.models.device)

    @property
    def cfg(self) -> NodeClassifierConfig:
        return self.model.cfg

    def inputs(self, graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """The (features, edge_index) tensors of ``graph`` as this model reads them.

        Raises:
            InputError: the graph has no features, or not as many per node as the model was trained on.
        """
        if graph.features is None:
            raise InputError(f"{graph.source}: the model needs {self.cfg.in_features} features per node; "
                             "give them with --features (CSV or NPZ)")
        if graph.features.shape[1] != self.cfg.in_features:
            raise InputError(f"{graph.source}: {graph.features.shape[1]} features per node, but the model "
                             f"was trained on {self.cfg.in_features}")
        return features_tensor(graph.features, self.cfg.normalize_features), torch.from_numpy(graph.edge_index)

    def predict(self, graph: Graph, with_attention: bool = False) -> NodePredictions:
        """Classify every node of ``graph`` (transductive: the whole graph is seen at once).

        Raises:
            InputError: see ``inputs``.
        """
        x, edge_index = self.inputs(graph)
        with torch.inference_mode():
            logits, weights, looped = self.model(x.to(self.device), edge_index.to(self.device), return_weights=True)
            probabilities = torch.softmax(logits, dim=-1)
            best, ids = (t.cpu() for t in probabilities.max(dim=-1))  # (N,)
            if with_attention:
                weights, looped = [w.cpu() for w in weights], looped.cpu()
        names = self.cfg.display_names()
        return NodePredictions([names[i] for i in ids.tolist()], ids.numpy(), best.numpy(),
                               weights if with_attention else None, looped if with_attention else None)


def load_node_classifier(name_or_path: str | Path = "cora", device: str = "cpu") -> LoadedNodeClassifier:
    """Load the shipped node classifier by name, or a trained one from its directory.

    Args:
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device).
    Raises:
        ModelError: missing, incomplete, damaged or non-graph model directory.
        InputError: an unknown device, or a GPU torch does not see.
    """
    place = resolve_device(device)
    path, meta, _, model = read_model(name_or_path, TASK, NodeClassifierConfig, NodeClassifier, "a node classifier")
    return LoadedNodeClassifier(model.to(place), meta, path)


# --------------------------------------------------------------------------- evaluation


def split_nodes(graph: Graph, split: str) -> np.ndarray:
    """Node numbers of ``split`` ("train", "val", "test" or "all" labelled nodes).

    Raises:
        InputError: the graph has no such split, or no labels.
    """
    if graph.labels is None:
        raise InputError(f"{graph.source}: no node labels to evaluate against")
    if split == "all":
        return np.asarray([i for i, label in enumerate(graph.labels) if label is not None], dtype=np.int64)
    if split not in graph.splits:
        have = ", ".join(sorted(graph.splits)) or "none"
        raise InputError(f"{graph.source}: no {split!r} split (splits: {have}; or use 'all')")
    return graph.splits[split]


def accuracy(predicted: np.ndarray, graph: Graph, nodes: np.ndarray, classes: list[str]) -> tuple[int, int]:
    """(correct, labelled) over ``nodes``; gold classes outside ``classes`` count as errors."""
    index = {c: i for i, c in enumerate(classes)}
    gold = [graph.labels[n] for n in nodes.tolist()]
    pairs = [(int(predicted[n]), index.get(g, -1)) for n, g in zip(nodes.tolist(), gold) if g is not None]
    return sum(p == g for p, g in pairs), len(pairs)


def evaluate_node_classifier(classifier: LoadedNodeClassifier, graph: Graph, split: str = "test") -> dict:
    """Accuracy of ``classifier`` on the labelled nodes of one split of ``graph``.

    Returns:
        {"accuracy": 0..1, "correct", "nodes" (labelled nodes scored), "split", "graph_nodes",
         "edges" (directed, without self-loops), "seconds"}
    Raises:
        InputError: no labels, no such split, no labelled node in it; see ``LoadedNodeClassifier.inputs``.
    """
    nodes = split_nodes(graph, split)
    start = time.perf_counter()
    predicted = classifier.predict(graph)
    seconds = time.perf_counter() - start
    correct, total = accuracy(predicted.class_ids, graph, nodes, classifier.cfg.classes)
    if total == 0:
        raise InputError(f"{graph.source}: the {split!r} split has no labelled node")
    return {"accuracy": round(correct / total, 5), "correct": correct, "nodes": total, "split": split,
            "graph_nodes": graph.n_nodes, "edges": graph.n_edges, "seconds": round(seconds, 3)}


# --------------------------------------------------------------------------- training


@dataclass
class NodeTrainSettings:
    """Optimisation settings of ``train_node_classifier`` (the shipped cora recipe by default).

    GAT's transductive recipe (Velickovic et al. 2018, section 3.3): Adam, learning rate 0.005,
    L2 5e-4, early stopping with patience 100 on the validation loss and accuracy; plus GRAND's
    consistency regularisation (Feng et al. 2020, "Graph Random Neural Network", NeurIPS): each
    step runs the model under ``consistency_samples`` dropout masks, and every sample's class
    distribution on every node is pulled (squared error) towards their sharpened mean.  It uses
    the unlabelled nodes' features and edges, never their labels; on Cora it adds about one point
    of test accuracy over plain GAT training (docs/models/cora.md).
    """

    lr: float = 0.005
    weight_decay: float = 5e-4
    max_epochs: int = 1000
    patience: int = 100  # stop after this many epochs without a better val accuracy or val loss
    consistency_samples: int = 2  # dropout samples per step (1 = plain GAT training)
    consistency_weight: float = 1.0  # weight of the consistency loss (GRAND's lambda)
    sharpening_temperature: float = 0.5  # GRAND's T: sharpen the mean prediction before matching it
    seed: int = 0


@dataclass
class NodeEpochReport:
    """What ``train_node_classifier`` reports after each epoch."""

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    best_val_accuracy: float


def sort_classes(classes) -> list[str]:
    """Class ids in output order: numeric ids by value (Planetoid's 0..C-1), then other names alphabetically."""
    return sorted(classes, key=lambda c: (not c.isdecimal(), int(c) if c.isdecimal() else 0, c))


def _class_ids(graph: Graph, nodes: np.ndarray, classes: list[str]) -> torch.Tensor:
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[graph.labels[n]] for n in nodes.tolist()], dtype=torch.long)


def _labelled(graph: Graph, split: str) -> np.ndarray:
    nodes = split_nodes(graph, split)
    return nodes[[graph.labels[n] is not None for n in nodes.tolist()]] if len(nodes) else nodes


def consistency_loss(logits: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """GRAND's consistency loss: mean squared distance of each sample's distribution to their sharpened mean.

    p_bar = mean_s softmax(logits_s); target = p_bar^(1/T) / sum_c p_bar^(1/T) (no gradient);
    loss = mean_s mean_nodes || softmax(logits_s) - target ||^2   (Feng et al. 2020, eq. 7-8).

    Shapes:
        logits: S x (N, C)  ->  scalar
    """
    probabilities = [torch.softmax(z, dim=-1) for z in logits]
    mean = torch.stack(probabilities).mean(0)  # (N, C)
    sharpened = mean.pow(1.0 / temperature)
    target = (sharpened / sharpened.sum(-1, keepdim=True)).detach()
    return torch.stack([(p - target).pow(2).sum(-1).mean() for p in probabilities]).mean()


def _training_loss(model, x, edge_index, train_index, y_train, settings: NodeTrainSettings) -> torch.Tensor:
    samples = [model(x, edge_index) for _ in range(max(1, settings.consistency_samples))]  # S x (N, C)
    loss = torch.stack([F.cross_entropy(z[train_index], y_train) for z in samples]).mean()
    if len(samples) > 1 and settings.consistency_weight:
        loss = loss + settings.consistency_weight * consistency_loss(samples, settings.sharpening_temperature)
    return loss


def train_node_classifier(
    data: str | Path | Graph,
    out: str | Path | None,
    settings: NodeTrainSettings | None = None,
    config: NodeClassifierConfig | None = None,
    on_epoch: Callable[[NodeEpochReport], None] | None = None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
    checkpoint_every: int = 20,
) -> dict:
    """Train a node classifier on a graph's train split, select on its val split, save it.

    Transductive (Planetoid): the whole graph and all node features are visible, only the labels
    of the train nodes are learnt from; the val nodes choose the epoch (highest val accuracy,
    ties to the lower val loss) and stop training (``patience``); the test nodes are not read.

    Args:
        data: a Planetoid-layout directory or a ``Graph`` with features, labels, train and val splits.
        out: model directory to write (None: train and return without saving).
        config: architecture (in_features and classes are filled in from the data).
        on_epoch: called with a ``NodeEpochReport`` after each epoch.
        meta: extra JSON fields for the saved config (data, license, ...).
        resume: a checkpoint directory of an interrupted run on the same graph (its settings
            and config win over ``settings`` and ``config``).
        checkpoint_every: with ``out``, the whole training state (weights, optimizer, early
            stopping, random state) goes to ``OUT.checkpoint/`` every this many epochs, atomically
            and without pickles; it is removed once the model is saved.  A resumed run reaches
            the weights of an uninterrupted one.
    Returns:
        the saved config dict ("metrics": val accuracy and loss of the chosen epoch; "training":
        seed, settings, epochs, seconds); with out=None also "state" (the chosen weights).
    Raises:
        InputError: data without features, labels, or train/val splits; ModelError: ``out``
        exists and is not empty (no force), an unreadable checkpoint or one of another task or graph.
    """
    from seqattn.models.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
    from seqattn.tasks.training import start_or_resume

    checkpoint_dir = state = tensors = None
    if out is not None:
        out = Path(out)
        checkpoint_dir, state, tensors = start_or_resume(out, force, resume, TASK)
    elif resume is not None:
        state, tensors = read_checkpoint(resume)
    if state is not None:
        if state["extra"].get("task") != TASK:
            raise ModelError(f"{resume}: not a checkpoint of a {TASK} model")
        settings = NodeTrainSettings(**state["extra"]["settings"])
        config = NodeClassifierConfig.from_dict(state["extra"]["config"])
    settings = settings or NodeTrainSettings()
    graph = data if isinstance(data, Graph) else read_planetoid(data)
    if graph.features is None or graph.labels is None:
        raise InputError(f"{graph.source}: training needs node features and labels")
    train_nodes, val_nodes = _labelled(graph, "train"), _labelled(graph, "val")
    if not len(train_nodes) or not len(val_nodes):
        raise InputError(f"{graph.source}: training needs labelled nodes in the train and val splits")
    cfg = config or NodeClassifierConfig()
    cfg.in_features = int(graph.features.shape[1])
    seen = sort_classes({graph.labels[n] for n in train_nodes.tolist()} | {graph.labels[n] for n in val_nodes.tolist()})
    if cfg.classes and set(seen) - set(cfg.classes):
        raise InputError(f"{graph.source}: classes {sorted(set(seen) - set(cfg.classes))} are not in the config")
    cfg.classes = cfg.classes or seen
    if not cfg.class_names and graph.class_names and len(graph.class_names) == len(cfg.classes):
        cfg.class_names = list(graph.class_names)

    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    x, edge_index = features_tensor(graph.features, cfg.normalize_features), torch.from_numpy(graph.edge_index)
    y_train, y_val = _class_ids(graph, train_nodes, cfg.classes), _class_ids(graph, val_nodes, cfg.classes)
    train_index, val_index = torch.from_numpy(train_nodes), torch.from_numpy(val_nodes)
    model = NodeClassifier(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    shuffler = random.Random(settings.seed)  # unused by full-batch training; kept for the checkpoint format
    start = time.perf_counter()
    best_key, best_state, best_epoch = (-1.0, 0.0), None, 0
    top_accuracy, low_loss, waited, epoch, first_epoch, seconds_before = -1.0, float("inf"), 0, 0, 1, 0.0
    if state is not None:
        if cfg.in_features != state["extra"]["config"]["in_features"]:
            raise ModelError(f"{resume}: the checkpoint's graph has {state['extra']['config']['in_features']} "
                             f"features per node, {graph.source} has {cfg.in_features}")
        best_state = restore_checkpoint(state, tensors, model=model, optimizer=optimizer, scheduler=None,
                                        shuffler=shuffler, generator=None)
        stopping = state["extra"]["early_stopping"]
        best_key, best_epoch = tuple(stopping["best_key"]), stopping["best_epoch"]
        top_accuracy, low_loss, waited = stopping["top_accuracy"], stopping["low_loss"], stopping["waited"]
        first_epoch, epoch, seconds_before = state["epoch"] + 1, state["epoch"], state["extra"]["seconds"]
    for epoch in range(first_epoch, settings.max_epochs + 1):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = _training_loss(model, x, edge_index, train_index, y_train, settings)
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x, edge_index)[val_index]
            val_loss = F.cross_entropy(logits, y_val).item()
            val_accuracy = (logits.argmax(-1) == y_val).float().mean().item()
        if val_accuracy >= top_accuracy or val_loss <= low_loss:  # GAT's early-stopping rule
            if (val_accuracy, -val_loss) > best_key:
                best_key, best_epoch = (val_accuracy, -val_loss), epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            top_accuracy, low_loss = max(top_accuracy, val_accuracy), min(low_loss, val_loss)
            waited = 0
        else:
            waited += 1
        if on_epoch:
            on_epoch(NodeEpochReport(epoch, settings.max_epochs, loss.item(), val_loss, val_accuracy, best_key[0]))
        if waited >= settings.patience:
            break
        if checkpoint_dir is not None and epoch % checkpoint_every == 0:
            save_checkpoint(checkpoint_dir, model=model, optimizer=optimizer, scheduler=None, shuffler=shuffler,
                            generator=None, epoch=epoch, best_state=best_state,
                            extra={"task": TASK, "config": cfg.to_dict(), "settings": vars(settings),
                                   "seconds": seconds_before + time.perf_counter() - start,
                                   "early_stopping": {"best_key": list(best_key), "best_epoch": best_epoch,
                                                      "top_accuracy": top_accuracy, "low_loss": low_loss,
                                                      "waited": waited}})
    seconds = seconds_before + time.perf_counter() - start
    saved = {
        "task": TASK,
        "config": cfg.to_dict(),
        "training": {"data": str(graph.source), "seed": settings.seed, "settings": vars(settings),
                     "epochs": epoch, "best_epoch": best_epoch, "seconds": round(seconds, 1),
                     "torch_threads": torch.get_num_threads()},
        "metrics": {"val_accuracy": round(best_key[0], 5), "val_loss": round(-best_key[1], 5)},
        **(meta or {}),
    }
    if out is not None:
        write_model_dir(out, saved, best_state, force=force)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    else:
        saved["state"] = best_state
    return saved
