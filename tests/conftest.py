"""Shared fixtures: a tiny CoNLL-U treebank written here, a tiny tagger trained on it in seconds,
and the path of the shared data sets (tests that need them skip, saying why, where it is absent)."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    # Tests use tiny tensors: one thread is as fast, and on a shared machine it avoids OpenMP
    # threads spin-waiting for a busy core (a tiny graph's index_add_ took 50 ms with two).
    import torch

    torch.set_num_threads(1)

_LEXICON = {
    "DET": ["the", "a", "this", "every"], "NOUN": ["cat", "dog", "idea", "house", "model", "word"],
    "VERB": ["sees", "likes", "builds", "tags"], "ADJ": ["big", "small", "green", "fast"],
    "ADP": ["in", "on", "near"], "PROPN": ["Paris", "Alice", "Bob"], "PUNCT": ["."],
}


def make_treebank(path: Path, n_sentences: int, seed: int) -> Path:
    """Write a CoNLL-U file of simple DET ADJ NOUN VERB ... sentences with gold UPOS."""
    rng = random.Random(seed)
    blocks = []
    for k in range(n_sentences):
        pattern = rng.choice([["DET", "NOUN", "VERB", "DET", "ADJ", "NOUN", "PUNCT"],
                              ["PROPN", "VERB", "DET", "NOUN", "ADP", "PROPN", "PUNCT"],
                              ["DET", "ADJ", "NOUN", "VERB", "PROPN", "PUNCT"]])
        words = [rng.choice(_LEXICON[t]) for t in pattern]
        words[0] = words[0][0].upper() + words[0][1:]
        lines = [f"# sent_id = tiny-{k}", f"# text = {' '.join(words[:-1])}."]
        lines += [f"{i}\t{w}\t_\t{t}\t_\t_\t0\t_\t_\t_" for i, (w, t) in enumerate(zip(words, pattern), 1)]
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_treebank(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("treebank")
    return make_treebank(root / "train.conllu", 120, 0), make_treebank(root / "dev.conllu", 30, 1)


def tiny_tagger_config(window: int | None = 2):
    from seqattn.models.tagger import TaggerConfig
    from seqattn.nn.encoder import EncoderConfig

    return TaggerConfig(encoder=EncoderConfig(d_model=32, n_heads=2, n_layers=2, d_ff=64, dropout=0.1,
                                              window=window, relative_bias=window is not None),
                        word_dim=16, char_dim=8, char_filters=16, subword_dim=8, subword_vocab_size=60)


@pytest.fixture(scope="session")
def tiny_tagger_dir(tiny_treebank, tmp_path_factory) -> Path:
    """A tagger trained for a few seconds on the tiny treebank (it learns it almost perfectly)."""
    from seqattn.tasks.tagging import tagger_settings, train_tagger

    out = tmp_path_factory.mktemp("models") / "tiny-tagger"
    train_tagger(*tiny_treebank, out, tagger_settings(epochs=12, batch_size=256, warmup_steps=5, lr=3e-3),
                 tiny_tagger_config())
    return out


def require_shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test saying that the data set is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data sets are not beside this checkout)")
    return path


def seqattn(*args, input: bytes = b"") -> subprocess.CompletedProcess:
    """Run the CLI's entry point (``seqattn.cli.main.run``) in-process, as a pipeline would:
    stdin, stdout and stderr are byte pipes, not terminals.  Returns a CompletedProcess.
    """
    from seqattn.cli.main import run

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(input), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    try:
        code = run([str(a) for a in args])
    finally:
        for wrapper in (sys.stdin, sys.stdout, sys.stderr):
            wrapper.flush() if wrapper is not sys.stdin else None
            wrapper.detach()  # keep the byte buffers open when the wrapper goes away
        sys.stdin, sys.stdout, sys.stderr = saved
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def make_planetoid(root: Path, seed: int = 0, n_per_class: int = 20, n_classes: int = 3, n_words: int = 12) -> Path:
    """Write a tiny Planetoid-layout graph: each class uses its own words and mostly links within itself."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(labels)
    own = n_words // n_classes
    features = (rng.random((n, n_words)) < 0.08).astype(np.float32)
    for i, c in enumerate(labels):
        features[i, c * own + rng.choice(own, 2, replace=False)] = 1.0
    edges = set()
    for i in range(n):
        for _ in range(3):
            same = rng.random() < 0.85
            pool = np.flatnonzero((labels == labels[i]) == same)
            j = int(rng.choice(pool))
            if j != i:
                edges.add((min(i, j), max(i, j)))
    root.mkdir(parents=True, exist_ok=True)
    sp.save_npz(root / "features.npz", sp.csr_matrix(features))
    (root / "labels.txt").write_text("".join(f"{c}\n" for c in labels))
    (root / "edges.txt").write_text("".join(f"{u} {v}\n" for u, v in sorted(edges)))
    order = np.arange(n)
    for name, part in (("train", order[: n // 4]), ("val", order[n // 4: n // 2]), ("test", order[n // 2:])):
        (root / f"{name}_idx.txt").write_text("".join(f"{i}\n" for i in part))
    return root


@pytest.fixture(scope="session")
def tiny_planetoid(tmp_path_factory) -> Path:
    return make_planetoid(tmp_path_factory.mktemp("planetoid") / "tiny")


def tiny_node_classifier_config():
    from seqattn.models.graph import NodeClassifierConfig

    return NodeClassifierConfig(d_head=4, n_heads=2, dropout=0.2, attention_dropout=0.2)


@pytest.fixture(scope="session")
def tiny_graph_model_dir(tiny_planetoid, tmp_path_factory) -> Path:
    """A node classifier trained for a second or two on the tiny Planetoid graph."""
    from seqattn.tasks.graph import node_settings, train_node_classifier

    out = tmp_path_factory.mktemp("models") / "tiny-graph"
    train_node_classifier(tiny_planetoid, out, node_settings(epochs=30, patience=30, lr=0.02),
                          tiny_node_classifier_config())
    return out


# --------------------------------------------------------------------------- speech: made-up audio

TONE_LABELS = {"low": 400.0, "high": 1600.0}


def tone_clip(label: str, rng, sample_rate_hz: int = 8000) -> "np.ndarray":
    """A 'word' made of a tone (0.25-0.4 s, with a smooth envelope) between quiet noise."""
    import numpy as np

    n = int(rng.uniform(0.25, 0.4) * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    hz = TONE_LABELS[label] * rng.uniform(0.95, 1.05)
    word = np.sin(2 * np.pi * hz * t) * np.hanning(n) * rng.uniform(0.2, 0.6)
    edge = [rng.standard_normal(int(rng.uniform(0.05, 0.12) * sample_rate_hz)) * 0.003 for _ in range(2)]
    return np.concatenate([edge[0], word, edge[1]]).astype(np.float32)


def make_tone_clips(folder: Path, per_label: int, seed: int) -> Path:
    """WAV clips of the TONE_LABELS and their manifest (path, label); returns the manifest."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path\tlabel"]
    for label in TONE_LABELS:
        for i in range(per_label):
            sf.write(folder / f"{label}_{i}.wav", tone_clip(label, rng), 8000, subtype="PCM_16")
            lines.append(f"{label}_{i}.wav\t{label}")
    (folder / "manifest.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "manifest.tsv"


def tiny_speech_config(window: int = 3, layers: int = 2):
    from seqattn.models.speech import SpeechConfig
    from seqattn.nn.encoder import EncoderConfig
    from seqattn.readers.frames import FrameSpec

    return SpeechConfig(encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=layers, d_ff=32, dropout=0.0,
                                              attention_dropout=0.0, window=window, positional="none",
                                              relative_bias=True),
                        frames=FrameSpec(8000, bins=16), conv_kernel=3)


@pytest.fixture(scope="session")
def tone_manifests(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tones")
    return make_tone_clips(root / "train", 16, 0), make_tone_clips(root / "test", 6, 1)


@pytest.fixture(scope="session")
def tiny_speech_dir(tone_manifests, tmp_path_factory) -> Path:
    """A speech model trained for a few seconds on two tones (it tells them apart)."""
    import torch

    from seqattn.tasks.speech import read_manifest
    from seqattn.tasks.speech_training import SpeechOptions, speech_settings, train_speech

    out = tmp_path_factory.mktemp("models") / "tiny-speech"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small gains nothing from threads, and loses much on a busy machine
    try:
        train_speech(read_manifest(tone_manifests[0]), out, tiny_speech_config(),
                     speech_settings(epochs=8, batch_size=2000, warmup_steps=5, lr=5e-3), options=SpeechOptions(sequences=24))
    finally:
        torch.set_num_threads(threads)
    return out


# --------------------------------------------------------------------------- interrupted training


class Killed(Exception):
    """Stands for a kill -9 in the middle of training (the checkpoint on disk is all that is left)."""


def kill_at(epoch: int):
    """An ``on_epoch`` callback that 'kills' the run at the end of ``epoch``."""
    def on_epoch(record: dict):
        if record["epoch"] == epoch:
            raise Killed

    return on_epoch
