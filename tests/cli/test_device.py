"""`--device` of the commands that run a model (seqattn.models.device): names, errors, same outputs.

CI has no GPU: there the CUDA tests skip, and `--device cuda` must fail with one line and exit 2.
"""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from seqattn.errors import InputError
from seqattn.models.device import check_device, inference_precision, resolve_device
from tests.cli.test_tag_cli import assert_one_line_error
from tests.conftest import seqattn, tone_clip

HAS_CUDA = torch.cuda.is_available()
needs_no_gpu = pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU, so --device cuda is no error here")
needs_gpu = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (CI has none)")


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12", "auto"])
def test_device_names_that_are_accepted(name):
    assert check_device(name) == name


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:", "cuda:x", "cuda0", "mps", ""])
def test_other_device_names_are_input_errors(name):
    with pytest.raises(InputError, match="unknown --device"):
        check_device(name)


def test_cpu_and_auto_without_a_gpu_resolve_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="sees no CUDA GPU"):
        resolve_device("cuda")


def test_gpu_index_past_the_last_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"2 CUDA GPUs \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_precision_defaults_to_int8_on_the_cpu_and_fp32_on_a_gpu():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert inference_precision(None, cpu) == "int8" and inference_precision(None, gpu) == "fp32"
    assert inference_precision("fp32", cpu) == "fp32" and inference_precision("fp32", gpu) == "fp32"
    with pytest.raises(InputError, match="int8 runs on the CPU only"):
        inference_precision("int8", gpu)
    with pytest.raises(InputError, match="unknown --precision"):
        inference_precision("fp16", cpu)


# --------------------------------------------------------------------------- every command


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_tagger_dir, tiny_treebank, tiny_planetoid, tiny_graph_model_dir, tiny_speech_dir,
           tone_manifests):
    """Per command: the arguments that run it on a tiny model (--device is added by each test)."""
    root = tmp_path_factory.mktemp("device")
    text = root / "text.txt"
    text.write_text("the cat sees a big dog .\nAlice likes Paris .\n", encoding="utf-8")
    clip = root / "two.wav"
    rng = np.random.default_rng(0)
    sf.write(clip, np.concatenate([tone_clip("high", rng), tone_clip("low", rng)]), 8000)
    words = root / "words.txt"
    words.write_text("CAT\nATTENTION\n", encoding="utf-8")
    return {
        "tag": ["tag", text, "--model", tiny_tagger_dir, "--format", "jsonl", "--attention"],
        "evaluate tagger": ["evaluate", "tagger", "--data", tiny_treebank[1], "--model", tiny_tagger_dir,
                            "--format", "json"],
        "graph": ["graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--format", "tsv"],
        "evaluate graph": ["evaluate", "graph", "--data", tiny_planetoid, "--model", tiny_graph_model_dir,
                           "--format", "json"],
        "speech": ["speech", clip, "--model", tiny_speech_dir, "--format", "jsonl", "--attention"],
        "evaluate speech": ["evaluate", "speech", "--data", tone_manifests[1], "--model", tiny_speech_dir,
                            "--format", "json", "--quiet"],
        "seq2seq": ["seq2seq", words, "--format", "jsonl", "--attention"],  # the shipped en-g2p
        "benchmark speed": ["benchmark", "speed", "--model", tiny_tagger_dir, "--data", tiny_treebank[1],
                            "--repeats", "1", "--format", "json"],
    }


COMMANDS = ["tag", "evaluate tagger", "graph", "evaluate graph", "speech", "evaluate speech", "seq2seq",
            "benchmark speed"]
TIMED = {"seconds", "tokens_per_second", "x_real_time", "per_second", "runs", "load_seconds"}


def _without_times(stdout: bytes) -> list:
    """JSON lines with wall-clock fields dropped; other output as its lines."""
    lines = stdout.decode().splitlines()
    try:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMED} for line in lines]
    except json.JSONDecodeError:
        return lines


@needs_no_gpu
@pytest.mark.parametrize("command", COMMANDS)
def test_cuda_without_a_gpu_is_one_line_and_exit_2(command, inputs):
    proc = seqattn(*inputs[command], "--device", "cuda")
    assert_one_line_error(proc)
    assert "--device cuda: torch" in proc.stderr.decode() and "sees no CUDA GPU" in proc.stderr.decode()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_malformed_device_is_one_line_and_exit_2(command, inputs):
    proc = seqattn(*inputs[command], "--device", "gpu")
    assert_one_line_error(proc)
    assert "unknown --device 'gpu'" in proc.stderr.decode()


@needs_no_gpu
@pytest.mark.parametrize("command", COMMANDS)
def test_cpu_and_auto_give_the_default_output(command, inputs):
    default = seqattn(*inputs[command])
    assert default.returncode == 0, default.stderr.decode()
    for device in ("cpu", "auto"):
        proc = seqattn(*inputs[command], "--device", device)
        assert proc.returncode == 0, proc.stderr.decode()
        assert _without_times(proc.stdout) == _without_times(default.stdout)


def test_evaluations_say_where_they_ran(inputs):
    for command in ("evaluate tagger", "evaluate graph", "evaluate speech", "benchmark speed"):
        result = json.loads(seqattn(*inputs[command], "--device", "cpu").stdout)
        assert result["device"] == "cpu", command
    tagger = json.loads(seqattn(*inputs["evaluate tagger"], "--device", "cpu").stdout)
    assert tagger["precision"] == "int8"  # the CPU's default, as `seqattn tag`


@needs_gpu
@pytest.mark.parametrize("command", ["tag", "graph", "speech", "seq2seq"])
def test_a_gpu_gives_the_cpus_fp32_answers(command, inputs):
    """Tags, classes and outputs agree; probabilities and weights within float rounding."""
    extra = ["--precision", "fp32"] if command == "tag" else []
    cpu = seqattn(*inputs[command], *extra, "--device", "cpu")
    gpu = seqattn(*inputs[command], *extra, "--device", "cuda")
    assert cpu.returncode == 0 and gpu.returncode == 0, gpu.stderr.decode()
    cpu_out, gpu_out = _without_times(cpu.stdout), _without_times(gpu.stdout)
    if command == "graph":
        assert [line.split("\t")[1] for line in cpu_out] == [line.split("\t")[1] for line in gpu_out]
        return
    key = {"tag": "tags", "speech": "transcript", "seq2seq": "output"}[command]
    assert [o[key] for o in cpu_out] == [o[key] for o in gpu_out]
    if command == "tag":
        for a, b in zip(cpu_out, gpu_out):
            assert np.allclose(a["probabilities"], b["probabilities"], atol=1e-3)
            assert np.allclose(a["attention"], b["attention"], atol=1e-3)


# --------------------------------------------------------------------------- no GPU needed


def test_every_models_forward_makes_no_tensor_on_the_cpu(tiny_tagger_dir, tiny_graph_model_dir, tiny_planetoid,
                                                          tiny_speech_dir, monkeypatch):
    """With weights and inputs on the meta device (shapes, no data), any tensor a forward makes on
    the CPU meets a meta tensor and raises: the check a GPU run would make, on a machine without one."""
    import torch.fx.experimental._config as fx_config

    from seqattn.models.device import to_device
    from seqattn.nn import graph_attention
    from seqattn.nn.decoder import _memory_allowed
    from seqattn.readers.graph import read_planetoid
    from seqattn.tasks.graph import load_node_classifier
    from seqattn.tasks.seq2seq import load_seq2seq
    from seqattn.tasks.speech import load_speech_model
    from seqattn.tasks.tagging import load_tagger

    meta = torch.device("meta")
    tagger = load_tagger(tiny_tagger_dir)
    model = tagger.model.to(meta)
    for words in (["the", "cat", "sees", "a", "dog", "."] * 4, ["Alice", "sees", "."]):  # banded and one SDPA call
        batch = tagger.featurizer.batch([words, ["Bob", "."]])
        logits, weights = model(to_device(batch, meta), return_weights=True)
        assert logits.device == meta and logits.shape[:2] == (2, len(words)) and weights[0].device == meta
        logits = model(to_device(batch, meta))  # the fused path (no weights)
        assert logits.device == meta

    speech = load_speech_model(tiny_speech_dir).model.to(meta)
    out = speech(torch.zeros(1, 700, speech.cfg.frames.bins, device=meta), return_weights=True)
    assert out["frame_logits"].device == meta and speech.class_head.scores(out["hidden"][0]).device == meta

    classifier = load_node_classifier(tiny_graph_model_dir)
    x, edge_index = classifier.inputs(read_planetoid(tiny_planetoid))
    monkeypatch.setattr(graph_attention, "check_edge_index", lambda *args: None)  # reads values: not on meta
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        logits, _, _ = classifier.model.to(meta)((x.to_dense() if x.is_sparse else x).to(meta), edge_index.to(meta),
                                                 return_weights=True)
    assert logits.device == meta

    g2p = load_seq2seq("en-g2p")
    batch = to_device(g2p.featurizer.batch(["HELLO", "CAT"]), meta)
    model = g2p.model.to(meta)
    memory, padding = model.encode(batch["source"], batch["source_padding"])
    memory_kv, caches = model.decoder.memory(memory), [dict() for _ in model.decoder.blocks]
    last = torch.zeros(2, 1, dtype=torch.long, device=meta)
    for position in range(2):  # the KV cache's second step too
        logits, _ = model.decoder.step(last, memory_kv, _memory_allowed(memory, padding), caches, position)
    assert logits.device == meta


def test_predictions_come_back_from_the_device_before_they_are_read(tiny_tagger_dir, tiny_graph_model_dir,
                                                                    tiny_planetoid, tiny_speech_dir, tone_manifests,
                                                                    monkeypatch):
    """Whole predictions with the models on the meta device, where ``.cpu()`` gives zeros of the
    right shape: an output read (``.tolist()``, ``.numpy()``) without coming back first raises."""
    import torch.fx.experimental._config as fx_config

    from seqattn.nn import graph_attention
    from seqattn.readers.graph import read_planetoid
    from seqattn.tasks.graph import LoadedNodeClassifier, load_node_classifier
    from seqattn.tasks.speech import load_speech_model, read_manifest, recognise
    from seqattn.tasks.tagging import load_tagger

    meta, to_cpu = torch.device("meta"), torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda t: torch.zeros(t.shape, dtype=t.dtype) if t.is_meta else to_cpu(t))

    tagger = load_tagger(tiny_tagger_dir)
    tagger.model.to(meta)
    tagger.device = meta
    tagged = tagger.predict([["the", "cat", "sees", "a", "dog", "."] * 4, ["Alice", "."]], with_attention=True)
    assert [len(t.tags) for t in tagged] == [24, 2] and tagged[0].attention[0].device.type == "cpu"

    speech = load_speech_model(tiny_speech_dir)
    speech.model.to(meta)
    speech.device = meta
    result = recognise(speech, read_manifest(tone_manifests[1])[0].path, attention_layer=-1)
    assert result.label in speech.cfg.labels and result.frames > 0 and result.attention.rows

    classifier = load_node_classifier(tiny_graph_model_dir)
    classifier.model.to(meta)
    classifier.device = meta
    inputs = LoadedNodeClassifier.inputs
    monkeypatch.setattr(LoadedNodeClassifier, "inputs",  # sparse features have no meta kernels
                        lambda self, graph: tuple(t.to_dense() if t.is_sparse else t for t in inputs(self, graph)))
    monkeypatch.setattr(graph_attention, "check_edge_index", lambda *args: None)  # reads values: not on meta
    graph = read_planetoid(tiny_planetoid)
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        nodes = classifier.predict(graph, with_attention=True)
    assert len(nodes.classes) == graph.n_nodes and nodes.edge_index.device.type == "cpu"


def test_auto_with_int8_runs_on_the_cpu_where_int8_runs(tiny_tagger_dir, monkeypatch):
    from seqattn.tasks.tagging import load_tagger

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU host, as far as auto can tell
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    tagger = load_tagger(tiny_tagger_dir, "int8", "auto")
    assert tagger.device == torch.device("cpu") and tagger.precision == "int8"
    with pytest.raises(InputError, match="int8 runs on the CPU only"):
        load_tagger(tiny_tagger_dir, "int8", "cuda")


@pytest.mark.parametrize("task", ["tagger", "graph", "speech", "seq2seq"])
def test_evaluate_checks_the_device_before_reading_its_data(task, tmp_path):
    proc = seqattn("evaluate", task, "--data", tmp_path / "missing", "--device", "gpu")
    assert_one_line_error(proc)
    assert "unknown --device" in proc.stderr.decode()
