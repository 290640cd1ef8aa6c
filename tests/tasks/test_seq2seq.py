"""Seq2seq as a library: a tiny encoder-decoder learns to reverse words; decoding, alignment, metrics, frames."""

import numpy as np
import pytest
import torch

from seqattn.featurise.seq2seq import Symbols, frame_features
from seqattn.readers.pairs import Pair, read_pairs
from seqattn.tasks.scoring import edit_distance
from seqattn.tasks.seq2seq import evaluate_seq2seq, group_references, load_seq2seq, score_outputs
from tests.seq2seq_helpers import reverse_pairs, trained_reverser, write_pairs


@pytest.fixture(scope="module")
def reverser(tmp_path_factory):
    return load_seq2seq(trained_reverser(tmp_path_factory.mktemp("seq2seq")))


def test_the_tiny_model_learns_to_reverse_unseen_words(reverser, tmp_path):
    pairs = read_pairs(write_pairs(tmp_path / "test.tsv", reverse_pairs(40, 7)))
    greedy = evaluate_seq2seq(reverser, pairs, beam=1)
    beam = evaluate_seq2seq(reverser, pairs, beam=4)
    assert greedy["per"] < 0.2 and beam["per"] < 0.2, (greedy, beam)
    assert greedy["wer"] < 0.4 and beam["wer"] < 0.4, (greedy, beam)
    assert beam["sequences"] == len({p.source for p in pairs})
    assert set(beam) >= {"wer", "per", "sequences", "references", "beam"}


def test_batched_decoding_equals_one_by_one_and_keeps_the_order(reverser):
    words = ["abc", "f", "edcba", "ab", "ccc"]
    together = reverser.decode(words, beam=3, with_attention=True)
    alone = [reverser.decode([w], beam=3, with_attention=True)[0] for w in words]
    assert [o.text for o in together] == [o.text for o in alone]
    for a, b in zip(together, alone):
        assert a.score == pytest.approx(b.score, abs=1e-4)
        assert torch.allclose(a.attention, b.attention, atol=1e-4)


def test_the_alignment_has_a_row_per_output_symbol_and_sums_to_one(reverser):
    out = reverser.decode(["abcde"], beam=1, with_attention=True)[0]
    assert out.source_symbols == list("abcde")
    assert out.attention.shape == (len(out.symbols) + 1, 5)  # + EOS
    assert torch.allclose(out.attention.sum(-1), torch.ones(len(out.symbols) + 1), atol=1e-5)


def test_edit_distance_and_the_closest_reference():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], ["a"]) == 1
    target = Symbols("words", ["<pad>", "<unk>", "<s>", "</s>", "A", "B", "C"])
    # the second source matches its second reference exactly: sequence correct, 0 edits
    result = score_outputs(["A B", "C A"], [["A C"], ["B B", "C A"]], target)
    assert result["wer"] == 0.5
    assert result["per"] == pytest.approx(1 / 4)


def test_a_source_on_several_lines_is_one_source_with_several_references():
    pairs = [Pair("X", "a", "f:1"), Pair("Y", "b", "f:2"), Pair("X", "c", "f:3")]
    assert group_references(pairs) == (["X", "Y"], [["a", "c"], ["b"]])


def test_frame_features_normalise_each_utterance_and_add_deltas():
    frames = np.random.default_rng(0).normal(5.0, 3.0, size=(50, 4)).astype(np.float32)
    out = frame_features(frames, deltas=True)
    assert out.shape == (50, 12)
    assert np.allclose(out[:, :4].mean(0), 0, atol=1e-5) and np.allclose(out[:, :4].std(0), 1, atol=1e-3)
    ramp = np.repeat(np.arange(20, dtype=np.float32)[:, None], 2, axis=1)
    assert np.allclose(np.diff(frame_features(ramp, deltas=True)[2:-2, 2]), 0, atol=1e-5)  # slope is constant


def test_padding_never_changes_a_frames_models_output(tmp_path):
    from seqattn.models.seq2seq import Seq2Seq, Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig

    torch.manual_seed(0)
    cfg = Seq2SeqConfig(source="frames", target="chars", frame_dim=3, frame_stride=4,
                        encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                                              attention_dropout=0.0),
                        decoder=DecoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0),
                        target_symbols=["<pad>", "<unk>", "<s>", "</s>", "a", "b"])
    model = Seq2Seq(cfg).eval()
    short, long = torch.randn(1, 9, 9), torch.randn(1, 21, 9)
    batch = torch.cat([torch.cat([short, torch.zeros(1, 12, 9)], 1), long])
    padding = torch.zeros(2, 21, dtype=torch.bool)
    padding[0, 9:] = True
    targets = torch.tensor([[2, 4, 5], [2, 5, 4]])
    logits, weights = model(batch, padding, targets)
    alone, alone_weights = model(short, torch.zeros(1, 9, dtype=torch.bool), targets[:1])
    assert weights.shape[-1] == 6  # ceil(21 / 4) encoder steps
    assert torch.allclose(logits[0], alone[0], atol=1e-5)
    assert torch.allclose(weights[0, ..., :3], alone_weights[0], atol=1e-5)  # ceil(9 / 4) steps
    assert torch.all(weights[0, ..., 3:] < 1e-6)


def test_joint_ctc_loss_trains_the_ctc_head_and_mixes_the_losses():
    from seqattn.models.seq2seq import Seq2Seq, Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig

    torch.manual_seed(0)
    symbols = ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    kwargs = dict(source="frames", target="chars", frame_dim=3, frame_stride=2, target_symbols=symbols,
                  encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                                        attention_dropout=0.0),
                  decoder=DecoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0))
    batch = {"source": torch.randn(2, 12, 9), "source_padding": torch.zeros(2, 12, dtype=torch.bool),
             "target_in": torch.tensor([[2, 4, 5], [2, 5, 0]]), "target_out": torch.tensor([[4, 5, 3], [5, 3, 0]])}
    batch["source_padding"][1, 8:] = True
    plain = Seq2Seq(Seq2SeqConfig(**kwargs))
    joint = Seq2Seq(Seq2SeqConfig(**kwargs, ctc_weight=0.5))
    joint.load_state_dict(plain.state_dict(), strict=False)  # same weights, plus the CTC head
    ce = plain.loss(batch)
    mixed = joint.loss(batch)
    mixed.backward()
    assert torch.isfinite(mixed) and not torch.allclose(mixed, ce)
    assert joint.ctc.proj.weight.grad.abs().sum() > 0
    ctc = (mixed - 0.5 * ce) / 0.5
    assert ctc > 0  # a CTC loss is a negative log-probability


def test_sentencepiece_sides_train_save_and_score_bleu(tmp_path):
    from seqattn.models.seq2seq import Seq2SeqConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig
    from seqattn.tasks.seq2seq import Seq2SeqOptions, seq2seq_settings, train_seq2seq

    words = "the a cat dog sees likes house tree big small".split()
    pairs = [Pair(f"{a} {b} {c}", f"{c} {b} {a}", f"x:{i}") for i, (a, b, c) in
             enumerate(zip(words * 3, words[3:] * 3 + words[:3] * 3, words[5:] * 3 + words[:5] * 3))]
    cfg = Seq2SeqConfig(source="sentencepiece", target="sentencepiece",
                        encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32),
                        decoder=DecoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32))
    saved = train_seq2seq(pairs, pairs[:5], tmp_path / "m", cfg, seq2seq_settings(epochs=1, warmup_steps=1),
                          Seq2SeqOptions(subword_vocab_size=40))
    assert "dev_bleu" in saved["metrics"]
    assert (tmp_path / "m" / "source.model").is_file() and (tmp_path / "m" / "target.model").is_file()
    loaded = load_seq2seq(tmp_path / "m")
    assert loaded.featurizer.source.join(loaded.featurizer.source.split("the big cat")) == "the big cat"
    result = evaluate_seq2seq(loaded, pairs[:5], beam=2)
    assert 0 <= result["bleu"] <= 100 and result["sequences"] == 5
    train_seq2seq(pairs, pairs[:5], tmp_path / "m2", settings=seq2seq_settings(epochs=1, warmup_steps=1),
                  init=tmp_path / "m")  # a warm restart keeps the sentencepiece models
    for name in ("source.model", "target.model"):
        assert (tmp_path / "m2" / name).read_bytes() == (tmp_path / "m" / name).read_bytes()


def test_init_starts_from_a_trained_model_with_its_vocabularies_and_weights(tmp_path):
    from seqattn.errors import InputError
    from seqattn.tasks.seq2seq import seq2seq_settings, train_seq2seq

    start = trained_reverser(tmp_path)
    pairs = read_pairs(write_pairs(tmp_path / "more.tsv", reverse_pairs(50, 3)))
    # lr 0: the run must give back exactly the model it started from (weights, vocabularies)
    saved = train_seq2seq(pairs, pairs[:10], tmp_path / "again", settings=seq2seq_settings(epochs=1, lr=1e-30,
                          warmup_steps=1), init=start)
    before, after = load_seq2seq(start), load_seq2seq(tmp_path / "again")
    assert after.cfg.to_dict() == before.cfg.to_dict()
    for name, tensor in before.model.state_dict().items():
        assert torch.equal(tensor, after.model.state_dict()[name]), name
    assert saved["training"]["init"] == str(start)
    with pytest.raises(InputError, match="only one"):
        train_seq2seq(pairs, pairs[:10], tmp_path / "both", init=start, resume=tmp_path / "again")


def test_weight_average_is_the_mean_of_the_last_epochs_and_survives_a_checkpoint():
    from seqattn.training.schedule import WeightAverage

    model = torch.nn.Linear(2, 1)
    average = WeightAverage(last=3, epochs=5)
    seen = []
    for epoch in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(epoch)
        average.add(epoch, model.state_dict())
        if epoch == 3:  # a resumed run starts from the checkpointed sums
            sums, epochs = average.state()
            average = WeightAverage(last=3, epochs=5)
            average.restore({k: v.clone() for k, v in sums.items()}, epochs)
        seen.append(average.average())
    assert seen[:3] == [None, None, None] and average.epochs == [3, 4, 5]
    assert torch.equal(seen[-1]["weight"], torch.full((1, 2), 4.0))  # mean of 3, 4, 5
    assert WeightAverage(last=1, epochs=5).average() is None


def test_average_last_scores_the_mean_weights_on_dev_and_keeps_the_better(tmp_path):
    from seqattn.tasks.seq2seq import seq2seq_settings, train_seq2seq
    from tests.seq2seq_helpers import tiny_seq2seq_config

    train = read_pairs(write_pairs(tmp_path / "train.tsv", reverse_pairs(300, 0)))
    dev = read_pairs(write_pairs(tmp_path / "dev.tsv", reverse_pairs(30, 1)))
    saved = train_seq2seq(train, dev, tmp_path / "m", tiny_seq2seq_config(),
                          seq2seq_settings(epochs=4, batch_size=300, lr=5e-3, warmup_steps=10, average_last=3))
    averaged = saved["training"]["averaged"]
    assert averaged["epochs"] == [2, 3, 4] and 0 <= averaged["error"] <= 1
    kept_error = saved["metrics"]["dev_sequence_error_rate"]
    assert kept_error <= averaged["error"] + 1e-9  # the kept model is never worse than the mean
    if averaged["kept"]:
        assert kept_error == pytest.approx(averaged["error"], abs=1e-5)


def test_interrupted_and_resumed_run_reaches_the_same_weights_and_average(tmp_path):
    """A run killed after epoch 2 and resumed from its checkpoint ends on the same model, byte for
    byte, as an uninterrupted one, including the running sum of checkpoint averaging."""
    from seqattn.tasks.seq2seq import seq2seq_settings, train_seq2seq
    from seqattn.training.engine import Callbacks
    from tests.conftest import Killed, kill_at
    from tests.seq2seq_helpers import tiny_seq2seq_config

    train = read_pairs(write_pairs(tmp_path / "train.tsv", reverse_pairs(120, 0)))
    dev = read_pairs(write_pairs(tmp_path / "dev.tsv", reverse_pairs(20, 1)))
    settings = seq2seq_settings(epochs=4, batch_size=300, lr=5e-3, warmup_steps=10, average_last=3)
    whole = train_seq2seq(train, dev, tmp_path / "whole", tiny_seq2seq_config(), settings)
    with pytest.raises(Killed):
        train_seq2seq(train, dev, tmp_path / "cut", tiny_seq2seq_config(), settings,
                      reporter=Callbacks(on_epoch=kill_at(2)))
    epochs_seen = []
    resumed = train_seq2seq(train, dev, tmp_path / "cut", tiny_seq2seq_config(), settings,
                            resume=tmp_path / "cut.checkpoint",
                            reporter=Callbacks(on_epoch=lambda r: epochs_seen.append(r["epoch"])))
    assert epochs_seen == [3, 4] and resumed["training"]["averaged"] == whole["training"]["averaged"]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not (tmp_path / "cut.checkpoint").exists()
