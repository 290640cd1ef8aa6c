"""Seq2seq as a library: symbols, batches, train, load, decode (greedy / beam) and evaluate.

The CLI (seqattn.cli.seq2seq) parses arguments and renders; these functions never print.
Progress is reported through optional callbacks.

Metrics (``evaluate_seq2seq``), each source compared with the *closest* of its references:
    sequence error rate: share of sources whose output matches none of their references
        (the G2P literature's "WER": every source is one dictionary word);
    symbol error rate: edit distance in target symbols / reference symbols, summed over the
        data (the G2P "PER" for phonemes, the CER for characters);
    word error rate: edit distance in whitespace-separated words / reference words (ASR's WER);
    BLEU: sacrebleu's corpus BLEU (13a tokenisation) of the detokenised outputs.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from seqattn.errors import InputError, ModelError
from seqattn.models.device import resolve_device, to_device
from seqattn.models.io import read_model
from seqattn.featurise.batching import length_batches
from seqattn.featurise.seq2seq import Featurizer, Symbols, build_symbols
from seqattn.models.seq2seq import BOS, EOS, Seq2Seq, Seq2SeqConfig
from seqattn.nn.decoder import beam_search
from seqattn.readers.pairs import Pair
from seqattn.tasks.scoring import edit_distance
from seqattn.training.engine import FitSettings

TASK = "seq2seq"
SUBWORD_FILES = {"source": "source.model", "target": "target.model"}


# --------------------------------------------------------------------------- loading and decoding


@dataclass
class Output:
    """A decoded output: its text, symbols, log-probability (length-normalised) and alignment.

    attention: (T, S) encoder-decoder weights of the last decoder layer, mean over heads; row t
    is output symbol t (the last row is EOS), column s source symbol (or encoder step) s.
    """

    text: str
    symbols: list[str]
    score: float
    source_symbols: list[str]
    attention: torch.Tensor | None = None
    maps: "AttentionMaps | None" = None  # every layer's and head's weights (``decode(with_maps=True)``)


@dataclass
class AttentionMaps:
    """Every attention of one decoded output, each a list over layers (first layer first).

    encoder: the encoder's self-attention over the source, L x (H, S, S) (band layout
    (H, S, 2w + 1) with ``window``); decoder: the decoder's masked self-attention, L x (H, T, T);
    cross: encoder-decoder attention, L x (H, T, S).  Decoder position t reads ``<s>`` (t = 0) or
    output symbol t - 1 and predicts output symbol t (the last, EOS).
    """

    encoder: list[torch.Tensor]
    decoder: list[torch.Tensor]
    cross: list[torch.Tensor]
    window: int | None = None  # the encoder's attention window (None: full attention)


class LoadedSeq2Seq:
    """A seq2seq model ready to decode: model in eval mode, featurizer, config and metadata."""

    def __init__(self, model: Seq2Seq, featurizer: Featurizer, meta: dict, path: Path):
        self.model, self.featurizer, self.meta, self.path = model.eval(), featurizer, meta, path
        self.cfg = model.cfg
        self.device = next(model.parameters()).device  # where it runs (seqattn.models.device)

    def decode(self, sources: list, beam: int = 5, max_tokens: int = 4096, with_attention: bool = False,
               on_batch: Callable[[int, int], None] | None = None, with_maps: bool = False) -> list[Output]:
        """Decode sources (texts, or frame matrices for a frames model), batching by length; keeps order.

        Args:
            beam: 1 = greedy search; K > 1 = beam search with length normalisation.
            max_tokens: padded source positions (times the beam) per batch.
            with_attention: keep each output's alignment (``Output.attention``).
            with_maps: keep every attention of each output (``Output.maps``, ``attention_maps``).
            on_batch: called with (sources done, sources) after each batch.
        Raises:
            InputError: beam < 1, or frames given to a text model (or text to a frames model).
        """
        if beam < 1:
            raise InputError(f"--beam must be >= 1, got {beam}")
        frames = self.cfg.source == "frames"
        for s in sources:
            if isinstance(s, np.ndarray) != frames:
                raise InputError(f"this model reads {'frames' if frames else 'text'}, got "
                                 f"{'frames' if isinstance(s, np.ndarray) else 'text'}")
        lengths = [self.featurizer.source_length(s) for s in sources]
        results: list[Output | None] = [None] * len(sources)
        done = 0
        for ids in length_batches(lengths, max(max_tokens // beam, max(lengths, default=1))):
            with torch.inference_mode():
                batch = to_device(self.featurizer.batch([sources[i] for i in ids]), self.device)
                memory, padding = self.model.encode(batch["source"], batch["source_padding"])
                max_len = int(self.cfg.max_output_ratio * max(lengths[i] for i in ids)) + 10
                if frames:
                    max_len = int(self.cfg.max_output_ratio * memory.shape[1]) + 10
                found = beam_search(self.model.decoder, memory, BOS, EOS, max_len, beam=beam,
                                    memory_padding=padding, with_attention=with_attention)
            for row, i in enumerate(ids):
                if not found[row]:  # every score NaN: no prefix ever compares as better than another
                    raise ModelError(f"{self.path}: the model gave NaN scores; its weights are damaged or too large")
                best = found[row][0]
                symbols = self.featurizer.target.decode(best.ids)
                n_source = int((~padding[row]).sum())
                source_symbols = ([f"t{k}" for k in range(n_source)] if frames
                                  else self.featurizer.source.split(sources[i]))
                attention = best.attention[:, :n_source].cpu() if best.attention is not None else None
                results[i] = Output(self.featurizer.target.join(symbols), symbols, best.log_prob, source_symbols,
                                    attention, self.attention_maps(sources[i], best.ids) if with_maps else None)
            done += len(ids)
            if on_batch:
                on_batch(done, len(sources))
        return results  # type: ignore[return-value]


    def attention_maps(self, source, ids: list[int]) -> AttentionMaps:
        """Every layer's and head's attention for ``source`` decoded as ``ids`` (without BOS/EOS):
        one teacher-forced pass of BOS + ids, which computes what the search computed step by step."""
        with torch.inference_mode():
            batch = to_device(self.featurizer.batch([source]), self.device)
            memory, padding, encoder = self.model.encode(batch["source"], batch["source_padding"], return_weights=True)
            targets = torch.tensor([[BOS] + list(ids)], device=self.device)
            decoder, cross = self.model.decoder.attention_weights(targets, memory, padding)
        return AttentionMaps([w[0].float().cpu() for w in encoder], [w[0].float().cpu() for w in decoder],
                             [w[0].float().cpu() for w in cross], self.cfg.encoder.window)


def load_seq2seq(name_or_path: str | Path = "en-g2p", device: str = "cpu") -> LoadedSeq2Seq:
    """Load a shipped seq2seq model by name or a trained one from its directory.

    Args:
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device).
    Raises:
        ModelError: missing, incomplete, damaged or non-seq2seq model directory.
        InputError: an unknown device, or a GPU torch does not see.
    """
    place = resolve_device(device)
    path, meta, cfg, model = read_model(name_or_path, TASK, Seq2SeqConfig, Seq2Seq, "a seq2seq model")
    model = model.to(place)
    try:
        source = None if cfg.source == "frames" else Symbols(cfg.source, cfg.source_symbols,
                                                             path / SUBWORD_FILES["source"], fold_case=True)
        target = Symbols(cfg.target, cfg.target_symbols, path / SUBWORD_FILES["target"])
    except (OSError, RuntimeError) as err:  # sentencepiece refusing a damaged .model file
        raise ModelError(f"{path}: a sentencepiece model is unreadable ({str(err).splitlines()[0][:200]})") from None
    return LoadedSeq2Seq(model, Featurizer(cfg, source, target), meta, path)


# --------------------------------------------------------------------------- evaluation


def group_references(pairs: list[Pair]) -> tuple[list, list[list[str]]]:
    """Distinct sources in first-seen order, each with all its references (one per line).

    Frame sources are never merged (each utterance is its own source).
    """
    sources, references, index = [], [], {}
    for pair in pairs:
        key = pair.source if isinstance(pair.source, str) else id(pair.source)
        if key not in index:
            index[key] = len(sources)
            sources.append(pair.source)
            references.append([])
        references[index[key]].append(pair.target)
    return sources, references


def score_outputs(outputs: list[str], references: list[list[str]], target: Symbols) -> dict:
    """The metrics of the module docstring for outputs against their references (closest one)."""
    wrong = symbol_edits = symbol_total = word_edits = word_total = 0
    for out, refs in zip(outputs, references):
        wrong += out not in refs
        symbols = target.split(out)
        best = min(((edit_distance(symbols, target.split(r)), len(target.split(r))) for r in refs),
                   key=lambda d: d[0] / max(1, d[1]))
        symbol_edits, symbol_total = symbol_edits + best[0], symbol_total + best[1]
        words = out.split()
        best = min(((edit_distance(words, r.split()), len(r.split())) for r in refs),
                   key=lambda d: d[0] / max(1, d[1]))
        word_edits, word_total = word_edits + best[0], word_total + best[1]
    result = {"sequences": len(outputs), "references": sum(len(r) for r in references),
              "wrong_sequences": wrong, "symbol_edits": symbol_edits, "reference_symbols": symbol_total,
              "sequence_error_rate": wrong / max(1, len(outputs)),
              "symbol_error_rate": symbol_edits / max(1, symbol_total),
              "word_error_rate": word_edits / max(1, word_total)}
    # wer/per as each field names them: for symbol targets (phonemes) a source is one word
    phonemes = target.kind == "words"
    result["wer"] = result["sequence_error_rate"] if phonemes else result["word_error_rate"]
    result["per"] = result["symbol_error_rate"]
    if not phonemes:
        import sacrebleu

        n_refs = max(len(r) for r in references)
        streams = [[r[k] if k < len(r) else r[0] for r in references] for k in range(n_refs)]
        result["bleu"] = sacrebleu.corpus_bleu(outputs, streams).score
    return result


def evaluate_seq2seq(loaded: LoadedSeq2Seq, pairs: list[Pair], beam: int = 5,
                     on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Decode every distinct source of ``pairs`` and score it against all its references.

    Returns:
        {"wer", "per", "sequence_error_rate", "symbol_error_rate", "word_error_rate",
         ("bleu" for text targets), "sequences", "references", "beam", "seconds"}
    Raises:
        InputError: see ``LoadedSeq2Seq.decode``.
    """
    sources, references = group_references(pairs)
    start = time.perf_counter()
    outputs = loaded.decode(sources, beam=beam, on_batch=on_batch)
    seconds = time.perf_counter() - start
    return {**score_outputs([o.text for o in outputs], references, loaded.featurizer.target),
            "beam": beam, "seconds": round(seconds, 2)}


# --------------------------------------------------------------------------- training


def selection_error(metrics: dict, target_kind: str) -> float:
    """The dev number that picks the epoch: the sequence error rate (G2P's WER) for ``words`` targets,
    the word error rate for character and sentencepiece targets (speech, translation: WER rather
    than BLEU, so one number serves both)."""
    if target_kind == "words":
        return metrics["sequence_error_rate"]
    return metrics["word_error_rate"]


def _time_mask(frames: np.ndarray, masks: int, rng: random.Random) -> np.ndarray:
    """Zero ``masks`` random spans of up to 5% of the frames (SpecAugment's time masking, Park et al. 2019)."""
    frames = frames.copy()
    width = max(1, len(frames) // 20)
    for _ in range(masks):
        w = rng.randint(0, width)
        start = rng.randint(0, max(0, len(frames) - w))
        frames[start:start + w] = frames.mean(0)
    return frames


@dataclass
class Seq2SeqOptions:
    """The seq2seq task's own training options (defaults: the shipped en-g2p recipe)."""

    label_smoothing: float = 0.1
    dev_beam: int = 1  # beam for the dev score that selects the epoch (1 = greedy, fast)
    time_masks: int = 0  # SpecAugment-style time masks per utterance (frames only)
    subword_vocab_size: int = 8000  # pieces per sentencepiece side

    def check(self) -> None:
        """Raises InputError naming the option of a value out of range."""
        if not 0 <= self.label_smoothing < 1:
            raise InputError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        for name, value, low in (("--dev-beam", self.dev_beam, 1), ("--time-masks", self.time_masks, 0),
                                 ("--vocab-size", self.subword_vocab_size, 1)):
            if not low <= value <= 1_000_000:
                raise InputError(f"{name} must be between {low} and 1000000, got {value}")


def seq2seq_settings(**overrides) -> FitSettings:
    """``fit`` settings of the en-g2p recipe (batch_size: padded source + target positions), with overrides."""
    return FitSettings(**{"epochs": 30, "batch_size": 4096, "lr": 1e-3, "warmup_steps": 1000, "betas": (0.9, 0.98),
                          "weight_decay": 0.01, **overrides})


def _pairs_checksum(pairs: list[Pair]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for pair in pairs:
        source = pair.source.tobytes() if isinstance(pair.source, np.ndarray) else pair.source.encode()
        digest.update(source + b"\t" + pair.target.encode() + b"\n")
    return digest.hexdigest()


class Seq2SeqTask:
    """Encoder-decoder training for ``fit``: pairs in, label-smoothed cross-entropy, dev error out.

    Vocabularies (and sentencepiece models) come from the training pairs only; the dev pairs only
    select the epoch (``selection_error``, lower is better).  ``init`` starts from a trained model
    (its architecture and vocabularies replace ``config``; a warm restart of the schedule).
    """

    name, metric, higher_is_better, shardable = TASK, "error", False, True

    def __init__(self, train: list[Pair], dev: list[Pair], config: Seq2SeqConfig, options: Seq2SeqOptions,
                 settings: FitSettings, init: str | Path | None = None):
        if not train or not dev:
            raise InputError("seq2seq training needs training pairs and dev pairs")
        self.train_pairs, self.dev_pairs, self.options, self.init = train, dev, options, init
        self.start_from = load_seq2seq(init) if init is not None else None
        self.cfg = Seq2SeqConfig.from_dict(self.start_from.cfg.to_dict()) if self.start_from else config
        frames = self.cfg.source == "frames"
        for pair in train[:1] + dev[:1]:
            if isinstance(pair.source, np.ndarray) != frames:
                raise InputError(f"{pair.where}: the model's source is {self.cfg.source}, this data is "
                                 f"{'frames' if isinstance(pair.source, np.ndarray) else 'text'}")
        self.batch_size, self.seed = settings.batch_size, settings.seed
        settings_id = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items() if k != "device"}
        self._identity = {"options": {"fit": settings_id, "model": self.cfg.to_dict(), "task": vars(options),
                                      "init": None if init is None else str(init)},
                          "data": {"train": _pairs_checksum(train), "dev": _pairs_checksum(dev)}}
        self._tmp = tempfile.TemporaryDirectory(prefix="seqattn-seq2seq-")
        self.device = torch.device("cpu")

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None:
        from seqattn.readers.subwords import train_subwords

        cfg, tmp = self.cfg, Path(self._tmp.name)
        if checkpoint is not None:
            cfg = self.cfg = Seq2SeqConfig.from_dict(checkpoint["config"])
        frames = cfg.source == "frames"
        self.subword_files: dict[str, Path] = {}
        for side in ("source", "target"):
            if (cfg.source if side == "source" else cfg.target) != "sentencepiece":
                continue
            path = self.subword_files[SUBWORD_FILES[side]] = tmp / SUBWORD_FILES[side]
            if checkpoint is not None or self.start_from is not None:
                shutil.copyfile((directory if checkpoint is not None else self.start_from.path) / SUBWORD_FILES[side],
                                path)
            else:
                train_subwords([p.source if side == "source" else p.target for p in self.train_pairs], path,
                               self.options.subword_vocab_size)
        if checkpoint is None and self.start_from is None:
            if not frames:
                cfg.source_symbols = build_symbols(cfg.source, [p.source for p in self.train_pairs],
                                                   self.subword_files.get(SUBWORD_FILES["source"]))
            cfg.target_symbols = build_symbols(cfg.target, [p.target for p in self.train_pairs],
                                               self.subword_files.get(SUBWORD_FILES["target"]))
        source = None if frames else Symbols(cfg.source, cfg.source_symbols,
                                             self.subword_files.get(SUBWORD_FILES["source"]), fold_case=True)
        self.target = Symbols(cfg.target, cfg.target_symbols, self.subword_files.get(SUBWORD_FILES["target"]))
        self.featurizer = Featurizer(cfg, source, self.target)
        self.dev_sources, self.dev_references = group_references(self.dev_pairs)
        self.target_lengths = [len(self.target.split(p.target)) + 1 for p in self.train_pairs]
        self.lengths = [self.featurizer.source_length(p.source) // (cfg.frame_stride if frames else 1) + t - 1
                        for p, t in zip(self.train_pairs, self.target_lengths)]

    def build_model(self) -> Seq2Seq:
        model = Seq2Seq(self.cfg)
        if self.start_from is not None:
            model.load_state_dict(self.start_from.model.state_dict())
        return model

    def batches(self, epoch: int, rng) -> list[list[int]]:
        return length_batches(self.lengths, self.batch_size, rng)

    def loss(self, model: Seq2Seq, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Label-smoothed cross-entropy per target symbol (+ CTC where configured), and the symbol count."""
        sources = [self.train_pairs[i].source for i in batch]
        if self.cfg.source == "frames" and self.options.time_masks:
            rng = random.Random(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
            sources = [_time_mask(s, self.options.time_masks, rng) for s in sources]
        features = to_device(self.featurizer.batch(sources, [self.train_pairs[i].target for i in batch]), self.device)
        loss = model.loss(features, self.options.label_smoothing)
        return loss, float(sum(self.target_lengths[i] for i in batch))

    def evaluate(self, model: Seq2Seq) -> dict:
        loaded = LoadedSeq2Seq(model, self.featurizer, {}, Path("."))
        outputs = loaded.decode(self.dev_sources, beam=self.options.dev_beam)
        metrics = score_outputs([o.text for o in outputs], self.dev_references, self.target)
        return {**metrics, "error": selection_error(metrics, self.cfg.target)}

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict[str, Path]:
        return self.subword_files

    def record(self) -> dict:
        return {"train_pairs": len(self.train_pairs), "dev_pairs": len(self.dev_pairs),
                **({"init": str(self.init)} if self.init is not None else {})}


def train_seq2seq(
    train: list[Pair],
    dev: list[Pair],
    out: str | Path | None,
    config: Seq2SeqConfig | None = None,
    settings: FitSettings | None = None,
    options: Seq2SeqOptions | None = None,
    reporter=None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
    init: str | Path | None = None,
) -> dict:
    """Train an encoder-decoder on pairs through ``fit``, keep the epoch with the best dev score, save it.

    With ``settings.average_last`` K > 1 the mean of the weights after the last K epochs
    (checkpoint averaging) is scored on dev too and kept if it is better.  ``init`` starts from a
    trained model (fine-tuning, continued training) instead of random weights.

    Returns:
        the saved config dict ("metrics": the best epoch's dev metrics, dev_error the selection error).
    Raises:
        InputError: no training or dev pairs, frames given to a text config (or the reverse), both
            ``init`` and ``resume``, a forbidden ``out``; ModelError: an unreadable checkpoint or
            ``init`` model.
    """
    from seqattn.training.engine import fit

    if init is not None and resume is not None:
        raise InputError("--init starts a new run and --resume continues one: give only one")
    settings = settings or seq2seq_settings()
    options = options or Seq2SeqOptions()
    options.check()
    task = Seq2SeqTask(train, dev, config or Seq2SeqConfig(), options, settings, init)
    return fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)


def holdout(pairs: list[Pair], held_out_sources: Iterable[str]) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (kept, held out) by source (all references of a held-out source move)."""
    held = set(held_out_sources)
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]
