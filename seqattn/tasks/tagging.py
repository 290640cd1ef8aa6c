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
from seqattn.models.io import read_model
from seqattn.models.device import inference_precision, resolve_device, to_device
from seqattn.models.precision import attention_is_batch_invariant, for_inference
from seqattn.featurise.batching import length_batches as _length_batches
from seqattn.featurise.text import Featurizer
from seqattn.models.tagger import Tagger, TaggerConfig
from seqattn.readers.conllu import Sentence, read_conllu
from seqattn.readers.text import MAX_SENTENCE_WORDS
from seqattn.readers.subwords import SubwordModel, train_subwords
from seqattn.training.engine import FitSettings

TASK = "tagger"
MAX_PENDING_WORDS = 1 << 16  # words that iter_tagged hands to one predict call at most
MAX_PENDING_WEIGHTS = 1 << 22  # with attention: weights per layer and head kept for one predict call
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

    @property
    def max_words(self) -> int:
        """The longest sentence tagged whole: ``MAX_SENTENCE_WORDS`` (512), or the model's ``max_len`` if smaller.

        A learned positional table knows no later position, and full attention keeps N x N weights.
        """
        return max(1, min(MAX_SENTENCE_WORDS, self.model.cfg.encoder.max_len))

    def predict(self, sentences: list[list[str]], with_attention: bool = False,
                max_tokens: int = 4096) -> list[TaggedSentence]:
        """Tag sentences (lists of words), batching by length; keeps the input order.

        A sentence longer than ``max_words`` is tagged in pieces of ``max_words`` words whose
        results are joined (its ``attention`` is then None), so no batch holds more than
        ``max(max_tokens, max_words)`` words whatever the input.
        A sentence gets the same tags and probabilities whatever it is batched with: bit for bit
        where the attention kernel runs (``seqattn.models.precision``), else to about 1e-6 in
        fp32.  With attention the weights come from a second pass (the reference path, which
        returns them); the tags and probabilities are the fast path's in either case.
        Args:
            max_tokens: padded words per batch (sentences sorted by length fill batches).
        Shapes:
            list of B word lists -> list of B TaggedSentence
        """
        limit = self.max_words
        if any(len(s) > limit for s in sentences):
            return self._predict_in_pieces(sentences, limit, with_attention, max_tokens)
        results: list[TaggedSentence | None] = [None] * len(sentences)
        for batch_ids in _length_batches([len(s) for s in sentences], max_tokens):
            batch_sentences = [sentences[i] for i in batch_ids]
            with torch.inference_mode():
                batch = to_device(self.featurizer.batch(batch_sentences), self.device)
                logits = self.model(batch)  # the fast path, so that --attention changes no tag
                weights = self.model(batch, return_weights=True)[1] if with_attention else None
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

    def _predict_in_pieces(self, sentences: list[list[str]], limit: int, with_attention: bool,
                           max_tokens: int) -> list[TaggedSentence]:
        """``predict`` with every sentence cut into pieces of at most ``limit`` words, results joined."""
        pieces = [sentence[start:start + limit] for sentence in sentences
                  for start in range(0, len(sentence) or 1, limit)]
        tagged = iter(self.predict(pieces, with_attention, max_tokens))
        results: list[TaggedSentence] = []
        for sentence in sentences:
            if len(sentence) <= limit:
                results.append(next(tagged))
                continue
            parts = [next(tagged) for _ in range(0, len(sentence), limit)]
            results.append(TaggedSentence(sentence, [tag for p in parts for tag in p.tags],
                                          [prob for p in parts for prob in p.probabilities]))
        return results


def load_tagger(name_or_path: str | Path = "en-upos", precision: str | None = "fp32",
                device: str = "cpu") -> LoadedTagger:
    """Load a shipped tagger by name or a trained one from its directory.

    Args:
        precision: "fp32" (as trained), "int8" (Linear layers quantised; seqattn.models.precision)
            or None: int8 on the CPU where the C++ attention kernel runs the model's attention
            (then a sentence's int8 results are the same bits in any batch), else fp32.
        device: "cpu", "cuda", "cuda:N" or "auto" (seqattn.models.device; int8 is CPU-only).
    Raises:
        ModelError: missing, incomplete, damaged or non-tagger model directory.
        InputError: an unknown precision or device, a GPU torch does not see, or int8 off the CPU.
    """
    place = resolve_device("cpu" if device == "auto" and precision == "int8" else device)
    chosen = inference_precision(precision, place)
    path, meta, cfg, model = read_model(name_or_path, TASK, TaggerConfig, Tagger, "a tagger")
    if precision is None and not attention_is_batch_invariant(cfg.encoder):
        # int8 rounds each word's activations, so the last-bit differences of an attention that
        # depends on the batch would sometimes move a word across a rounding step: fp32 instead
        chosen = "fp32"
    precision = chosen
    if not (path / SUBWORDS).is_file():
        raise ModelError(f"{path}: incomplete model directory, {SUBWORDS} is missing")
    subwords = SubwordModel(path / SUBWORDS)
    if len(subwords) > cfg.subword_vocab_size:  # a piece id past the embedding table would fail mid-run
        raise ModelError(f"{path / SUBWORDS}: {len(subwords):,} pieces, but config.json's subword_vocab_size is "
                         f"{cfg.subword_vocab_size:,}")
    return LoadedTagger(for_inference(model, precision).to(place), Featurizer(cfg, subwords),
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
class TaggerOptions:
    """The tagger's own training options (the shipped en-upos recipe by default)."""

    word_dropout: float = 0.1  # a training word becomes <unk> with this probability (its characters stay)
    label_smoothing: float = 0.05

    def check(self) -> None:
        """Raises InputError naming the option of a value outside [0, 1)."""
        for name, value in (("--word-dropout", self.word_dropout), ("--label-smoothing", self.label_smoothing)):
            if not 0 <= value < 1:
                raise InputError(f"{name} must be in [0, 1), got {value}")


def tagger_settings(**overrides) -> FitSettings:
    """``fit`` settings of the en-upos recipe (batch_size: padded words per batch), with overrides."""
    return FitSettings(**{"epochs": 40, "batch_size": 1024, "lr": 1e-3, "warmup_steps": 400,
                          "weight_decay": 0.01, **overrides})


class TaggerTask:
    """Tagging for ``fit``: CoNLL-U sentences with UPOS, a batch of sentences, UPOS accuracy on dev.

    ``prepare`` reads the data, builds the vocabularies from the training data only and trains
    the sentencepiece model on the training text (or takes both from a checkpoint); the dev set
    only selects the epoch.
    Raises (``prepare``):
        InputError: unreadable data or data without UPOS.
    """

    name, metric, higher_is_better, shardable = TASK, "upos_accuracy", True, True

    def __init__(self, train_path: str | Path, dev_path: str | Path, config: TaggerConfig,
                 options: TaggerOptions, settings: FitSettings):
        from seqattn.training.engine import run_identity

        self.train_path, self.dev_path, self.cfg, self.options = Path(train_path), Path(dev_path), config, options
        self._identity = run_identity(settings, config.to_dict(), options,
                                      {"train": self.train_path, "dev": self.dev_path})
        self.batch_size = settings.batch_size
        self._tmp = tempfile.TemporaryDirectory(prefix="seqattn-tagger-")
        self.device = torch.device("cpu")

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None:
        self.train = [s for s in read_conllu(self.train_path) if s.upos]
        self.dev = [s for s in read_conllu(self.dev_path) if s.upos]
        if not self.train or not self.dev:
            raise InputError(f"{self.train_path if not self.train else self.dev_path}: no sentences with gold UPOS")
        self.spm_path = Path(self._tmp.name) / SUBWORDS
        if checkpoint is not None:
            self.cfg = TaggerConfig.from_dict(checkpoint["config"])
            shutil.copyfile(directory / SUBWORDS, self.spm_path)
        else:
            self.cfg.build_vocabularies([s.words for s in self.train], [s.upos for s in self.train])
            train_subwords((s.text or " ".join(s.words) for s in self.train), self.spm_path, self.cfg.subword_vocab_size)
        subwords = SubwordModel(self.spm_path)
        self.cfg.subword_vocab_size = len(subwords)
        self.featurizer = Featurizer(self.cfg, subwords)
        self.lengths = [len(s.words) for s in self.train]

    def build_model(self) -> Tagger:
        return Tagger(self.cfg)

    def batches(self, epoch: int, rng) -> list[list[int]]:
        return _length_batches(self.lengths, self.batch_size, rng)

    def loss(self, model: Tagger, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Mean cross-entropy (label smoothing) over the batch's words, and the word count."""
        features = to_device(self.featurizer.batch([self.train[i].words for i in batch],
                                                   [self.train[i].upos for i in batch],
                                                   self.options.word_dropout, generator), self.device)
        loss = model.head.loss(model(features), features["labels"], self.options.label_smoothing)
        return loss, float(sum(self.lengths[i] for i in batch))

    def evaluate(self, model: Tagger) -> dict:
        tagger = LoadedTagger(model, self.featurizer, {}, Path("."), self.device)
        return {"upos_accuracy": evaluate_tagger(tagger, self.dev)["upos_accuracy"]}

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict[str, Path]:
        return {SUBWORDS: self.spm_path}

    def record(self) -> dict:
        return {"train": str(self.train_path), "dev": str(self.dev_path)}


def train_tagger(
    train_path: str | Path,
    dev_path: str | Path,
    out: str | Path | None,
    settings: FitSettings | None = None,
    config: TaggerConfig | None = None,
    options: TaggerOptions | None = None,
    reporter=None,
    force: bool = False,
    meta: dict | None = None,
    resume: str | Path | None = None,
) -> dict:
    """Train a tagger on a CoNLL-U file through ``fit``, keep the epoch with the best dev UPOS accuracy.

    Args:
        settings: ``fit`` settings (default ``tagger_settings()``, the en-upos recipe).
        config: architecture (default ``TaggerConfig()``); vocabularies are filled in here.
        reporter: progress callbacks (seqattn.training.engine.Reporter).
        resume: OUT.checkpoint of an interrupted run with the same arguments.
    Returns:
        the saved config dict ("metrics": dev_upos_accuracy; "training": the run record).
    Raises:
        InputError: unreadable data, data without UPOS, a forbidden ``out``, a checkpoint of
            another run; ModelError: an unreadable checkpoint.
    """
    from seqattn.training.engine import fit

    settings = settings or tagger_settings()
    task = TaggerTask(train_path, dev_path, config or TaggerConfig(), options or TaggerOptions(), settings)
    return fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)


def iter_tagged(tagger: LoadedTagger, items: Iterable, batch_sentences: int = 256, with_attention: bool = False,
                flush_when: Callable[[], bool] | None = None) -> Iterator[tuple[object, TaggedSentence | None]]:
    """Tag a stream of ``TextItem``s in batches, yielding (item, result) in input order.

    Paragraph breaks pass through with result None.  Memory is bounded by design: pending
    sentences are tagged once there are ``batch_sentences`` of them, ``MAX_PENDING_WORDS`` words,
    or, with attention, ``MAX_PENDING_WEIGHTS`` attention weights per layer and head (N x N per
    sentence for full attention, N x (2w + 1) for a window w); a sentence is at most
    ``tagger.max_words`` words (``LoadedTagger.predict``).
    ``flush_when`` is asked after each item; when it says True (e.g. the input would block, as in
    ``tail -f log | seqattn tag -``) the pending sentences are tagged at once instead of waiting
    for a full batch.
    """
    pending: list = []
    words = weights = 0  # pending words, and attention weights they will keep

    def flush():
        sentences = [item.words for item in pending if not item.is_break]
        results = iter(tagger.predict(sentences, with_attention) if sentences else [])
        for item in pending:
            yield item, None if item.is_break else next(results)
        pending.clear()

    keys = None if tagger.window is None else 2 * tagger.window + 1  # attention weights per query
    for item in items:
        pending.append(item)
        if not item.is_break:
            n = min(len(item.words), tagger.max_words)
            words += len(item.words)
            weights += n * (keys or n) if with_attention else 0
        if (len(pending) >= batch_sentences or words >= MAX_PENDING_WORDS or weights >= MAX_PENDING_WEIGHTS
                or (flush_when is not None and flush_when())):
            yield from flush()
            words = weights = 0
    yield from flush()
