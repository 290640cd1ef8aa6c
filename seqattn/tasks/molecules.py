"""Whole-graph prediction (N -> 1) as a library: train and score ``GraphPredictor`` on molecules.

MoleculeNet (Wu et al. 2018) tasks from ../shared/data/moleculenet: ESOL (log solubility,
regression, RMSE) and BBBP (blood-brain-barrier penetration, binary, ROC-AUC), on the scaffold
split.  The valid molecules choose the epoch; the test molecules are scored once, with that epoch's
weights.  Training runs through the one training engine (``seqattn.training.fit``: checkpoints,
resume, schedule, devices, torchrun).  These functions never print; a ``reporter`` gets progress.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from seqattn.errors import InputError
from seqattn.featurise.graph import batch_molecules
from seqattn.models.graph import GraphPredictor, GraphPredictorConfig
from seqattn.readers.molecules import ATOM_FEATURES, Molecule
from seqattn.training.engine import FitSettings


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


TASK = "molecule"
WARMUP_EPOCHS = 5  # the recipe's linear warm-up, in epochs (``molecule_settings`` turns it into steps)


def molecule_settings(train_molecules: int | None = None, **overrides) -> FitSettings:
    """``fit`` settings of the molecule recipe, with overrides.

    AdamW 1e-3 (weight decay 0.01), 60 epochs of 32 molecules per step, gradient norm clipped at 1,
    linear warm-up over the first 5 epochs' steps (``train_molecules`` molecules per epoch; without
    it, no warm-up) then cosine decay; no early stopping (the best valid epoch is kept).
    """
    batch_size = overrides.get("batch_size", 32)
    warmup = WARMUP_EPOCHS * math.ceil(train_molecules / batch_size) if train_molecules else 0
    return FitSettings(**{"epochs": 60, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-2, "warmup_steps": warmup,
                          "max_grad_norm": 1.0, **overrides})


def metric_name(task: str) -> str:
    return "rmse" if task == "regression" else "roc_auc"


def predict_graphs(model: GraphPredictor, molecules: list[Molecule], batch_size: int = 256) -> np.ndarray:
    """Predictions in target units (regression) or positive-class probabilities (binary).

    Shapes:
        G molecules -> (G,) float
    """
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(molecules), batch_size):
            b = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                 for k, v in batch_molecules(molecules[start:start + batch_size]).items()}
            out = model(b["x"], b["edge_index"], b["bond_type"], b["batch"], b["n_graphs"]).squeeze(-1)
            outputs.append(out * model.cfg.target_std + model.cfg.target_mean if model.cfg.task == "regression"
                           else torch.sigmoid(out))
    return torch.cat(outputs).cpu().numpy()


def score_graphs(model: GraphPredictor, molecules: list[Molecule]) -> float:
    """RMSE (regression) or ROC-AUC (binary) of ``model`` on ``molecules``."""
    predicted = predict_graphs(model, molecules)
    target = np.asarray([m.y for m in molecules])
    return rmse(predicted, target) if model.cfg.task == "regression" else roc_auc(predicted, target)


def molecules_checksum(molecules: list[Molecule]) -> str:
    """sha256 of what training reads from molecules: atom features, bonds, bond types and targets."""
    import hashlib

    digest = hashlib.sha256()
    for m in molecules:
        for part in (np.asarray(m.x.shape, dtype=np.int64), np.ascontiguousarray(m.x, dtype=np.float32),
                     np.ascontiguousarray(m.edge_index, dtype=np.int64),
                     np.ascontiguousarray(m.bond_type, dtype=np.int64), np.asarray([m.y], dtype=np.float64)):
            digest.update(part.tobytes())
        digest.update(b"|")
    return digest.hexdigest()


class MoleculeTask:
    """Whole-graph prediction for ``fit``: batches of molecules, RMSE or ROC-AUC on the valid split.

    A step takes ``batch_size`` molecules in an order shuffled each epoch by the engine's generator;
    its loss is the mean over them (MSE on standardised targets, or binary cross-entropy) with the
    molecule count as weight, so under torchrun the ranks split a step's molecules.  The valid
    molecules choose the epoch (lower RMSE or higher ROC-AUC); the test molecules are not read.

    Raises (constructor):
        InputError: an empty train or valid split.
    """

    name, shardable = TASK, True

    def __init__(self, data: dict[str, list[Molecule]], config: GraphPredictorConfig, settings: FitSettings):
        for split in ("train", "valid"):
            if not data.get(split):
                raise InputError(f"no molecules in the {split!r} split")
        self.train, self.valid, self.batch_size = data["train"], data["valid"], settings.batch_size
        cfg = GraphPredictorConfig.from_dict(config.to_dict())
        cfg.in_features = ATOM_FEATURES
        if cfg.task == "regression":
            targets = np.asarray([m.y for m in self.train])
            cfg.target_mean, cfg.target_std = float(targets.mean()), float(targets.std() or 1.0)
        self.cfg = cfg
        self.metric, self.higher_is_better = metric_name(cfg.task), cfg.task != "regression"
        fit_id = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items() if k != "device"}
        self._identity = {"options": {"fit": fit_id, "model": cfg.to_dict()},
                          "data": {"train": molecules_checksum(self.train), "valid": molecules_checksum(self.valid)}}
        self.device = torch.device("cpu")

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory) -> None:
        pass  # the molecules are read by the caller; the config is set from the train split

    def build_model(self) -> GraphPredictor:
        return GraphPredictor(self.cfg)

    def batches(self, epoch: int, rng) -> list[list[int]]:
        order = list(range(len(self.train)))
        rng.shuffle(order)
        return [order[first:first + self.batch_size] for first in range(0, len(order), self.batch_size)]

    def loss(self, model: GraphPredictor, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Mean loss over the batch's molecules, and their count."""
        b = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
             for k, v in batch_molecules([self.train[i] for i in batch]).items()}
        y = (b["y"] - self.cfg.target_mean) / self.cfg.target_std if self.cfg.task == "regression" else b["y"]
        out = model(b["x"], b["edge_index"], b["bond_type"], b["batch"], b["n_graphs"])
        return model.head.loss(out, y, self.cfg.task), float(len(batch))

    def evaluate(self, model: GraphPredictor) -> dict:
        return {self.metric: score_graphs(model, self.valid)}

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict:
        return {}

    def record(self) -> dict:
        return {"molecules": {split: len(v) for split, v in (("train", self.train), ("valid", self.valid))}}


def train_graph_predictor(
    data: dict[str, list[Molecule]],
    config: GraphPredictorConfig,
    settings: FitSettings | None = None,
    reporter=None,
    out: str | Path | None = None,
    force: bool = False,
    resume: str | Path | None = None,
    meta: dict | None = None,
) -> dict:
    """Train on data["train"] through ``fit``, choose the epoch on data["valid"], score data["test"] with it.

    Args:
        data: molecules by split, as ``seqattn.readers.molecules.read_molecules`` returns them.
        config: architecture; ``in_features`` and the regression target scaling are set from the
            train split (on a copy; ``config`` is not changed).
        settings: ``fit`` settings (default ``molecule_settings(len(data["train"]))``).
        reporter: progress callbacks (seqattn.training.engine.Reporter; records hold the valid
            metric as "rmse" or "roc_auc").
        out: a model directory to write (None: nothing is written); with it, checkpoints go to
            OUT.checkpoint/ after every epoch and ``resume`` continues an interrupted run.
        resume: OUT.checkpoint of an interrupted run with the same arguments and data.
    Returns:
        {"metric": "rmse" | "roc_auc", "valid": best valid value, "test": test value with the
         chosen weights, "best_epoch", "epochs" (run), "seconds", "seed", "parameters", "state"
         (chosen weights), "config", "saved" (the model's config.json dict: the run record)}
    Raises:
        InputError: an empty split, a forbidden ``out``, a checkpoint of another run or data;
        ModelError: an unreadable checkpoint or one of another task.
    """
    from seqattn.training.engine import fit

    if not data.get("test"):
        raise InputError("no molecules in the 'test' split")
    settings = settings or molecule_settings(len(data.get("train") or ()))
    task = MoleculeTask(data, config, settings)
    saved = fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)
    if out is None:
        state = saved.pop("state")
    else:
        from safetensors.torch import load_file

        state = load_file(str(Path(out) / "model.safetensors"))
    model = GraphPredictor(GraphPredictorConfig.from_dict(saved["config"]))
    model.load_state_dict(state)
    training = saved["training"]
    return {"metric": task.metric, "valid": round(saved["metrics"][f"dev_{task.metric}"], 4),
            "test": round(score_graphs(model, data["test"]), 4), "best_epoch": training["best_epoch"],
            "epochs": training["epochs_run"], "seconds": training["seconds"], "seed": settings.seed,
            "parameters": sum(p.numel() for p in model.parameters()), "state": state, "config": saved["config"],
            "saved": saved}
