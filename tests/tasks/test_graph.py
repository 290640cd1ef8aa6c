"""Training, loading, predicting and evaluating node classifiers (a tiny model, trained in seconds)."""

import json

import numpy as np
import pytest
import torch

from seqattn.errors import InputError
from seqattn.featurise.graph import features_tensor
from seqattn.models.graph import NodeClassifier, NodeClassifierConfig
from seqattn.readers.graph import read_planetoid
from seqattn.tasks.graph import (
    NodeOptions, NodeTask, consistency_loss, evaluate_node_classifier, load_node_classifier, node_settings,
    train_node_classifier,
)
from seqattn.training.engine import Callbacks
from tests.conftest import Killed, kill_at, require_shared, seqattn, tiny_node_classifier_config


def test_tiny_model_learns_the_tiny_graph(tiny_graph_model_dir, tiny_planetoid):
    classifier = load_node_classifier(tiny_graph_model_dir)
    result = evaluate_node_classifier(classifier, read_planetoid(tiny_planetoid), "test")
    assert result["nodes"] == 30 and result["split"] == "test"
    assert result["accuracy"] >= 0.8  # three well-separated classes; chance is 1/3
    config = json.loads((tiny_graph_model_dir / "config.json").read_text())
    assert config["task"] == "graph" and config["config"]["classes"] == ["0", "1", "2"]
    assert config["config"]["in_features"] == 12 and 0.0 <= config["metrics"]["val_accuracy"] <= 1.0


def test_predict_gives_a_distribution_and_attention_per_layer(tiny_graph_model_dir, tiny_planetoid):
    graph = read_planetoid(tiny_planetoid)
    prediction = load_node_classifier(tiny_graph_model_dir).predict(graph, with_attention=True)
    assert len(prediction.classes) == graph.n_nodes
    assert ((prediction.probabilities > 1 / 3 - 1e-6) & (prediction.probabilities <= 1)).all()
    assert prediction.edge_index.shape == (2, graph.n_edges + graph.n_nodes)
    assert [w.shape for w in prediction.attention] == [(graph.n_edges + graph.n_nodes, 2),
                                                        (graph.n_edges + graph.n_nodes, 1)]
    for weights in prediction.attention:
        sums = torch.zeros(graph.n_nodes, weights.shape[1]).index_add_(0, prediction.edge_index[1], weights)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)


def test_same_seed_same_weights(tiny_planetoid, tmp_path):
    settings = node_settings(epochs=5)
    for name in ("a", "b"):
        train_node_classifier(tiny_planetoid, tmp_path / name, settings, tiny_node_classifier_config())
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_training_never_overwrites_without_force(tiny_planetoid, tmp_path):
    settings = node_settings(epochs=1)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    for force in (False, True):  # --force replaces only a model directory
        with pytest.raises(InputError, match="pass --force" if not force else "only a seqattn model"):
            train_node_classifier(tiny_planetoid, tmp_path / "m", settings, tiny_node_classifier_config(), force=force)
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    train_node_classifier(tiny_planetoid, tmp_path / "model", settings, tiny_node_classifier_config())
    with pytest.raises(InputError, match="pass --force"):
        train_node_classifier(tiny_planetoid, tmp_path / "model", settings, tiny_node_classifier_config())
    first = (tmp_path / "model" / "config.json").read_text()
    train_node_classifier(tiny_planetoid, tmp_path / "model", node_settings(epochs=2), tiny_node_classifier_config(),
                          force=True)
    assert (tmp_path / "model" / "config.json").read_text() != first


def test_selection_reads_no_test_labels(tiny_planetoid, tmp_path):
    """Changing the test nodes' labels changes nothing in training: they are never read."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_planetoid, other)
    labels = (other / "labels.txt").read_text().split()
    test = {int(i) for i in (other / "test_idx.txt").read_text().split()}
    (other / "labels.txt").write_text("".join(f"{(int(c) + 1) % 3 if i in test else c}\n" for i, c in enumerate(labels)))
    settings = node_settings(epochs=8)
    a = train_node_classifier(tiny_planetoid, None, settings, tiny_node_classifier_config())
    b = train_node_classifier(other, None, settings, tiny_node_classifier_config())
    assert a["metrics"] == b["metrics"]
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_consistency_loss_is_zero_for_identical_confident_samples():
    logits = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    assert consistency_loss([logits, logits.clone()], 0.5) < 1e-6
    assert consistency_loss([logits, -logits], 0.5) > 0.4


def test_wrong_feature_count_and_missing_features(tiny_graph_model_dir, tiny_planetoid, tmp_path):
    classifier = load_node_classifier(tiny_graph_model_dir)
    graph = read_planetoid(tiny_planetoid)
    graph.features = np.ones((graph.n_nodes, 5), dtype=np.float32)
    with pytest.raises(InputError, match="5 features per node, but the model was trained on 12"):
        classifier.predict(graph)
    graph.features = None
    with pytest.raises(InputError, match="--features"):
        classifier.predict(graph)
    with pytest.raises(InputError, match="no 'dev' split"):
        evaluate_node_classifier(classifier, read_planetoid(tiny_planetoid), "dev")


def test_sparse_and_dense_features_give_the_same_logits(tiny_planetoid):
    graph = read_planetoid(tiny_planetoid)
    model = NodeClassifier(NodeClassifierConfig(in_features=12, classes=["0", "1", "2"], d_head=4, n_heads=2)).eval()
    dense = features_tensor(graph.features, True)  # 25 % non-zero: stays dense
    edge_index = torch.from_numpy(graph.edge_index)
    assert not dense.is_sparse
    assert torch.allclose(model(dense.to_sparse(), edge_index), model(dense, edge_index), atol=1e-6)


def test_shipped_cora_model():
    cora = read_planetoid(require_shared("planetoid", "cora"))
    classifier = load_node_classifier("cora")
    result = evaluate_node_classifier(classifier, cora, "test")
    assert result["nodes"] == 1000 and result["accuracy"] >= 0.83
    assert classifier.cfg.display_names()[3] == "Neural_Networks"


def test_interrupted_and_resumed_run_reaches_the_same_weights(tiny_planetoid, tmp_path):
    """Issue 7: killed at epoch 15 (the last checkpoint is epoch 10's), resumed: epochs 11.. see the
    same losses as an uninterrupted run with the same seed, and the saved weights are the same bytes."""
    settings = node_settings(epochs=30, patience=30, checkpoint_epochs=10)
    whole = []
    train_node_classifier(tiny_planetoid, tmp_path / "whole", settings, tiny_node_classifier_config(),
                          reporter=Callbacks(on_epoch=lambda r: whole.append((r["epoch"], r["train_loss"],
                                                                              r["val_loss"]))))

    with pytest.raises(Killed):
        train_node_classifier(tiny_planetoid, tmp_path / "cut", settings, tiny_node_classifier_config(),
                              reporter=Callbacks(on_epoch=kill_at(15)))
    checkpoint = tmp_path / "cut.checkpoint"
    progress = json.loads((checkpoint / "checkpoint.json").read_text())["progress"]
    assert progress["epoch"] == 11 and len(progress["history"]) == 10  # epochs 1..10 done
    resumed = []
    train_node_classifier(tiny_planetoid, tmp_path / "cut", settings, tiny_node_classifier_config(), resume=checkpoint,
                          reporter=Callbacks(on_epoch=lambda r: resumed.append((r["epoch"], r["train_loss"],
                                                                                r["val_loss"]))))
    assert len(whole) == 30 and resumed == whole[10:]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not checkpoint.exists() and not (tmp_path / "whole.checkpoint").exists()


def test_resume_refuses_a_checkpoint_of_another_graph_or_other_options(tiny_planetoid, tmp_path):
    from tests.conftest import make_planetoid

    settings = node_settings(epochs=30, patience=30, checkpoint_epochs=10)
    with pytest.raises(Killed):
        train_node_classifier(tiny_planetoid, tmp_path / "m", settings, tiny_node_classifier_config(),
                              reporter=Callbacks(on_epoch=kill_at(12)))
    other = make_planetoid(tmp_path / "other", n_words=15)
    with pytest.raises(InputError, match="--data \\(other data.*in_features \\(checkpoint 12, now 15\\)"):
        train_node_classifier(other, tmp_path / "m", settings, tiny_node_classifier_config(),
                              resume=tmp_path / "m.checkpoint")
    with pytest.raises(InputError, match="--consistency-samples \\(checkpoint 2, now 1\\)"):
        train_node_classifier(tiny_planetoid, tmp_path / "m", settings, tiny_node_classifier_config(),
                              NodeOptions(consistency_samples=1), resume=tmp_path / "m.checkpoint")


def test_early_stopping_follows_gats_rule(tiny_planetoid):
    """Progress = val accuracy at least the top so far OR val loss at most the lowest so far;
    the state survives a checkpoint (restore_stopper)."""
    task = NodeTask(read_planetoid(tiny_planetoid), tiny_node_classifier_config(), NodeOptions(), node_settings())
    steps = [(0.5, 1.0, True), (0.4, 0.9, True), (0.5, 0.95, True), (0.45, 0.95, False), (0.6, 2.0, True),
             (0.55, 0.91, False), (0.55, 0.9, True)]
    state = {}
    for accuracy, loss, expected in steps:
        progressed, state = task.progressed({"val_accuracy": accuracy, "val_loss": loss})
        assert progressed is expected, (accuracy, loss)
    fresh = NodeTask(read_planetoid(tiny_planetoid), tiny_node_classifier_config(), NodeOptions(), node_settings())
    fresh.restore_stopper(json.loads(json.dumps(state)))
    assert fresh.progressed({"val_accuracy": 0.59, "val_loss": 0.95})[0] is False
    assert task.selection_key({"val_accuracy": 0.5, "val_loss": 0.2}) > \
        task.selection_key({"val_accuracy": 0.5, "val_loss": 0.3})


def test_train_graph_cli_chooses_the_score_and_refuses_positions(tiny_planetoid, tmp_path):
    proc = seqattn("train", "graph", "--data", tiny_planetoid, "--out", tmp_path / "m", "--score", "additive",
                   "--epochs", "3", "--heads", "2", "--d-model", "8", "--layers", "2", "--dropout", "0.1", "-q")
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["config"]["score"] == "additive" and saved["training"]["epochs_run"] == 3
    assert (saved["config"]["n_heads"], saved["config"]["d_head"]) == (2, 4)
    assert saved["config"]["dropout"] == saved["config"]["attention_dropout"] == 0.1
    assert load_node_classifier(tmp_path / "m").cfg.score == "additive"
    for flags, needle in ((["--positional", "learned"], "--positional does not apply to train graph"),
                          (["--attention-window", "4"], "--attention-window does not apply to train graph"),
                          (["--score", "cosine"], "--score 'cosine'"),
                          (["--d-model", "10", "--heads", "4"], "--d-model 10 is not divisible by --heads 4"),
                          (["--batch-size", "64"], "--batch-size does not apply to train graph")):
        proc = seqattn("train", "graph", "--data", tiny_planetoid, "--out", tmp_path / "n", "--epochs", "1", *flags)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and proc.stdout == b"" and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
        assert not (tmp_path / "n").exists()


def test_resuming_a_graph_run_with_a_tagger_checkpoint_is_one_line(tiny_planetoid, tiny_treebank, tmp_path):
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from tests.conftest import tiny_tagger_config

    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, tmp_path / "tagger", tagger_settings(epochs=2, batch_size=256, warmup_steps=2),
                     tiny_tagger_config(), reporter=Callbacks(on_epoch=kill_at(1)))
    assert (tmp_path / "tagger.checkpoint" / "checkpoint.json").is_file()
    proc = seqattn("train", "graph", "--data", tiny_planetoid, "--out", tmp_path / "g", "--epochs", "2",
                   "--resume", tmp_path / "tagger.checkpoint")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b"" and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "a checkpoint of a tagger run, not of a graph run" in err, err
    assert not (tmp_path / "g").exists()


def test_the_cora_recipe_is_the_shipped_models_options(tmp_path):
    """recipes/cora.toml gives the shipped cora model's architecture, classes and training options."""
    from tests.conftest import ROOT

    cora = require_shared("planetoid", "cora")
    shipped = json.loads((ROOT / "seqattn" / "models" / "cora" / "config.json").read_text())
    proc = seqattn("train", "graph", "--config", ROOT / "recipes" / "cora.toml", "--data", cora,
                   "--out", tmp_path / "m", "--epochs", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["config"] == shipped["config"]
    fit, options = saved["training"]["settings"], saved["training"]["options"]["task"]
    old = shipped["training"]["settings"]  # the shipped model's own record of its recipe
    if "max_epochs" in old:  # trained before the one training engine
        old = {**old, "epochs": old["max_epochs"]}
    else:
        old = {**old, **shipped["training"]["options"]["task"]}
    assert {k: fit[k] for k in ("lr", "weight_decay", "patience", "seed")} == \
        {k: old[k] for k in ("lr", "weight_decay", "patience", "seed")}
    assert fit["epochs"] == 1 and old["epochs"] == 1000  # the recipe's 1000, overridden by the flag
    assert options == {k: old[k] for k in ("consistency_samples", "consistency_weight", "sharpening_temperature")}
    assert (fit["optimizer"], fit["schedule"], fit["max_grad_norm"]) == ("adam", "constant", None)
