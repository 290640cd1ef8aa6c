"""End-to-end throughput of a model on real data, like ``spacy benchmark speed``.

The model is loaded once (its load time reported apart), warmed up, and then run over the whole
data ``repeats`` times; the result is the median rate over the runs, in the task's own unit:

    tagger   words per second       data: CoNLL-U (its gold words) or text (tokenised by seqattn)
    speech   audio seconds per second (x real time)    data: a clip, or a manifest TSV of clips
    graph    nodes per second       data: a graph as ``seqattn graph`` reads it

Reading the data is outside the timed runs for text and graphs; for speech, decoding and
framing the audio is part of every run (that is what ``seqattn speech`` does).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from seqattn.errors import InputError, ModelError

UNITS = {"tagger": "words", "speech": "audio_seconds", "graph": "nodes"}


def model_task(name_or_path: str) -> str:
    """The task of a shipped model's name or a model directory, read from its config.

    Raises:
        ModelError: neither a shipped model nor a model directory with a readable config.
    """
    from seqattn.models.io import CONFIG, registry

    shipped = registry()
    if name_or_path in shipped and not Path(name_or_path).exists():
        return shipped[name_or_path]["task"]
    config = Path(name_or_path) / CONFIG
    try:
        return json.loads(config.read_text(encoding="utf-8"))["task"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise ModelError(f"{name_or_path}: not a shipped model ({', '.join(shipped)}) "
                         f"nor a model directory with a readable {CONFIG}") from None


def _tagger_runner(model: str, data: Path, precision: str | None, device: str):
    from seqattn.readers.conllu import read_conllu
    from seqattn.readers.text import iter_items, open_text
    from seqattn.tasks.tagging import load_tagger

    if data.suffix == ".conllu":
        sentences = [s.words for s in read_conllu(data)]
    else:
        with open_text(str(data)) as lines:
            sentences = [item.words for item in iter_items(lines, "text") if not item.is_break]
    if not sentences:
        raise InputError(f"{data}: no words to tag")
    tagger = load_tagger(model, precision, device)
    tagger.predict(sentences[:64])  # warm-up
    return (lambda: tagger.predict(sentences)), sum(map(len, sentences)), tagger.precision, tagger.device


def _speech_runner(model: str, data: Path, precision: str | None, device: str):
    from seqattn.readers.audio import audio_info
    from seqattn.tasks.speech import load_speech_model, read_manifest, recognise

    clips = [row.path for row in read_manifest(data)] if data.suffix == ".tsv" else [data]
    seconds = sum(audio_info(clip).duration_s for clip in clips)
    loaded = load_speech_model(model, device)
    recognise(loaded, clips[0])  # warm-up
    return (lambda: [recognise(loaded, clip) for clip in clips]), seconds, "fp32", loaded.device


def _graph_runner(model: str, data: Path, precision: str | None, device: str):
    from seqattn.readers.graph import read_graph
    from seqattn.tasks.graph import load_node_classifier

    graph = read_graph(str(data))
    classifier = load_node_classifier(model, device)
    classifier.predict(graph)  # warm-up
    return (lambda: classifier.predict(graph)), graph.n_nodes, "fp32", classifier.device


RUNNERS = {"tagger": _tagger_runner, "speech": _speech_runner, "graph": _graph_runner}


def speed(model: str, data: str | Path, repeats: int = 3, precision: str | None = None, device: str = "cpu") -> dict:
    """Measure a model's throughput on ``data`` (see the module docstring for units and data).

    Args:
        precision: for taggers, "int8", "fp32" or None (what ``seqattn tag`` uses: int8 on the
            CPU, fp32 on a GPU); other models run in fp32.
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device).  Outputs come back to
            the CPU in every run, so a GPU's runs are timed to their end.
    Returns:
        {"model", "task", "data", "unit", "units", "per_second" (median over runs),
         "runs" (rate of each run), "load_seconds" (reading the data, loading and warming up
         the model), "threads", "precision", "device"}
    Raises:
        InputError: unreadable data, repeats < 1, an unknown device or one torch does not see;
        ModelError: an unknown model or one of a task without a speed benchmark.
    """
    import torch

    if repeats < 1:
        raise InputError("--repeats must be >= 1")
    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such file or directory")
    task = model_task(model)
    if task not in RUNNERS:
        raise ModelError(f"{model}: no speed benchmark for {task} models (known: {', '.join(RUNNERS)})")
    start = time.perf_counter()
    run, units, precision, place = RUNNERS[task](model, data, precision, device)
    load_seconds = time.perf_counter() - start
    rates = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            rates.append(units / (time.perf_counter() - start))
    return {"model": model, "task": task, "data": str(data), "unit": UNITS[task], "units": round(units, 2),
            "per_second": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates],
            "load_seconds": round(load_seconds, 2), "threads": torch.get_num_threads(),
            "precision": precision, "device": str(place)}
