"""Training, loading, predicting and evaluating node classifiers (a tiny model, trained in seconds)."""

import json

import numpy as np
import pytest
import torch

from seqattn.errors import InputError, ModelError
from seqattn.models.graph import NodeClassifier, NodeClassifierConfig, features_tensor
from seqattn.readers.graph import read_planetoid
from seqattn.tasks.graph import (
    NodeTrainSettings, consistency_loss, evaluate_node_classifier, load_node_classifier, train_node_classifier,
)
from tests.conftest import Killed, kill_at, require_shared, tiny_node_classifier_config


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
    settings = NodeTrainSettings(max_epochs=5)
    for name in ("a", "b"):
        train_node_classifier(tiny_planetoid, tmp_path / name, settings, tiny_node_classifier_config())
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_training_never_overwrites_without_force(tiny_planetoid, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="pass --force"):
        train_node_classifier(tiny_planetoid, tmp_path / "m", NodeTrainSettings(max_epochs=1))
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"
    train_node_classifier(tiny_planetoid, tmp_path / "m", NodeTrainSettings(max_epochs=1),
                          tiny_node_classifier_config(), force=True)
    assert not (tmp_path / "m" / "keep.txt").exists()


def test_selection_reads_no_test_labels(tiny_planetoid, tmp_path):
    """Changing the test nodes' labels changes nothing in training: they are never read."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_planetoid, other)
    labels = (other / "labels.txt").read_text().split()
    test = {int(i) for i in (other / "test_idx.txt").read_text().split()}
    (other / "labels.txt").write_text("".join(f"{(int(c) + 1) % 3 if i in test else c}\n" for i, c in enumerate(labels)))
    settings = NodeTrainSettings(max_epochs=8)
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
    settings = NodeTrainSettings(max_epochs=30, patience=30)
    whole = []
    train_node_classifier(tiny_planetoid, tmp_path / "whole", settings, tiny_node_classifier_config(),
                          on_epoch=lambda r: whole.append((r.epoch, r.train_loss, r.val_loss)), checkpoint_every=10)

    with pytest.raises(Killed):
        train_node_classifier(tiny_planetoid, tmp_path / "cut", settings, tiny_node_classifier_config(),
                              on_epoch=kill_at(15), checkpoint_every=10)
    checkpoint = tmp_path / "cut.checkpoint"
    assert json.loads((checkpoint / "checkpoint.json").read_text())["epoch"] == 10
    resumed = []
    train_node_classifier(tiny_planetoid, tmp_path / "cut", None, None, resume=checkpoint, checkpoint_every=10,
                          on_epoch=lambda r: resumed.append((r.epoch, r.train_loss, r.val_loss)))
    assert resumed == whole[10:]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not checkpoint.exists() and not (tmp_path / "whole.checkpoint").exists()


def test_resume_refuses_a_checkpoint_of_another_graph(tiny_planetoid, tmp_path):
    from tests.conftest import make_planetoid

    settings = NodeTrainSettings(max_epochs=30, patience=30)

    def stop(report):
        if report.epoch == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_node_classifier(tiny_planetoid, tmp_path / "m", settings, tiny_node_classifier_config(), on_epoch=stop,
                              checkpoint_every=10)
    other = make_planetoid(tmp_path / "other", n_words=15)
    with pytest.raises(ModelError, match="15"):
        train_node_classifier(other, tmp_path / "m", resume=tmp_path / "m.checkpoint")
