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

import math
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
from seqattn.models.io import read_model, write_model_dir
from seqattn.models.seq2seq import BOS, EOS, PAD, SPECIALS, UNK, Seq2Seq, Seq2SeqConfig
from seqattn.nn.decoder import beam_search
from seqattn.readers.pairs import Pair
from seqattn.tasks.batching import length_batches
from seqattn.tasks.scoring import edit_distance
from seqattn.tasks.training import WeightAverage, optimizer_step, seed_run, warmup_cosine

TASK = "seq2seq"
SUBWORD_FILES = {"source": "source.model", "target": "target.model"}


# --------------------------------------------------------------------------- symbols


class Symbols:
    """Text <-> symbol ids for one side of a model (``chars``, ``words`` or ``sentencepiece``).

    Unknown symbols map to UNK; ``decode`` drops the special symbols.  With ``fold_case`` (the
    source side, which reads what users type), a ``chars`` vocabulary whose letters all have one
    case (CMUdict's words are upper case) reads text in that case, so that "hello" is read as
    "HELLO" rather than as five unknown symbols.  The target side never folds: references are
    scored as written.
    """

    def __init__(self, kind: str, symbols: list[str], subword_model: Path | None = None, fold_case: bool = False):
        self.kind, self.symbols = kind, symbols
        self.ids = {s: i for i, s in enumerate(symbols)}
        folds = kind == "chars" and fold_case
        letters = [c for s in symbols[len(SPECIALS):] for c in s if c.isalpha()] if folds else []
        self.fold = None  # str.upper or str.lower where the vocabulary's letters have one case
        if letters and all(c.isupper() for c in letters):
            self.fold = str.upper
        elif letters and all(c.islower() for c in letters):
            self.fold = str.lower
        self.processor = None
        if kind == "sentencepiece":
            import sentencepiece as spm

            if subword_model is None or not Path(subword_model).is_file():
                raise ModelError(f"{subword_model}: the sentencepiece model of this side is missing")
            self.processor = spm.SentencePieceProcessor()
            self.processor.Load(str(subword_model))

    def split(self, text: str) -> list[str]:
        if self.kind == "chars":
            return list(self.fold(text) if self.fold else text)
        if self.kind == "words":
            return text.split()
        return self.processor.EncodeAsPieces(text)

    def join(self, symbols: list[str]) -> str:
        if self.kind == "chars":
            return "".join(symbols)
        if self.kind == "words":
            return " ".join(symbols)
        return self.processor.DecodePieces(symbols)

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(s, UNK) for s in self.split(text)]

    def unknown(self, text: str) -> list[str]:
        """The distinct symbols of ``text`` outside the vocabulary (read as UNK), in order of
        appearance; characters as the text spells them ("é", not the "É" it is read as)."""
        if self.kind == "chars":
            return [c for c in dict.fromkeys(text) if any(s not in self.ids for s in self.split(c))]
        return list(dict.fromkeys(s for s in self.split(text) if s not in self.ids))

    def decode(self, ids: list[int]) -> list[str]:
        return [self.symbols[i] for i in ids if i >= len(SPECIALS)]


def build_symbols(kind: str, texts: list[str], subword_model: Path | None = None) -> list[str]:
    """Vocabulary (id -> symbol, SPECIALS first) of one side from its training texts."""
    if kind == "sentencepiece":
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor()
        processor.Load(str(subword_model))
        pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())]
        return SPECIALS + [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    found = Symbols(kind, SPECIALS)
    return SPECIALS + sorted({s for text in texts for s in found.split(text)})


def frame_features(frames: np.ndarray, deltas: bool) -> np.ndarray:
    """Per-utterance mean and variance normalisation (CMVN), then optionally deltas and delta-deltas.

    Deltas are the regression over +-2 frames (HTK's formula), the usual first step from static MFCCs.

    Shapes:
        frames: (N, D) -> (N, D) or (N, 3D) float32
    """
    x = (frames - frames.mean(0)) / (frames.std(0) + 1e-5)
    if not deltas:
        return x.astype(np.float32)

    def delta(f: np.ndarray) -> np.ndarray:
        padded = np.pad(f, ((2, 2), (0, 0)), mode="edge")
        n = len(f)
        return (padded[3:3 + n] - padded[1:1 + n] + 2 * (padded[4:4 + n] - padded[:n])) / 10.0

    d1 = delta(x)
    return np.concatenate([x, d1, delta(d1)], axis=1).astype(np.float32)


class Featurizer:
    """Sources and targets -> padded tensors for ``Seq2Seq``.

    Shapes (``batch``):
        B sources -> source (B, S) int64 or (B, S, frame_dim) float32, source_padding (B, S) bool;
        with targets also target_in (B, T) = BOS + ids, target_out (B, T) = ids + EOS (PAD-filled).
    """

    def __init__(self, cfg: Seq2SeqConfig, source: Symbols | None, target: Symbols):
        self.cfg, self.source, self.target = cfg, source, target

    def source_length(self, source: str | np.ndarray) -> int:
        return len(source) if isinstance(source, np.ndarray) else len(self.source.split(source))

    def batch(self, sources: list, targets: list[str] | None = None) -> dict:
        out = {}
        if self.cfg.source == "frames":
            feats = [torch.from_numpy(frame_features(s, self.cfg.frame_deltas)) for s in sources]
            lengths = torch.tensor([len(f) for f in feats])
            out["source"] = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        else:
            ids = [torch.tensor(self.source.encode(s) or [UNK]) for s in sources]
            lengths = torch.tensor([len(i) for i in ids])
            out["source"] = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=PAD)
        out["source_padding"] = torch.arange(out["source"].shape[1])[None, :] >= lengths[:, None]
        if targets is not None:
            ids = [self.target.encode(t) for t in targets]
            out["target_in"] = torch.nn.utils.rnn.pad_sequence([torch.tensor([BOS] + i) for i in ids],
                                                               batch_first=True, padding_value=PAD)
            out["target_out"] = torch.nn.utils.rnn.pad_sequence([torch.tensor(i + [EOS]) for i in ids],
                                                                batch_first=True, padding_value=PAD)
        return out


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


class LoadedSeq2Seq:
    """A seq2seq model ready to decode: model in eval mode, featurizer, config and metadata."""

    def __init__(self, model: Seq2Seq, featurizer: Featurizer, meta: dict, path: Path):
        self.model, self.featurizer, self.meta, self.path = model.eval(), featurizer, meta, path
        self.cfg = model.cfg
        self.device = next(model.parameters()).device  # where it runs (seqattn.models.device)

    def decode(self, sources: list, beam: int = 5, max_tokens: int = 4096, with_attention: bool = False,
               on_batch: Callable[[int, int], None] | None = None) -> list[Output]:
        """Decode sources (texts, or frame matrices for a frames model), batching by length; keeps order.

        Args:
            beam: 1 = greedy search; K > 1 = beam search with length normalisation.
            max_tokens: padded source positions (times the beam) per batch.
            with_attention: keep each output's alignment (``Output.attention``).
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
                best = found[row][0]
                symbols = self.featurizer.target.decode(best.ids)
                n_source = int((~padding[row]).sum())
                source_symbols = ([f"t{k}" for k in range(n_source)] if frames
                                  else self.featurizer.source.split(sources[i]))
                attention = best.attention[:, :n_source].cpu() if best.attention is not None else None
                results[i] = Output(self.featurizer.target.join(symbols), symbols, best.log_prob, source_symbols,
                                    attention)
            done += len(ids)
            if on_batch:
                on_batch(done, len(sources))
        return results  # type: ignore[return-value]


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
    source = None if cfg.source == "frames" else Symbols(cfg.source, cfg.source_symbols, path / SUBWORD_FILES["source"],
                                                         fold_case=True)
    target = Symbols(cfg.target, cfg.target_symbols, path / SUBWORD_FILES["target"])
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


@dataclass
class TrainSettings:
    """Optimisation settings of ``train_seq2seq`` (defaults: the shipped en-g2p recipe)."""

    epochs: int = 30
    max_tokens: int = 4096  # padded source + target positions per batch
    lr: float = 1e-3  # peak learning rate (AdamW): linear warm-up, then cosine decay to 0 at the last epoch
    warmup_steps: int = 1000
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    dev_beam: int = 1  # beam for the dev score that selects the epoch (1 = greedy, fast)
    time_masks: int = 0  # SpecAugment-style time masks per utterance (frames only)
    seed: int = 0
    max_minutes: float | None = None  # stop after the epoch that passes this budget
    average_last: int = 0  # mean weights of the last K epochs compete with the best epoch on dev (0: off)


@dataclass
class EpochReport:
    """What ``train_seq2seq`` reports after each epoch (dev error: the selection metric, lower is better)."""

    epoch: int
    epochs: int
    train_loss: float
    dev: dict
    best_dev_error: float
    seconds: float


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


def train_seq2seq(
    train: list[Pair],
    dev: list[Pair],
    out: str | Path,
    config: Seq2SeqConfig | None = None,
    settings: TrainSettings | None = None,
    subword_vocab_size: int = 8000,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
    init: str | Path | None = None,
) -> dict:
    """Train an encoder-decoder on pairs, keep the epoch with the best dev score, save it.

    Vocabularies (and sentencepiece models, for ``sentencepiece`` sides) come from the training
    pairs only; the dev pairs only select the epoch (greedy decoding, see ``selection_error``).
    With ``settings.average_last`` K > 1, the mean of the weights after the last K epochs
    (checkpoint averaging, ``WeightAverage``) is scored on dev too and kept if it is better.
    After every epoch the whole training state goes to ``OUT.checkpoint/`` (atomically);
    ``resume`` continues from such a directory.  The checkpoint is removed once the model is saved.
    ``init`` starts from a trained model instead of random weights (a warm restart: the schedule
    starts again, SGDR, Loshchilov & Hutter 2017); its architecture and vocabularies replace ``config``.

    Args:
        config: architecture and side kinds; its vocabularies are filled in here.
        subword_vocab_size: pieces per sentencepiece side.
        on_step: called with (step within epoch, steps per epoch) after each update.
        on_epoch: called with an ``EpochReport`` after each epoch.
        meta: extra JSON fields for the saved config (data, license, ...).
        init: a seq2seq model name or directory to start from (fine-tuning, continued training).
    Returns:
        the saved config dict (with "metrics": the best epoch's dev metrics).
    Raises:
        InputError: no training or dev pairs, frames given to a text config (or the reverse);
        ModelError: ``out`` exists (no force), an unreadable checkpoint or ``init`` model.
    """
    from seqattn.models.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
    from seqattn.readers.subwords import train_subwords

    out = Path(out)
    checkpoint_dir = out.with_name(out.name + ".checkpoint")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ModelError(f"{out}: exists and is not empty; choose another --out or pass --force")
    if not train or not dev:
        raise InputError("seq2seq training needs training pairs and dev pairs")
    state = tensors = start_from = None
    if init is not None and resume is not None:
        raise InputError("--init starts a new run and --resume continues one: give only one")
    if init is not None:
        start_from = load_seq2seq(init)
        config = Seq2SeqConfig.from_dict(start_from.cfg.to_dict())
    if resume is not None:
        state, tensors = read_checkpoint(resume)
        settings = TrainSettings(**state["extra"]["settings"])
        config = Seq2SeqConfig.from_dict(state["extra"]["config"])
    settings, cfg = settings or TrainSettings(), config or Seq2SeqConfig()
    frames = cfg.source == "frames"
    for pair in train[:1] + dev[:1]:
        if isinstance(pair.source, np.ndarray) != frames:
            raise InputError(f"{pair.where}: the model's source is {cfg.source}, this data is "
                             f"{'frames' if isinstance(pair.source, np.ndarray) else 'text'}")
    generator, shuffler = seed_run(settings.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, Path] = {}
        for side in ("source", "target"):
            kind = cfg.source if side == "source" else cfg.target
            if kind != "sentencepiece":
                continue
            files[SUBWORD_FILES[side]] = Path(tmp) / SUBWORD_FILES[side]
            if state is not None or start_from is not None:
                from_dir = Path(resume) if state is not None else start_from.path
                shutil.copyfile(from_dir / SUBWORD_FILES[side], files[SUBWORD_FILES[side]])
            else:
                texts = [p.source if side == "source" else p.target for p in train]
                train_subwords(texts, files[SUBWORD_FILES[side]], subword_vocab_size)
        if state is None and start_from is None:
            if not frames:
                cfg.source_symbols = build_symbols(cfg.source, [p.source for p in train],
                                                   files.get(SUBWORD_FILES["source"]))
            cfg.target_symbols = build_symbols(cfg.target, [p.target for p in train],
                                               files.get(SUBWORD_FILES["target"]))
        source = None if frames else Symbols(cfg.source, cfg.source_symbols, files.get(SUBWORD_FILES["source"]),
                                             fold_case=True)
        target = Symbols(cfg.target, cfg.target_symbols, files.get(SUBWORD_FILES["target"]))
        featurizer = Featurizer(cfg, source, target)
        model = Seq2Seq(cfg)
        if start_from is not None:
            model.load_state_dict(start_from.model.state_dict())
        loaded = LoadedSeq2Seq(model, featurizer, {}, out)
        dev_sources, dev_references = group_references(dev)
        lengths = [featurizer.source_length(p.source) // (cfg.frame_stride if frames else 1)
                   + len(target.split(p.target)) for p in train]
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98),
                                      weight_decay=settings.weight_decay)
        steps_per_epoch = len(length_batches(lengths, settings.max_tokens))

        total = steps_per_epoch * settings.epochs
        scheduler = warmup_cosine(optimizer, settings.warmup_steps, total)
        best, best_state, best_metrics, first_epoch, seconds_before = math.inf, None, {}, 1, 0.0
        averager = WeightAverage(settings.average_last, settings.epochs)
        if state is not None:
            best_state = restore_checkpoint(state, tensors, model=model, optimizer=optimizer, scheduler=scheduler,
                                            shuffler=shuffler, generator=generator)
            averager.restore({k[len("extra.sum."):]: v for k, v in tensors.items() if k.startswith("extra.sum.")},
                             state["extra"].get("averaged_epochs", []))
            best, best_metrics = state["extra"]["best"], state["extra"]["best_metrics"]
            first_epoch, seconds_before = state["epoch"] + 1, state["extra"]["seconds"]
        epochs_run = first_epoch - 1
        for epoch in range(first_epoch, settings.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            losses = []
            batches = length_batches(lengths, settings.max_tokens, shuffler)
            for step, ids in enumerate(batches, 1):
                sources = [train[i].source for i in ids]
                if frames and settings.time_masks:
                    sources = [_time_mask(s, settings.time_masks, shuffler) for s in sources]
                batch = featurizer.batch(sources, [train[i].target for i in ids])
                loss = model.loss(batch, settings.label_smoothing)
                losses.append(optimizer_step(loss, model, optimizer, scheduler))
                if on_step:
                    on_step(step, len(batches))
            model.eval()
            outputs = loaded.decode(dev_sources, beam=settings.dev_beam)
            metrics = score_outputs([o.text for o in outputs], dev_references, target)
            error = selection_error(metrics, cfg.target)
            if error < best:
                best, best_metrics = error, metrics
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            epochs_run = epoch
            averager.add(epoch, model.state_dict())
            elapsed = seconds_before + time.perf_counter() - start
            sums, averaged_epochs = averager.state()
            save_checkpoint(checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler, shuffler=shuffler,
                            generator=generator, epoch=epoch, best_state=best_state,
                            extra={"config": cfg.to_dict(), "settings": vars(settings), "best": best,
                                   "best_metrics": best_metrics, "seconds": elapsed,
                                   "averaged_epochs": averaged_epochs},
                            files=files, extra_tensors={f"sum.{k}": v for k, v in sums.items()})
            if on_epoch:
                on_epoch(EpochReport(epoch, settings.epochs, sum(losses) / len(losses), metrics, best,
                                     time.perf_counter() - epoch_start))
            if settings.max_minutes is not None and elapsed > 60 * settings.max_minutes:
                break
        averaged = None
        average = averager.average()
        if average is not None:
            model.load_state_dict(average)
            model.eval()
            metrics = score_outputs([o.text for o in loaded.decode(dev_sources, beam=settings.dev_beam)],
                                    dev_references, target)
            error = selection_error(metrics, cfg.target)
            averaged = {"epochs": averager.epochs, "dev_error": round(error, 5), "kept": error < best}
            if error < best:
                best, best_metrics, best_state = error, metrics, average
        seconds = seconds_before + time.perf_counter() - start
        saved = {
            "task": TASK,
            "config": cfg.to_dict(),
            "training": {"seed": settings.seed, "settings": vars(settings), "epochs_run": epochs_run,
                         "train_pairs": len(train), "dev_pairs": len(dev), "seconds": round(seconds, 1),
                         "torch_threads": torch.get_num_threads(),
                         **({"init": str(init)} if init is not None else {}),
                         **({"averaged": averaged} if averaged is not None else {})},
            "metrics": {f"dev_{k}": (round(v, 5) if isinstance(v, float) else v) for k, v in best_metrics.items()},
            **(meta or {}),
        }
        write_model_dir(out, saved, best_state, files, force=force)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return saved


def holdout(pairs: list[Pair], held_out_sources: Iterable[str]) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (kept, held out) by source (all references of a held-out source move)."""
    held = set(held_out_sources)
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]
