"""Node classification as a library: train, load, predict and evaluate graph attention models.

The CLI (seqattn.cli.graph) parses arguments and renders; these functions never print.  Progress
is reported through an optional callback.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqattn.errors import InputError
from seqattn.featurise.graph import features_tensor
from seqattn.models.graph import NodeClassifier, NodeClassifierConfig
from seqattn.models.device import resolve_device
from seqattn.models.io import read_model
from seqattn.readers.graph import Graph, read_planetoid
from seqattn.training.engine import FitSettings

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
class NodeOptions:
    """The node classifier's own training options (the shipped cora recipe by default).

    GRAND's consistency regularisation (Feng et al. 2020, "Graph Random Neural Network", NeurIPS):
    each step runs the model under ``consistency_samples`` dropout masks, and every sample's class
    distribution on every node is pulled (squared error) towards their sharpened mean.  It uses
    the unlabelled nodes' features and edges, never their labels; on Cora it adds about one point
    of test accuracy over plain GAT training (docs/models/cora.md).
    """

    consistency_samples: int = 2  # dropout samples per step (1 = plain GAT training)
    consistency_weight: float = 1.0  # weight of the consistency loss (GRAND's lambda)
    sharpening_temperature: float = 0.5  # GRAND's T: sharpen the mean prediction before matching it

    def check(self) -> None:
        """Raises InputError naming the option of a value out of range."""
        if not 1 <= self.consistency_samples <= 64:
            raise InputError(f"--consistency-samples must be between 1 and 64, got {self.consistency_samples}")
        if not (math.isfinite(self.consistency_weight) and self.consistency_weight >= 0):
            raise InputError(f"--consistency-weight must be >= 0, got {self.consistency_weight}")
        if not (math.isfinite(self.sharpening_temperature) and 0 < self.sharpening_temperature <= 1):
            raise InputError(f"--sharpening-temperature must be in (0, 1], got {self.sharpening_temperature}")


def node_settings(**overrides) -> FitSettings:
    """``fit`` settings of the cora recipe (GAT's, Velickovic et al. 2018, section 3.3), with overrides.

    Adam with L2 5e-4 in the gradient, learning rate 0.005 at every step, no gradient clipping, up
    to 1000 epochs of one full-graph step each, early stopping after 100 epochs without a better
    val accuracy or val loss; a checkpoint every 20 epochs (an epoch is one step).
    """
    return FitSettings(**{"epochs": 1000, "lr": 0.005, "optimizer": "adam", "weight_decay": 5e-4,
                          "schedule": "constant", "warmup_steps": 0, "max_grad_norm": None, "patience": 100,
                          "checkpoint_epochs": 20, "batch_size": 1, **overrides})


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


def _training_loss(model, x, edge_index, train_index, y_train, options: NodeOptions) -> torch.Tensor:
    samples = [model(x, edge_index) for _ in range(max(1, options.consistency_samples))]  # S x (N, C)
    loss = torch.stack([F.cross_entropy(z[train_index], y_train) for z in samples]).mean()
    if len(samples) > 1 and options.consistency_weight:
        loss = loss + options.consistency_weight * consistency_loss(samples, options.sharpening_temperature)
    return loss


def graph_checksum(graph: Graph, nodes: np.ndarray) -> str:
    """sha256 of what training reads from ``graph``: features, edges, and the labels of ``nodes``.

    (Resume checks it: a run continues only on the graph it started on.)
    """
    import hashlib

    import scipy.sparse as sp

    digest = hashlib.sha256()
    features = graph.features
    if sp.issparse(features):
        csr = sp.csr_matrix(features)
        csr.sort_indices()
        parts = [np.asarray(csr.shape, dtype=np.int64), csr.indptr.astype(np.int64), csr.indices.astype(np.int64),
                 csr.data.astype(np.float32)]
    else:
        dense = np.asarray(features, dtype=np.float32)
        parts = [np.asarray(dense.shape, dtype=np.int64), np.ascontiguousarray(dense)]
    for part in parts + [np.ascontiguousarray(graph.edge_index, dtype=np.int64), nodes.astype(np.int64)]:
        digest.update(part.tobytes())
        digest.update(b"|")
    digest.update("\n".join(str(graph.labels[n]) for n in nodes.tolist()).encode())
    return digest.hexdigest()


class NodeTask:
    """Transductive node classification for ``fit``: one full-graph step per epoch, val accuracy picks it.

    The whole graph and every node's features are seen; only the train nodes' labels are learnt
    from (cross-entropy, plus GRAND's consistency loss over all nodes, ``NodeOptions``); the val
    nodes select the epoch (higher val accuracy, ties to the lower val loss) and stop the run (GAT's
    rule: patience counts epochs in which the val accuracy is below the best so far AND the val
    loss above the lowest so far); the test nodes are never read.  Not shardable: under torchrun
    every rank takes the whole graph (the same step, so the averaged gradient is the one-process one).

    Raises (constructor):
        InputError: a graph without features or labels, no labelled train or val node, or classes
            outside ``config.classes``.
    """

    name, metric, higher_is_better, shardable = TASK, "val_accuracy", True, False

    def __init__(self, graph: Graph, config: NodeClassifierConfig, options: NodeOptions, settings: FitSettings):
        if graph.features is None or graph.labels is None:
            raise InputError(f"{graph.source}: training needs node features and labels")
        self.graph, self.options = graph, options
        self.train_nodes, self.val_nodes = _labelled(graph, "train"), _labelled(graph, "val")
        if not len(self.train_nodes) or not len(self.val_nodes):
            raise InputError(f"{graph.source}: training needs labelled nodes in the train and val splits")
        cfg = NodeClassifierConfig.from_dict(config.to_dict())
        cfg.in_features = int(graph.features.shape[1])
        seen = sort_classes({graph.labels[n] for n in self.train_nodes.tolist()}
                            | {graph.labels[n] for n in self.val_nodes.tolist()})
        if cfg.classes and set(seen) - set(cfg.classes):
            raise InputError(f"{graph.source}: classes {sorted(set(seen) - set(cfg.classes))} are not in the config")
        cfg.classes = cfg.classes or seen
        if not cfg.class_names and graph.class_names and len(graph.class_names) == len(cfg.classes):
            cfg.class_names = list(graph.class_names)
        self.cfg = cfg
        fit_id = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items() if k != "device"}
        self._identity = {"options": {"fit": fit_id, "model": cfg.to_dict(), "task": vars(options)},
                          "data": {"data": graph_checksum(graph, np.concatenate([self.train_nodes, self.val_nodes]))}}
        self.top_accuracy, self.low_loss = -1.0, math.inf  # GAT's early-stopping state
        self.device = torch.device("cpu")

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None:
        graph = self.graph
        self.x = features_tensor(graph.features, self.cfg.normalize_features)
        self.edge_index = torch.from_numpy(np.ascontiguousarray(graph.edge_index))
        self.train_index, self.val_index = torch.from_numpy(self.train_nodes), torch.from_numpy(self.val_nodes)
        self.y_train = _class_ids(graph, self.train_nodes, self.cfg.classes)
        self.y_val = _class_ids(graph, self.val_nodes, self.cfg.classes)

    def build_model(self) -> NodeClassifier:
        for name in ("x", "edge_index", "train_index", "val_index", "y_train", "y_val"):
            setattr(self, name, getattr(self, name).to(self.device))
        return NodeClassifier(self.cfg)

    def batches(self, epoch: int, rng) -> list[list[int]]:
        return [self.train_nodes.tolist()]  # one full-graph step; its loss reads every train node

    def loss(self, model: NodeClassifier, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Cross-entropy on the train nodes (mean over dropout samples) + the consistency loss; weight 1."""
        return _training_loss(model, self.x, self.edge_index, self.train_index, self.y_train, self.options), 1.0

    def evaluate(self, model: NodeClassifier) -> dict:
        with torch.no_grad():
            logits = model(self.x, self.edge_index)[self.val_index]
            return {"val_accuracy": (logits.argmax(-1) == self.y_val).float().mean().item(),
                    "val_loss": F.cross_entropy(logits, self.y_val).item()}

    def selection_key(self, metrics: dict) -> list:
        return [metrics["val_accuracy"], -metrics["val_loss"]]

    def progressed(self, metrics: dict) -> tuple[bool, dict]:
        """GAT's rule: progress when val accuracy >= the top so far OR val loss <= the lowest so far."""
        accuracy, loss = metrics["val_accuracy"], metrics["val_loss"]
        progressed = accuracy >= self.top_accuracy or loss <= self.low_loss
        if progressed:
            self.top_accuracy, self.low_loss = max(self.top_accuracy, accuracy), min(self.low_loss, loss)
        return progressed, {"top_accuracy": self.top_accuracy, "low_loss": self.low_loss}

    def restore_stopper(self, state: dict) -> None:
        if state:
            self.top_accuracy, self.low_loss = state["top_accuracy"], state["low_loss"]

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict[str, Path]:
        return {}

    def record(self) -> dict:
        return {"graph": str(self.graph.source)}


def train_node_classifier(
    data: str | Path | Graph,
    out: str | Path | None,
    settings: FitSettings | None = None,
    config: NodeClassifierConfig | None = None,
    options: NodeOptions | None = None,
    reporter=None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
) -> dict:
    """Train a node classifier on a graph's train split through ``fit``, select on its val split, save it.

    Transductive (Planetoid): the whole graph and all node features are visible, only the labels
    of the train nodes are learnt from; the val nodes choose the epoch (highest val accuracy,
    ties to the lower val loss) and stop training (``patience``); the test nodes are not read.

    Args:
        data: a Planetoid-layout directory or a ``Graph`` with features, labels, train and val splits.
        out: model directory to write (None: train and return without saving).
        settings: ``fit`` settings (default ``node_settings()``, the cora recipe; checkpoints every
            ``checkpoint_epochs`` epochs to OUT.checkpoint/).
        config: architecture (in_features and classes are filled in from the data).
        options: the consistency loss (default ``NodeOptions()``).
        reporter: progress callbacks (seqattn.training.engine.Reporter; records hold val_accuracy
            and val_loss).
        meta: extra JSON fields for the saved config (data, license, ...).
        resume: OUT.checkpoint of an interrupted run with the same arguments and graph.
    Returns:
        the saved config dict ("metrics": val_accuracy and val_loss of the chosen epoch;
        "training": the run record); with out=None also "state" (the chosen weights).
    Raises:
        InputError: data without features, labels, or train/val splits; a forbidden ``out`` (an
            existing one without force); a checkpoint of another run or graph.
        ModelError: an unreadable checkpoint, or one of another task.
    """
    from seqattn.training.engine import fit

    settings = settings or node_settings()
    options = options or NodeOptions()
    options.check()
    graph = data if isinstance(data, Graph) else read_planetoid(data)
    task = NodeTask(graph, config or NodeClassifierConfig(), options, settings)
    return fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)
