"""Whole-graph prediction (N -> 1) as a library: train and score ``GraphPredictor`` on molecules.

MoleculeNet (Wu et al. 2018) tasks from ../shared/data/moleculenet: ESOL (log solubility,
regression, RMSE) and BBBP (blood-brain-barrier penetration, binary, ROC-AUC), on the scaffold
split.  The valid molecules choose the epoch; the test molecules are scored once, with that epoch's
weights.  These functions never print; ``on_epoch`` reports progress.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from seqattn.errors import InputError
from seqattn.models.graph import GraphPredictor, GraphPredictorConfig
from seqattn.readers.molecules import ATOM_FEATURES, Molecule, batch_molecules
from seqattn.tasks.training import optimizer_step


def rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error, in the target's units."""
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(target)) ** 2)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > score of a random negative).

    Computed from ranks (Mann-Whitney U; ties count one half), O(n log n).
    Raises:
        InputError: the labels are not 0/1, or hold only one class.
    """
    from scipy.stats import rankdata

    labels = np.asarray(labels)
    if not np.isin(labels, (0, 1)).all():
        raise InputError("ROC-AUC needs 0/1 labels")
    positives, negatives = int(labels.sum()), int((1 - labels).sum())
    if positives == 0 or negatives == 0:
        raise InputError("ROC-AUC needs both classes among the labels")
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass
class GraphTrainSettings:
    """Optimisation settings of ``train_graph_predictor``."""

    epochs: int = 60
    batch_size: int = 32  # molecules per step
    lr: float = 1e-3  # peak learning rate (AdamW), linear warm-up then cosine decay
    warmup_epochs: int = 5
    weight_decay: float = 1e-2
    seed: int = 0


@dataclass
class GraphEpochReport:
    """What ``train_graph_predictor`` reports after each epoch (metric: RMSE or ROC-AUC on valid)."""

    epoch: int
    epochs: int
    train_loss: float
    valid_metric: float
    best_valid_metric: float
    seconds: float


def metric_name(task: str) -> str:
    return "rmse" if task == "regression" else "roc_auc"


def predict_graphs(model: GraphPredictor, molecules: list[Molecule], batch_size: int = 256) -> np.ndarray:
    """Predictions in target units (regression) or positive-class probabilities (binary).

    Shapes:
        G molecules -> (G,) float
    """
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(molecules), batch_size):
            b = batch_molecules(molecules[start:start + batch_size])
            out = model(b["x"], b["edge_index"], b["bond_type"], b["batch"], b["n_graphs"]).squeeze(-1)
            outputs.append(out * model.cfg.target_std + model.cfg.target_mean if model.cfg.task == "regression"
                           else torch.sigmoid(out))
    return torch.cat(outputs).numpy()


def score_graphs(model: GraphPredictor, molecules: list[Molecule]) -> float:
    """RMSE (regression) or ROC-AUC (binary) of ``model`` on ``molecules``."""
    predicted = predict_graphs(model, molecules)
    target = np.asarray([m.y for m in molecules])
    return rmse(predicted, target) if model.cfg.task == "regression" else roc_auc(predicted, target)


def train_graph_predictor(
    data: dict[str, list[Molecule]],
    config: GraphPredictorConfig,
    settings: GraphTrainSettings | None = None,
    on_epoch: Callable[[GraphEpochReport], None] | None = None,
) -> dict:
    """Train on data["train"], choose the epoch on data["valid"], score data["test"] with it.

    Args:
        data: molecules by split, as ``seqattn.readers.molecules.read_molecules`` returns them.
        config: architecture; ``in_features`` and the regression target scaling are set here.
    Returns:
        {"metric": "rmse" | "roc_auc", "valid": best valid value, "test": test value at that epoch,
         "best_epoch", "epochs", "seconds", "seed", "parameters", "state" (chosen weights), "config"}
    Raises:
        InputError: an empty split.
    """
    settings = settings or GraphTrainSettings()
    for split in ("train", "valid", "test"):
        if not data.get(split):
            raise InputError(f"no molecules in the {split!r} split")
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    train = data["train"]
    config.in_features = ATOM_FEATURES
    if config.task == "regression":
        targets = np.asarray([m.y for m in train])
        config.target_mean, config.target_std = float(targets.mean()), float(targets.std() or 1.0)
    model = GraphPredictor(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total, warmup = settings.epochs * steps_per_epoch, settings.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    lower_is_better = config.task == "regression"
    best, best_state, best_epoch = math.inf if lower_is_better else -math.inf, None, 0
    shuffler = random.Random(settings.seed)
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = list(range(len(train)))
        shuffler.shuffle(order)
        losses = []
        for first in range(0, len(order), settings.batch_size):
            b = batch_molecules([train[i] for i in order[first:first + settings.batch_size]])
            y = (b["y"] - config.target_mean) / config.target_std if config.task == "regression" else b["y"]
            out = model(b["x"], b["edge_index"], b["bond_type"], b["batch"], b["n_graphs"])
            loss = model.head.loss(out, y, config.task)
            losses.append(optimizer_step(loss, model, optimizer, scheduler))
        value = score_graphs(model, data["valid"])
        if (value < best) if lower_is_better else (value > best):
            best, best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch:
            on_epoch(GraphEpochReport(epoch, settings.epochs, float(np.mean(losses)), value, best,
                                      time.perf_counter() - epoch_start))
    model.load_state_dict(best_state)
    return {"metric": metric_name(config.task), "valid": round(best, 4), "test": round(score_graphs(model, data["test"]), 4),
            "best_epoch": best_epoch, "epochs": settings.epochs, "seconds": round(time.perf_counter() - start, 1),
            "seed": settings.seed, "parameters": sum(p.numel() for p in model.parameters()),
            "state": best_state, "config": config.to_dict()}
