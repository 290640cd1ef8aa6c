"""Issue 26, item 5: a model directory is not trusted.

A table of hostile model directories, each a copy of a small valid model of one kind (tagger,
node classifier, speech, seq2seq) with one field of config.json or one tensor broken.  Each must
end, through the CLI, in one line on stderr and exit code 2, in a child process whose peak RSS
stays under 300 MB (one child per kind runs all of its cases; a config asking for gigabytes
must be refused before anything is allocated).  And: a shipped model's name always means the
shipped model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_planetoid, seqattn

MAX_RSS_MB = 300
SAMPLE = ROOT / "data" / "sample.txt"
CLIP = ROOT / "data" / "speech" / "seven.wav"
SHIPPED_SUBWORDS = ROOT / "seqattn" / "models" / "en-upos" / "subwords.model"


# --------------------------------------------------------------------------- small valid models


def _write_model_dir(out: Path, task: str, cfg, model, extra: dict[str, Path] | None = None) -> Path:
    """The on-disk format by hand (config.json + model.safetensors), independent of the trainers."""
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    config = {"task": task, "config": cfg.to_dict(), "format_version": 1}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    for name, source in (extra or {}).items():
        shutil.copyfile(source, out / name)
    return out


def build_models(root: Path) -> dict[str, Path]:
    """One randomly initialised model per kind; small, and valid (the base case of each kind runs)."""
    import torch

    from seqattn.models.graph import NodeClassifier, NodeClassifierConfig
    from seqattn.models.seq2seq import SPECIALS, Seq2Seq, Seq2SeqConfig
    from seqattn.models.speech import SpeechConfig, SpeechModel
    from seqattn.models.tagger import Tagger, TaggerConfig
    from seqattn.nn.decoder import DecoderConfig
    from seqattn.nn.encoder import EncoderConfig
    from seqattn.readers.frames import FrameSpec

    torch.manual_seed(0)
    tagger = TaggerConfig(encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, window=2,
                                                relative_bias=True),
                          word_dim=8, char_dim=4, char_filters=8, subword_dim=4, subword_vocab_size=4000,
                          words=["<pad>", "<unk>", "the", "fox"], chars=["<pad>", "<unk>", *"abcdefgh"],
                          tags=["ADJ", "NOUN", "VERB"])
    graph = NodeClassifierConfig(in_features=12, classes=["0", "1", "2"], d_head=4, n_heads=2)
    speech = SpeechConfig(encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0,
                                                attention_dropout=0.0, window=3, positional="none",
                                                relative_bias=True),
                          frames=FrameSpec(8000, bins=16), conv_kernel=3, labels=["low", "high"])
    seq2seq = Seq2SeqConfig(source="chars", target="words",
                            encoder=EncoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32),
                            decoder=DecoderConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32),
                            source_symbols=SPECIALS + list("abcdef"), target_symbols=SPECIALS + list("abcdef"))
    return {
        "tag": _write_model_dir(root / "tag", "tagger", tagger, Tagger(tagger), {"subwords.model": SHIPPED_SUBWORDS}),
        "graph": _write_model_dir(root / "graph", "graph", graph, NodeClassifier(graph)),
        "speech": _write_model_dir(root / "speech", "speech", speech, SpeechModel(speech)),
        "seq2seq": _write_model_dir(root / "seq2seq", "seq2seq", seq2seq, Seq2Seq(seq2seq)),
    }


# --------------------------------------------------------------------------- mutations


def config(*path, value):
    """Set config.json's ``config``.path to value (path ``("..", key)`` sets a top-level key)."""
    def mutate(model: Path) -> None:
        meta = json.loads((model / "config.json").read_text())
        node = meta if path[0] == ".." else meta["config"]
        keys = path[1:] if path[0] == ".." else path
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        (model / "config.json").write_text(json.dumps(meta, indent=1))
    return mutate


def remove_config_key(key):
    def mutate(model: Path) -> None:
        meta = json.loads((model / "config.json").read_text())
        del meta[key]
        (model / "config.json").write_text(json.dumps(meta, indent=1))
    return mutate


def raw_config(old: str, new: str):
    """Replace text in config.json (for what json.dumps would never write: NaN, 5000 digits)."""
    def mutate(model: Path) -> None:
        text = (model / "config.json").read_text()
        assert old in text, old
        (model / "config.json").write_text(text.replace(old, new, 1))
    return mutate


def both(*mutations):
    def mutate(model: Path) -> None:
        for one in mutations:
            one(model)
    return mutate


def write(name: str, data: bytes):
    def mutate(model: Path) -> None:
        (model / name).write_bytes(data)
    return mutate


def tensors(change):
    """Load model.safetensors, let ``change`` edit the dict of tensors, save it again."""
    def mutate(model: Path) -> None:
        from safetensors.torch import load_file, save_file

        weights = load_file(str(model / "model.safetensors"))
        change(weights)
        save_file(weights, str(model / "model.safetensors"))
    return mutate


def _first_float(weights):
    return next(name for name, t in sorted(weights.items()) if t.is_floating_point() and t.numel() > 1)


def _poison(value):
    def change(weights):
        name = _first_float(weights)
        weights[name] = weights[name].clone()
        weights[name].view(-1)[1] = value
    return change


def _as_integers(weights):
    for name in [n for n, t in weights.items() if t.is_floating_point()]:
        weights[name] = (weights[name] * 100).long()


def _reshape(weights):
    name = _first_float(weights)
    weights[name] = weights[name].reshape(-1)[:-1].clone()


def _drop(weights):
    del weights[_first_float(weights)]


def _extra(weights):
    import torch

    weights["smuggled.weight"] = torch.zeros(3)


def _half(weights):
    name = _first_float(weights)
    weights[name] = weights[name].half()


def _fewer_pieces(weights):
    weights["piece_embed.weight"] = weights["piece_embed.weight"][:100].clone()


def _truncate(model: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) - 64])


def _huge_header(model: Path) -> None:
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes((2 ** 62).to_bytes(8, "little") + data[8:])


DEEP = b'{"task": "tagger", "config": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
NESTED = ('{"task": "tagger", "format_version": 1, "config": {"encoder": {"d_model": ' + "[" * 40 + "1"
          + "]" * 40 + "}}}").encode()
HUGE_MODEL = {"d_model": 8192, "n_heads": 8, "n_layers": 64, "d_ff": 65536, "window": 2, "relative_bias": True}

# (kind, id, mutation, parts of the one-line message); every kind also gets COMMON below
CASES = [
    ("tag", "n_heads 0", config("encoder", "n_heads", value=0), "config.json: encoder.n_heads must be >= 1"),
    ("tag", "heads not dividing d_model", config("encoder", "n_heads", value=3), "encoder.n_heads must divide"),
    ("tag", "words []", config("words", value=[]), "config.json: words must hold <pad>, <unk>"),
    ("tag", "tags []", config("tags", value=[]), "tags must hold at least one tag"),
    ("tag", "chars of numbers", config("chars", value=[0, 1, 2]), "chars[0] must be a string, got 0"),
    ("tag", "nested JSON", write("config.json", DEEP), "config.json", "nested deeper than"),
    ("tag", "nested value", write("config.json", NESTED), "config.json", "nested deeper than 32"),
    ("tag", "5000-digit integer", raw_config('"word_dim": 8', '"word_dim": ' + "9" * 5000), "config.json",
     "an integer of 5000 digits"),
    ("tag", "NaN dropout", raw_config('"dropout": 0.1', '"dropout": NaN'), "config.json", "NaN"),
    ("tag", "1e999 dropout", raw_config('"dropout": 0.1', '"dropout": 1e999'), "config.json", "out of range"),
    ("tag", "dropout 1", config("encoder", "dropout", value=1.0), "encoder.dropout must be >= 0 and < 1, got 1.0"),
    ("tag", "word_dim 300000", config("word_dim", value=300_000), "word_dim must be >= 1 and <= 8192, got 300000"),
    ("tag", "n_layers 100000", config("encoder", "n_layers", value=100_000), "encoder.n_layers must be >= 1 and <= 256"),
    ("tag", "billions of parameters", config("encoder", value=HUGE_MODEL), "config.json", "parameters, more than"),
    ("tag", "window 5000", config("encoder", "window", value=5000), "encoder.window must be >= 0 and <= 4096"),
    ("tag", "bias without window", config("encoder", "window", value=None), "encoder.relative_bias needs a window"),
    ("tag", "bool for int", config("encoder", "n_layers", value=True), "encoder.n_layers must be an integer, got true"),
    ("tag", "string for int", config("word_dim", value="8"), "word_dim must be an integer, got '8'"),
    ("tag", "float for int", config("word_dim", value=8.0), "word_dim must be an integer, got 8.0"),
    ("tag", "unknown key", config("encoder", "n_head", value=2), "encoder: 'n_head' is not a setting of EncoderConfig"),
    ("tag", "unknown score", config("encoder", "score", value="cosine"), "encoder.score must be one of"),
    ("tag", "config a list", config("..", "config", value=[1]), "config must be an object"),
    ("tag", "no config", remove_config_key("config"), "config must be an object, got null"),
    ("tag", "format version as string", config("..", "format_version", value="1"), 'model format version "1"'),
    ("tag", "other task", config("..", "task", value="speech"), "a speech model, not a tagger model"),
    ("tag", "subword vocabulary too small", both(config("subword_vocab_size", value=100), tensors(_fewer_pieces)),
     "subwords.model: 4,000 pieces, but config.json's subword_vocab_size is 100"),
    ("tag", "damaged subwords", write("subwords.model", b"\x00garbage" * 10), "subwords.model",
     "not a sentencepiece model"),
    ("graph", "propagation_steps 1e9", config("propagation_steps", value=10 ** 9),
     "propagation_steps must be >= 1 and <= 100, got 1000000000"),
    ("graph", "propagation_steps 1e9 float", raw_config('"propagation_steps": 1', '"propagation_steps": 1e9'),
     "propagation_steps must be an integer, got 1000000000.0"),
    ("graph", "in_features 0", config("in_features", value=0), "in_features must be >= 1 for a trained model"),
    ("graph", "classes []", config("classes", value=[]), "classes must hold at least one class"),
    ("graph", "teleport 1", config("teleport", value=1.0), "teleport must be >= 0 and < 1"),
    ("graph", "billions of parameters", both(config("in_features", value=10 ** 7), config("n_heads", value=64)),
     "parameters, more than the 200,000,000"),
    ("speech", "even conv kernel", config("conv_kernel", value=4), "conv_kernel must be odd, got 4"),
    ("speech", "stride 0", config("stride", value=0), "stride must be >= 1"),
    ("speech", "absolute positions", config("encoder", "positional", value="sinusoidal"),
     "encoder.positional must be 'none'"),
    ("speech", "full attention",
     config("encoder", value={"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "positional": "none"}),
     "encoder.window must be a number of steps"),
    ("speech", "receptive field", both(config("encoder", "n_layers", value=2), config("encoder", "window", value=3000)),
     "receptive field of 12,001 frames"),
    ("speech", "sample rate 0", config("frames", "sample_rate_hz", value=0), "frames: sample rate must be"),
    ("speech", "bins 100000", config("frames", "bins", value=100_000), "frames.bins must be >= 1 and <= 4096"),
    ("speech", "NaN window", raw_config('"window_ms": 25.0', '"window_ms": NaN'), "NaN"),
    ("speech", "labels []", config("labels", value=[]), "labels must hold at least one label"),
    ("seq2seq", "d_model mismatch", config("decoder", "d_model", value=32), "decoder.d_model must equal encoder"),
    ("seq2seq", "target symbols []", config("target_symbols", value=[]), "target_symbols must hold"),
    ("seq2seq", "max_output_ratio 1e9", config("max_output_ratio", value=1e9), "max_output_ratio must be > 0"),
    ("seq2seq", "frame_stride 3", config("frame_stride", value=3), "frame_stride must be one of 1, 2, 4"),
    ("seq2seq", "unknown source", config("source", value="bytes"), "source must be one of"),
]
COMMON = [
    ("NaN weight", tensors(_poison(float("nan"))), "model.safetensors", "NaN or infinite"),
    ("infinite weight", tensors(_poison(float("inf"))), "model.safetensors", "NaN or infinite"),
    ("integer weights", tensors(_as_integers), "model.safetensors", "holds I64, the config's model needs F32"),
    ("half weights", tensors(_half), "model.safetensors", "holds F16"),
    ("wrong shape", tensors(_reshape), "model.safetensors", "has shape"),
    ("missing tensor", tensors(_drop), "model.safetensors", "tensors of the config's model are missing"),
    ("extra tensor", tensors(_extra), "model.safetensors", "smuggled.weight"),
    ("truncated weights", _truncate, "model.safetensors", "unreadable weights"),
    ("huge header", _huge_header, "model.safetensors", "not a safetensors file"),
    ("garbage weights", write("model.safetensors", b"\xff" * 64), "model.safetensors", "not a safetensors file"),
    ("empty weights", write("model.safetensors", b""), "model.safetensors", "not a safetensors file"),
    ("config not JSON", write("config.json", b'{"task": "x", '), "config.json", "not valid JSON"),
    ("config not UTF-8", write("config.json", b'{"task": "\xff"}'), "config.json", "not valid JSON"),
    ("config too large", write("config.json", b" " * (17 << 20)), "config.json", "larger than 16 MiB"),
    ("config an array", write("config.json", b"[1, 2]"), "config.json", "not a JSON object"),
]
ALL = CASES + [(kind, case_id, *rest) for kind in ("tag", "graph", "speech", "seq2seq") for case_id, *rest in COMMON]


def _argv(kind: str, model: Path, inputs: dict[str, Path]) -> list[str]:
    return {"tag": ["tag", str(inputs["text"]), "--model", str(model)],
            "graph": ["graph", str(inputs["graph"]), "--model", str(model)],
            "speech": ["speech", str(CLIP), "--model", str(model)],
            "seq2seq": ["seq2seq", str(inputs["letters"]), "--model", str(model)]}[kind]


CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import seqattn


def peak_mb():
    # VmHWM: this process's own peak.  ru_maxrss keeps the peak of the pytest process it was forked
    # from across exec (Linux folds the old mm's high-water mark into it), 630 MB in a full run.
    try:
        kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


results = {}
for case_id, argv in json.loads(sys.stdin.read()):
    proc = seqattn(*argv)
    results[case_id] = {"code": proc.returncode, "stderr": proc.stderr.decode("utf-8", "replace"),
                        "stdout": len(proc.stdout), "peak_rss_mb": peak_mb()}
results["peak_rss_mb"] = peak_mb()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run through the CLI: one child process per kind; case id -> code and stderr."""
    root = tmp_path_factory.mktemp("hostile-models")
    base = build_models(root / "base")
    inputs = {"text": root / "text.txt", "letters": root / "letters.txt",
              "graph": make_planetoid(root / "planetoid", n_words=12)}
    inputs["text"].write_text("the fox\n", encoding="utf-8")
    inputs["letters"].write_text("abc\ncab\n", encoding="utf-8")
    results = {}
    for kind, model in base.items():
        runs = [(f"{kind}: valid", _argv(kind, model, inputs))]
        for case_kind, case_id, mutate, *_ in ALL:
            if case_kind == kind:
                copy = root / "cases" / kind / str(len(runs))
                shutil.copytree(model, copy)
                mutate(copy)
                runs.append((f"{kind}: {case_id}", _argv(kind, copy, inputs)))
        proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], input=json.dumps(runs), capture_output=True,
                              text=True, timeout=600, cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        found = json.loads(proc.stdout)
        results[f"{kind}: peak_rss_mb"] = found.pop("peak_rss_mb")
        results.update(found)
    return results


@pytest.mark.parametrize("kind", ["tag", "graph", "speech", "seq2seq"])
def test_the_unbroken_model_runs_and_memory_stays_bounded(outcomes, kind):
    valid = outcomes[f"{kind}: valid"]
    assert valid["code"] == 0 and valid["stdout"] > 0, valid["stderr"]
    peaks = {case: round(result["peak_rss_mb"]) for case, result in outcomes.items()
             if case.startswith(f"{kind}: ") and isinstance(result, dict)}
    assert outcomes[f"{kind}: peak_rss_mb"] < MAX_RSS_MB, peaks  # the peak after each case, in order


@pytest.mark.parametrize("kind,case_id,needles", [(k, c, n) for k, c, _, *n in ALL],
                         ids=[f"{k}: {c}" for k, c, *_ in ALL])
def test_a_hostile_model_directory_is_one_line_and_exit_2(outcomes, kind, case_id, needles):
    result = outcomes[f"{kind}: {case_id}"]
    lines = result["stderr"].splitlines()
    assert result["code"] == 2 and len(lines) == 1, result
    assert lines[0].startswith("seqattn: error: ") and "unexpected" not in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result["stdout"] == 0


# --------------------------------------------------------------------------- shipped names


def test_a_shipped_name_always_means_the_shipped_model(tmp_path, monkeypatch):
    """A directory named like a shipped model in the working directory is reached only by a path."""
    models = build_models(tmp_path / "built")
    impostor = tmp_path / "work" / "en-upos"
    shutil.copytree(models["tag"], impostor)
    tensors(_poison(float("nan")))(impostor)
    shipped = seqattn("tag", SAMPLE, "--model", "en-upos")
    monkeypatch.chdir(tmp_path / "work")
    same = seqattn("tag", SAMPLE, "--model", "en-upos")
    assert same.returncode == 0 and same.stdout == shipped.stdout and same.stdout
    local = seqattn("tag", SAMPLE, "--model", "./en-upos")
    assert local.returncode == 2 and b"model.safetensors: tensor" in local.stderr and b"NaN" in local.stderr
    from seqattn.models.io import resolve

    assert resolve("en-upos", "tagger")[1] is True
    assert resolve(Path("en-upos"), "tagger") == (Path("en-upos"), False)  # a Path is a path


# --------------------------------------------------------------------------- NaN never reaches JSON


def _overflowing(weights):
    """Finite weights (they pass every check) so large that a forward pass overflows to inf and NaN."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and "feature_std" not in name:
            weights[name] = tensor * 1e30 + 1e30


@pytest.mark.parametrize("kind", ["tag", "graph", "speech", "seq2seq"])
def test_a_nan_output_is_one_error_not_invalid_json(tmp_path, kind):
    model = build_models(tmp_path / "built")[kind]
    tensors(_overflowing)(model)
    (tmp_path / "text.txt").write_text("the fox\n", encoding="utf-8")
    (tmp_path / "letters.txt").write_text("abc\n", encoding="utf-8")
    inputs = {"text": tmp_path / "text.txt", "letters": tmp_path / "letters.txt",
              "graph": make_planetoid(tmp_path / "planetoid", n_words=12)}
    extra = ["--precision", "fp32"] if kind == "tag" else []
    proc = seqattn(*_argv(kind, model, inputs), "--format", "jsonl", *extra)
    for line in proc.stdout.decode().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in the JSON output"))
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("seqattn: error: "), proc.stderr
    assert "NaN or infinite number, which JSON cannot hold" in lines[0] or "NaN scores" in lines[0], lines[0]
