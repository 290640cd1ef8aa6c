"""Tagging as a library: train, load, predict and evaluate UPOS taggers.

The CLI (seqattn.cli.tag) parses arguments and renders; these functions never print.  Progress
is reported through an optional callback so a caller can draw a progress bar.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from seqattn.errors import InputError, ModelError
from seqattn.models.io import read_model, write_model_dir
from seqattn.models.device import inference_precision, resolve_device, to_device
from seqattn.models.precision import for_inference
from seqattn.models.tagger import Featurizer, Tagger, TaggerConfig
from seqattn.tasks.batching import length_batches as _length_batches
from seqattn.readers.conllu import Sentence, read_conllu
from seqattn.readers.subwords import SubwordModel, train_subwords
from seqattn.tasks.training import optimizer_step, seed_run, warmup_cosine

TASK = "tagger"
SUBWORDS = "subwords.model"


@dataclass
class TaggedSentence:
    """A tagger's output for one sentence.

    words/tags/probabilities: one entry per word; attention: per layer, (H, N, N) weights for
    full attention or (H, N, 2w + 1) band weights for truncated attention (only when asked for).
    """

    words: list[str]
    tags: list[str]
    probabilities: list[float]
    attention: list[torch.Tensor] | None = None


class LoadedTagger:
    """A tagger ready to predict: model in eval mode, featurizer, config and metadata.

    Raises (constructor, via ``load_tagger``):
        ModelError: see ``seqattn.models.io.read_model_dir``.
    """

    def __init__(self, model: Tagger, featurizer: Featurizer, meta: dict, path: Path,
                 device: torch.device | None = None, precision: str = "fp32"):
        self.model, self.featurizer, self.meta, self.path = model.eval(), featurizer, meta, path
        self.device = device or torch.device("cpu")  # given: an int8 model's Linear weights are not parameters()
        self.precision = precision

    @property
    def window(self) -> int | None:
        return self.model.cfg.encoder.window

    def predict(self, sentences: list[list[str]], with_attention: bool = False,
                max_tokens: int = 4096) -> list[TaggedSentence]:
        """Tag sentences (lists of words), batching by length; keeps the input order.

        Args:
            max_tokens: padded words per batch (sentences sorted by length fill batches).
        Shapes:
            list of B word lists -> list of B TaggedSentence
        """
        results: list[TaggedSentence | None] = [None] * len(sentences)
        for batch_ids in _length_batches([len(s) for s in sentences], max_tokens):
            batch_sentences = [sentences[i] for i in batch_ids]
            with torch.inference_mode():
                batch = to_device(self.featurizer.batch(batch_sentences), self.device)
                logits, weights = self.model(batch, return_weights=True) if with_attention else (self.model(batch), None)
                probs = torch.softmax(logits, dim=-1)
                best, ids = (t.cpu() for t in probs.max(dim=-1))  # (B, N)
                if with_attention:
                    weights = [w.cpu() for w in weights]
            for row, i in enumerate(batch_ids):
                n = len(sentences[i])
                attention = None
                if with_attention:
                    attention = [w[row, :, :n, :n] if w.shape[-1] == w.shape[-2] else w[row, :, :n] for w in weights]
                results[i] = TaggedSentence(
                    sentences[i], [self.featurizer.cfg.tags[t] for t in ids[row, :n].tolist()],
                    best[row, :n].tolist(), attention)
        return results  # type: ignore[return-value]


def load_tagger(name_or_path: str | Path = "en-upos", precision: str | None = "fp32",
                device: str = "cpu") -> LoadedTagger:
    """Load a shipped tagger by name or a trained one from its directory.

    Args:
        precision: "fp32" (as trained), "int8" (Linear layers quantised; seqattn.models.precision)
            or None (int8 on the CPU, fp32 on a GPU).
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device; int8 is CPU-only).
    Raises:
        ModelError: missing, incomplete, damaged or non-tagger model directory.
        InputError: an unknown precision or device, a GPU torch does not see, or int8 off the CPU.
    """
    place = resolve_device("cpu" if device == "auto" and precision == "int8" else device)
    precision = inference_precision(precision, place)
    path, meta, cfg, model = read_model(name_or_path, TASK, TaggerConfig, Tagger, "a tagger")
    if not (path / SUBWORDS).is_file():
        raise ModelError(f"{path}: incomplete model directory, {SUBWORDS} is missing")
    return LoadedTagger(for_inference(model, precision).to(place), Featurizer(cfg, SubwordModel(path / SUBWORDS)),
                        meta, path, place, precision)


# --------------------------------------------------------------------------- evaluation


def evaluate_tagger(tagger: LoadedTagger, sentences: list[Sentence]) -> dict:
    """UPOS accuracy of ``tagger`` on gold-tokenised sentences.

    Returns:
        {"upos_accuracy": 0..1, "tokens", "sentences", "seconds", "tokens_per_second"}
    Raises:
        InputError: the sentences carry no gold UPOS.
    """
    gold = [s for s in sentences if s.upos]
    if not gold:
        raise InputError("the evaluation data has no gold UPOS column")
    start = time.perf_counter()
    predicted = tagger.predict([s.words for s in gold])
    seconds = time.perf_counter() - start
    tokens = sum(len(s.words) for s in gold)
    correct = sum(p == g for s, out in zip(gold, predicted) for p, g in zip(out.tags, s.upos))
    return {"upos_accuracy": correct / tokens, "tokens": tokens, "sentences": len(gold),
            "seconds": round(seconds, 3), "tokens_per_second": round(tokens / max(seconds, 1e-9), 1)}


# --------------------------------------------------------------------------- training


@dataclass
class TrainSettings:
    """Optimisation settings of ``train_tagger`` (the shipped en-upos recipe by default)."""

    epochs: int = 40
    max_tokens: int = 1024  # padded words per batch
    lr: float = 1e-3  # peak learning rate (AdamW), linear warm-up then cosine decay
    warmup_steps: int = 400
    weight_decay: float = 0.01
    word_dropout: float = 0.1
    label_smoothing: float = 0.05
    seed: int = 0


@dataclass
class EpochReport:
    """What ``train_tagger`` reports after each epoch."""

    epoch: int
    epochs: int
    train_loss: float
    dev_accuracy: float
    best_dev_accuracy: float
    seconds: float


def train_tagger(
    train_path: str | Path,
    dev_path: str | Path,
    out: str | Path,
    settings: TrainSettings | None = None,
    config: TaggerConfig | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
) -> dict:
    """Train a tagger on a CoNLL-U file, select the epoch with the best dev UPOS accuracy, save it.

    The sentencepiece model is trained on the training text first; vocabularies come from the
    training data only.  The dev set is used for model selection and nothing else.  After every
    epoch the whole training state goes to ``OUT.checkpoint/`` (atomically); ``resume`` takes
    such a directory and continues where it stopped, reaching the same weights as an
    uninterrupted run.  The checkpoint is removed once the model is saved.

    Args:
        on_step: called with (step within epoch, steps per epoch) after each update.
        on_epoch: called with an ``EpochReport`` after each epoch.
        meta: extra JSON fields for the saved config (data, license, ...).
        resume: a checkpoint directory written by an interrupted run (its settings and
            vocabularies win over ``settings`` and ``config``).
    Returns:
        the saved config dict (with "metrics": best dev accuracy, epochs, training seconds).
    Raises:
        InputError: unreadable data or data without UPOS; ModelError: ``out`` exists (no force),
        or an unreadable checkpoint.
    """
    from seqattn.models.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint

    out = Path(out)
    checkpoint_dir = out.with_name(out.name + ".checkpoint")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ModelError(f"{out}: exists and is not empty; choose another --out or pass --force")
    state = tensors = None
    if resume is not None:
        state, tensors = read_checkpoint(resume)
        settings = TrainSettings(**state["extra"]["settings"])
    settings = settings or TrainSettings()
    train = [s for s in read_conllu(train_path) if s.upos]
    dev = [s for s in read_conllu(dev_path) if s.upos]
    if not train or not dev:
        raise InputError(f"{train_path if not train else dev_path}: no sentences with gold UPOS")

    generator, shuffler = seed_run(settings.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if state is not None:
            cfg = TaggerConfig.from_dict(state["extra"]["config"])
            spm_path = Path(tmp) / SUBWORDS
            spm_path.write_bytes((Path(resume) / SUBWORDS).read_bytes())
        else:
            cfg = config or TaggerConfig()
            cfg.build_vocabularies([s.words for s in train], [s.upos for s in train])
            spm_path = train_subwords((s.text or " ".join(s.words) for s in train), Path(tmp) / SUBWORDS,
                                      cfg.subword_vocab_size)
        subwords = SubwordModel(spm_path)
        cfg.subword_vocab_size = len(subwords)
        featurizer = Featurizer(cfg, subwords)
        model = Tagger(cfg)
        tagger = LoadedTagger(model, featurizer, {}, out)
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        steps_per_epoch = len(_length_batches([len(s.words) for s in train], settings.max_tokens))
        total = steps_per_epoch * settings.epochs
        scheduler = warmup_cosine(optimizer, settings.warmup_steps, total)
        best, best_state, first_epoch, seconds_before = -1.0, None, 1, 0.0
        if state is not None:
            best_state = restore_checkpoint(state, tensors, model=model, optimizer=optimizer, scheduler=scheduler,
                                            shuffler=shuffler, generator=generator)
            best, first_epoch = state["extra"]["best"], state["epoch"] + 1
            seconds_before = state["extra"]["seconds"]
        for epoch in range(first_epoch, settings.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            losses = []
            batches = _length_batches([len(s.words) for s in train], settings.max_tokens, shuffler)
            for step, ids in enumerate(batches, 1):
                batch = featurizer.batch([train[i].words for i in ids], [train[i].upos for i in ids],
                                         settings.word_dropout, generator)
                loss = model.head.loss(model(batch), batch["labels"], settings.label_smoothing)
                losses.append(optimizer_step(loss, model, optimizer, scheduler))
                if on_step:
                    on_step(step, len(batches))
            model.eval()
            accuracy = evaluate_tagger(tagger, dev)["upos_accuracy"]
            if accuracy > best:
                best, best_state = accuracy, {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_checkpoint(checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler, shuffler=shuffler,
                            generator=generator, epoch=epoch, best_state=best_state,
                            extra={"config": cfg.to_dict(), "settings": vars(settings), "best": best,
                                   "seconds": seconds_before + time.perf_counter() - start},
                            files={SUBWORDS: spm_path})
            if on_epoch:
                on_epoch(EpochReport(epoch, settings.epochs, sum(losses) / len(losses), accuracy, best,
                                     time.perf_counter() - epoch_start))
        seconds = seconds_before + time.perf_counter() - start
        saved = {
            "task": TASK,
            "config": cfg.to_dict(),
            "training": {"train": str(train_path), "dev": str(dev_path), "seed": settings.seed,
                         "settings": vars(settings), "seconds": round(seconds, 1),
                         "torch_threads": torch.get_num_threads()},
            "metrics": {"dev_upos_accuracy": round(best, 5)},
            **(meta or {}),
        }
        write_model_dir(out, saved, best_state, {SUBWORDS: spm_path}, force=force)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return saved


def iter_tagged(tagger: LoadedTagger, items: Iterable, batch_sentences: int = 256, with_attention: bool = False,
                flush_when: Callable[[], bool] | None = None) -> Iterator[tuple[object, TaggedSentence | None]]:
    """Tag a stream of ``TextItem``s in batches, yielding (item, result) in input order.

    Paragraph breaks pass through with result None.  Memory is bounded by ``batch_sentences``.
    ``flush_when`` is asked after each item; when it says True (e.g. the input would block, as in
    ``tail -f log | seqattn tag -``) the pending sentences are tagged at once instead of waiting
    for a full batch.
    """
    pending: list = []

    def flush():
        sentences = [item.words for item in pending if not item.is_break]
        results = iter(tagger.predict(sentences, with_attention) if sentences else [])
        for item in pending:
            yield item, None if item.is_break else next(results)
        pending.clear()

    for item in items:
        pending.append(item)
        if len(pending) >= batch_sentences or (flush_when is not None and flush_when()):
            yield from flush()
    yield from flush()
