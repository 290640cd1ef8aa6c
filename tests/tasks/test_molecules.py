"""Whole-graph prediction: metrics, and a tiny model that learns a size-dependent target in seconds."""

import json
import random

import numpy as np
import pytest

from seqattn.errors import InputError
from seqattn.models.graph import GraphPredictorConfig
from seqattn.readers.molecules import Molecule, atom_features
from seqattn.tasks.molecules import molecule_settings, predict_graphs, rmse, roc_auc, train_graph_predictor
from seqattn.training.engine import Callbacks
from tests.conftest import Killed, kill_at


def test_roc_auc_and_rmse():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([1, 1, 1]), np.array([0, 1, 1])) == 0.5  # ties count one half
    assert rmse(np.array([1.0, 3.0]), np.array([0.0, 3.0])) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(InputError, match="both classes"):
        roc_auc(np.array([0.2]), np.array([1]))


def _chain(n_carbons: int, n_oxygens: int, row: int) -> Molecule:
    atoms = ["C"] * n_carbons + ["O"] * n_oxygens
    n = len(atoms)
    record = {"atoms": atoms, "charge": [0] * n, "aromatic": [0] * n, "num_hs": [2] * n,
              "bonds": [[i, i + 1, 1] for i in range(n - 1)]}
    bonds = np.asarray(record["bonds"], dtype=np.int64).reshape(-1, 3)
    edge_index = np.concatenate([bonds[:, :2].T, bonds[:, [1, 0]].T], axis=1)
    return Molecule(row, atom_features(record), edge_index, np.concatenate([bonds[:, 2]] * 2),
                    y=0.5 * n_oxygens - 0.3 * n_carbons)  # a "solubility" that grows with O and falls with C


def test_tiny_regression_learns_a_size_dependent_target():
    rng = random.Random(0)
    molecules = [_chain(rng.randint(1, 8), rng.randint(0, 3), i) for i in range(80)]
    data = {"train": molecules[:50], "valid": molecules[50:65], "test": molecules[65:]}
    config = GraphPredictorConfig(task="regression", d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0)
    result = train_graph_predictor(data, config, molecule_settings(epochs=8, batch_size=10, lr=5e-3, warmup_steps=5))
    spread = float(np.std([m.y for m in data["test"]]))
    assert result["metric"] == "rmse" and result["test"] < 0.5 * spread
    assert 1 <= result["best_epoch"] <= 8 and result["config"]["target_std"] > 0


def test_binary_outputs_probabilities():
    molecules = [_chain(2 + i % 5, i % 2, i) for i in range(40)]
    for m in molecules:
        m.y = float(m.y > -0.6)
    data = {"train": molecules[:24], "valid": molecules[24:32], "test": molecules[32:]}
    config = GraphPredictorConfig(task="binary", d_model=16, n_heads=2, n_layers=1, d_ff=32)
    result = train_graph_predictor(data, config, molecule_settings(len(data["train"]), epochs=2, batch_size=8))
    assert result["metric"] == "roc_auc" and 0 <= result["test"] <= 1
    from seqattn.models.graph import GraphPredictor

    model = GraphPredictor(GraphPredictorConfig(**result["config"]))
    model.load_state_dict(result["state"])
    p = predict_graphs(model, data["test"])
    assert p.shape == (8,) and ((p > 0) & (p < 1)).all()


def test_warmup_is_five_epochs_of_steps():
    assert molecule_settings(902).warmup_steps == 5 * 29  # ESOL: 902 molecules, 32 per step
    assert molecule_settings(100, batch_size=10).warmup_steps == 50 and molecule_settings().warmup_steps == 0


def test_interrupted_and_resumed_run_reaches_the_same_weights(tmp_path):
    """A run killed after epoch 2 (of 4) and resumed from its checkpoint ends with the bytes of an
    uninterrupted run, and with the same test score; a resume with other options is refused."""
    rng = random.Random(1)
    molecules = [_chain(rng.randint(1, 8), rng.randint(0, 3), i) for i in range(60)]
    data = {"train": molecules[:40], "valid": molecules[40:50], "test": molecules[50:]}

    def config():
        return GraphPredictorConfig(task="regression", d_model=16, n_heads=2, n_layers=1, d_ff=32)

    settings = molecule_settings(40, epochs=4, batch_size=8)
    whole_losses, resumed_losses = [], []
    whole = train_graph_predictor(data, config(), settings, out=tmp_path / "whole",
                                  reporter=Callbacks(on_epoch=lambda r: whole_losses.append(r["train_loss"])))
    with pytest.raises(Killed):
        train_graph_predictor(data, config(), settings, out=tmp_path / "cut", reporter=Callbacks(on_epoch=kill_at(2)))
    checkpoint = tmp_path / "cut.checkpoint"
    with pytest.raises(InputError, match="--epochs \\(checkpoint 4, now 5\\)"):
        train_graph_predictor(data, config(), molecule_settings(40, epochs=5, batch_size=8), out=tmp_path / "cut",
                              resume=checkpoint)
    resumed = train_graph_predictor(data, config(), settings, out=tmp_path / "cut", resume=checkpoint,
                                    reporter=Callbacks(on_epoch=lambda r: resumed_losses.append(r["train_loss"])))
    assert resumed_losses == whole_losses[2:] and len(whole_losses) == 4
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert resumed["test"] == whole["test"] and resumed["best_epoch"] == whole["best_epoch"]
    assert not checkpoint.exists()
    saved = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert saved["task"] == "molecule" and "dev_rmse" in saved["metrics"] and saved["training"]["epochs_run"] == 4
