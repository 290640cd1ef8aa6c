"""Sentence classification as a library (N -> 1): train, load, predict and evaluate classifiers.

A text (one line: a sentence, a review) becomes words with the tokenizer the tagger uses
(seqattn.readers.text, UD English conventions, which are also PTB's: "don't" -> "do n't"), then
one label with class probabilities.  The CLI (seqattn.cli.classify) parses arguments and renders;
these functions never print.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from seqattn.errors import InputError, ModelError
from seqattn.featurise.batching import length_batches
from seqattn.featurise.text import Featurizer
from seqattn.models.classifier import Classifier, ClassifierConfig
from seqattn.models.device import resolve_device, to_device
from seqattn.models.io import read_model
from seqattn.models.tagger import normalise_word
from seqattn.readers.labelled import LabelledText, read_labelled
from seqattn.readers.subwords import SubwordModel, train_subwords
from seqattn.readers.text import split_sentences, tokenize
from seqattn.training.engine import FitSettings

TASK = "classifier"
SUBWORDS = "subwords.model"
MAX_TEXT_WORDS = 2048  # a longer text is classified on its first MAX_TEXT_WORDS words (the CLI says so)
# PTB writes opening and closing double quotes as `` and '' (SST does); users type ".
_PTB_QUOTES = {"``": '"', "''": '"'}
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})  # as typed on phones


def text_words(text: str, lowercase: bool = False) -> list[str]:
    """Words of a raw text as the classifier sees them: sentences, UD English tokens, straight quotes.

    Curly quotes and apostrophes become straight ones, PTB's `` and '' become '"'.

    Args:
        lowercase: lower-case the text first (a model trained on lower-cased text, like SST).
    Shapes:
        str -> list[str] (empty for a blank text)
    """
    text = text.translate(_CURLY)
    if lowercase:
        text = text.lower()
    return [_PTB_QUOTES.get(w, w) for sentence in split_sentences(text) for w in tokenize(sentence)]


@dataclass
class Classified:
    """A classifier's output for one text.

    words: the words the model read (at most ``MAX_TEXT_WORDS``); label: the most probable class;
    probabilities: every class's probability, in ``LoadedClassifier.labels`` order;
    pooling: (r, N) attention-pooling weights per head, rows summing to 1 (only when asked for);
    attention: per encoder layer, (H, N, N) full or (H, N, 2w + 1) band weights (only when asked for);
    unknown: the share of words outside the training vocabulary (0..1).
    """

    words: list[str]
    label: str
    probabilities: list[float]
    unknown: float
    pooling: torch.Tensor | None = None
    attention: list[torch.Tensor] | None = None

    @property
    def probability(self) -> float:
        return max(self.probabilities)


class LoadedClassifier:
    """A classifier ready to predict: model in eval mode, featurizer, config and metadata."""

    def __init__(self, model: Classifier, featurizer: Featurizer, meta: dict, path: Path,
                 device: torch.device | None = None):
        self.model, self.featurizer, self.meta, self.path = model.eval(), featurizer, meta, path
        self.device = device or torch.device("cpu")

    @property
    def cfg(self) -> ClassifierConfig:
        return self.model.cfg

    @property
    def labels(self) -> list[str]:
        """Printed class names, in probability order (``ClassifierConfig.names``)."""
        return self.model.cfg.names()

    @property
    def window(self) -> int | None:
        return self.model.cfg.encoder.window

    def words(self, text: str) -> list[str]:
        """The words the model reads of ``text`` (``text_words`` with the model's casing), cut at MAX_TEXT_WORDS."""
        return text_words(text, self.cfg.lowercase)[:MAX_TEXT_WORDS]

    def predict(self, texts: list[list[str]], with_attention: bool = False,
                max_tokens: int = 4096) -> list[Classified]:
        """Classify texts given as word lists, batching by length; keeps the input order.

        An empty word list has no class and is refused (callers keep empty lines out).
        Raises:
            InputError: an empty text (no words).
        Shapes:
            list of B word lists -> list of B Classified
        """
        for words in texts:
            if not words:
                raise InputError("an empty text has no class")
        results: list[Classified | None] = [None] * len(texts)
        known = self.featurizer.word_ids
        for batch_ids in length_batches([len(t) for t in texts], max_tokens):
            batch_texts = [texts[i] for i in batch_ids]
            with torch.inference_mode():
                batch = to_device(self.featurizer.batch(batch_texts), self.device)
                if with_attention:
                    logits, pooling, weights = self.model(batch, return_weights=True)
                    pooling, weights = pooling.cpu(), [w.cpu() for w in weights]
                else:
                    logits = self.model(batch)
                probs = torch.softmax(logits.float(), dim=-1).cpu()
            for row, i in enumerate(batch_ids):
                words = texts[i]
                n = len(words)
                unknown = sum(normalise_word(w) not in known for w in words) / n
                p = probs[row].tolist()
                attention = None
                if with_attention:
                    attention = [w[row, :, :n, :n] if w.shape[-1] == w.shape[-2] else w[row, :, :n] for w in weights]
                results[i] = Classified(words, self.labels[int(probs[row].argmax())], p, unknown,
                                        pooling[row, :, :n] if with_attention else None, attention)
        return results  # type: ignore[return-value]


def load_classifier(name_or_path: str | Path = "en-sentiment", device: str = "cpu") -> LoadedClassifier:
    """Load a shipped classifier by name or a trained one from its directory.

    Raises:
        ModelError: missing, incomplete, damaged or non-classifier model directory.
        InputError: an unknown device or a GPU torch does not see.
    """
    place = resolve_device(device)
    path, meta, cfg, model = read_model(name_or_path, TASK, ClassifierConfig, Classifier, "a classifier")
    if not (path / SUBWORDS).is_file():
        raise ModelError(f"{path}: incomplete model directory, {SUBWORDS} is missing")
    subwords = SubwordModel(path / SUBWORDS)
    if len(subwords) > cfg.subword_vocab_size:
        raise ModelError(f"{path / SUBWORDS}: {len(subwords):,} pieces, but config.json's subword_vocab_size is "
                         f"{cfg.subword_vocab_size:,}")
    return LoadedClassifier(model.to(place), Featurizer(cfg, subwords), meta, path, place)


# --------------------------------------------------------------------------- evaluation


def classification_report(gold: list[str], predicted: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        labels: the classes, in the order of the matrix's rows (gold) and columns (predicted).
    Returns:
        {"accuracy", "macro_f1", "examples", "labels", "per_class": {label: {"precision",
        "recall", "f1", "support"}}, "confusion": [[count]]}; a class never predicted has
        precision 0 (as scikit-learn's zero_division=0).
    """
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        confusion[index[g]][index[p]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        predicted_i = sum(row[i] for row in confusion)
        support = sum(confusion[i])
        precision = tp / predicted_i if predicted_i else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    n = len(gold)
    present = [label for label in labels if per_class[label]["support"]]
    return {"accuracy": sum(confusion[i][i] for i in range(len(labels))) / n if n else 0.0,
            "macro_f1": sum(per_class[label]["f1"] for label in present) / len(present) if present else 0.0,
            "examples": n, "labels": list(labels), "per_class": per_class, "confusion": confusion}


def gold_names(examples: list[LabelledText], cfg: ClassifierConfig, source: str) -> list[str]:
    """Each example's class as the model prints it; a label may be given as in the training data or by its name.

    Raises:
        InputError: a label the model does not know (naming it and its line).
    """
    names = cfg.names()
    lookup = {**{name: name for name in names}, **dict(zip(cfg.labels, names))}
    gold = []
    for example in examples:
        if example.label not in lookup:
            raise InputError(f"{source}: line {example.line}: label {example.label[:40]!r} is not one of the "
                             f"model's classes ({', '.join(dict.fromkeys(cfg.labels + names))})")
        gold.append(lookup[example.label])
    return gold


def evaluate_classifier(classifier: LoadedClassifier, examples: list[LabelledText], source: str = "data") -> dict:
    """``classification_report`` of ``classifier`` on labelled raw texts, with timing.

    Raises:
        InputError: a label the model does not know, a text without words.
    """
    gold = gold_names(examples, classifier.cfg, source)
    texts = [classifier.words(e.text) for e in examples]
    for example, words in zip(examples, texts):
        if not words:
            raise InputError(f"{source}: line {example.line}: the text has no words")
    start = time.perf_counter()
    predicted = [c.label for c in classifier.predict(texts)]
    seconds = time.perf_counter() - start
    report = classification_report(gold, predicted, classifier.labels)
    report.update(seconds=round(seconds, 3), texts_per_second=round(len(examples) / max(seconds, 1e-9), 1))
    return report


# --------------------------------------------------------------------------- training


@dataclass
class ClassifierOptions:
    """The classifier's own training options (the shipped en-sentiment recipe by default)."""

    word_dropout: float = 0.1  # a training word becomes <unk> with this probability (its characters stay)
    label_smoothing: float = 0.0
    label_names: dict[str, str] | None = None  # data label -> printed name ("0" -> "negative")
    spans: bool = True  # train texts that are word spans of longer training texts inside them (``phrase_spans``)

    def check(self) -> None:
        """Raises InputError naming the option of a value outside [0, 1), or names that repeat."""
        for name, value in (("--word-dropout", self.word_dropout), ("--label-smoothing", self.label_smoothing)):
            if not 0 <= value < 1:
                raise InputError(f"{name} must be in [0, 1), got {value}")
        names = list((self.label_names or {}).values())
        if len(set(names)) != len(names):
            raise InputError(f"--label-names gives one name to two labels: {', '.join(names)}")


def classifier_settings(**overrides) -> FitSettings:
    """``fit`` settings of the en-sentiment recipe (batch_size: padded words per batch), with overrides."""
    return FitSettings(**{"epochs": 12, "batch_size": 1024, "lr": 1e-3, "warmup_steps": 300,
                          "weight_decay": 0.01, **overrides})


class ClassifierTask:
    """Classification for ``fit``: labelled texts, a batch of texts, accuracy on dev.

    ``prepare`` reads the data, decides the casing (lower-case input when no training text has an
    upper-case letter, as in SST), builds the vocabularies and the sentencepiece model from the
    training texts only; the dev set selects the epoch and must use the training labels.
    Raises (``prepare``):
        InputError: unreadable data, a dev label not seen in training, fewer than two classes.
    """

    name, metric, higher_is_better, shardable = TASK, "accuracy", True, True

    def __init__(self, train_path: str | Path, dev_path: str | Path, config: ClassifierConfig,
                 options: ClassifierOptions, settings: FitSettings):
        from seqattn.training.engine import run_identity

        self.train_path, self.dev_path, self.cfg, self.options = Path(train_path), Path(dev_path), config, options
        self._identity = run_identity(settings, config.to_dict(), options,
                                      {"train": self.train_path, "dev": self.dev_path})
        self.batch_size = settings.batch_size
        self._tmp = tempfile.TemporaryDirectory(prefix="seqattn-classifier-")
        self.device = torch.device("cpu")

    def identity(self) -> dict:
        return self._identity

    def prepare(self, checkpoint: dict | None, directory: Path | None) -> None:
        train, dev = read_labelled(self.train_path), read_labelled(self.dev_path)
        self.spm_path = Path(self._tmp.name) / SUBWORDS
        if checkpoint is not None:
            self.cfg = ClassifierConfig.from_dict(checkpoint["config"])
            shutil.copyfile(directory / SUBWORDS, self.spm_path)
        else:
            self.cfg.lowercase = not any(ch.isupper() for e in train for ch in e.text)
            self.cfg.labels = _sorted_labels({e.label for e in train})
            if len(self.cfg.labels) < 2:
                raise InputError(f"{self.train_path}: one class only ({self.cfg.labels[0]!r}); a classifier needs two or more")
            mapping = self.options.label_names or {}
            for label in mapping:
                if label not in self.cfg.labels:
                    raise InputError(f"--label-names names {label!r}, which is not a label of {self.train_path} "
                                     f"({', '.join(self.cfg.labels)})")
            self.cfg.label_names = [mapping.get(label, label) for label in self.cfg.labels] if mapping else []
        self.dev_gold = gold_names(dev, self.cfg, str(self.dev_path))
        self.train_words = [self._words(e, self.train_path) for e in train]
        self.dev_words = [self._words(e, self.dev_path) for e in dev]
        label_ids = {label: i for i, label in enumerate(self.cfg.labels)}
        self.train_labels = [label_ids.get(e.label, -100) for e in train]
        if checkpoint is None:
            self.cfg.build_vocabularies(self.train_words, [])
            train_subwords((" ".join(w) for w in self.train_words), self.spm_path, self.cfg.subword_vocab_size)
        subwords = SubwordModel(self.spm_path)
        self.cfg.subword_vocab_size = len(subwords)
        self.featurizer = Featurizer(self.cfg, subwords)
        if self.options.spans:
            self.roots, self.members = phrase_spans(self.train_words)
        else:
            self.roots, self.members = list(range(len(train))), [[(i, 0, len(w))] for i, w in enumerate(self.train_words)]
        self.lengths = [len(self.train_words[i]) for i in self.roots]

    def _words(self, example: LabelledText, source: Path) -> list[str]:
        words = text_words(example.text, self.cfg.lowercase)[:MAX_TEXT_WORDS]
        if not words:
            raise InputError(f"{source}: line {example.line}: the text has no words")
        return words

    def build_model(self) -> Classifier:
        return Classifier(self.cfg)

    def batches(self, epoch: int, rng) -> list[list[int]]:
        return length_batches(self.lengths, self.batch_size, rng)

    def loss(self, model: Classifier, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """Mean cross-entropy over the labelled spans of the batch's root texts, and the span count.

        One encoder pass per root text; each labelled span (the root itself, and the training
        texts found inside it) is pooled over its own words only and classified.
        Shapes: batch of B roots -> h (B, N, d) -> S spans -> logits (S, n_classes)
        """
        roots = [self.roots[r] for r in batch]
        features = to_device(self.featurizer.batch([self.train_words[i] for i in roots], None,
                                                   self.options.word_dropout, generator), self.device)
        h = model.encode(features)  # (B, N, d)
        spans = [(row, start, end, self.train_labels[i]) for row, r in enumerate(batch)
                 for i, start, end in self.members[r]]
        rows, starts, ends, labels = (torch.tensor(column, device=self.device) for column in zip(*spans))
        positions = torch.arange(h.shape[1], device=self.device)
        outside = (positions[None, :] < starts[:, None]) | (positions[None, :] >= ends[:, None])  # (S, N)
        logits = model.head(h.index_select(0, rows), outside)  # (S, n_classes)
        loss = F.cross_entropy(logits, labels, ignore_index=-100, label_smoothing=self.options.label_smoothing)
        return loss, float(len(spans))

    def evaluate(self, model: Classifier) -> dict:
        classifier = LoadedClassifier(model, self.featurizer, {}, Path("."), self.device)
        predicted = [c.label for c in classifier.predict(self.dev_words)]
        report = classification_report(self.dev_gold, predicted, self.cfg.names())
        return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}

    def config(self) -> dict:
        return self.cfg.to_dict()

    def files(self) -> dict[str, Path]:
        return {SUBWORDS: self.spm_path}

    def record(self) -> dict:
        return {"train": str(self.train_path), "dev": str(self.dev_path)}


MAX_SPAN_ROOT_WORDS = 128  # the spans of longer texts are not looked up (their number grows with N^2)


def phrase_spans(texts: list[list[str]], max_root_words: int = MAX_SPAN_ROOT_WORDS
                 ) -> tuple[list[int], list[list[tuple[int, int, int]]]]:
    """Find the texts that are word spans of longer texts (SST's labelled phrases inside its sentences).

    Longest first, each text either becomes a root or is found among the spans of an earlier root
    (an identical text is a span of the first copy).  A root of more than ``max_root_words``
    words keeps only itself.  Spans are found by hash and checked word by word.
    Returns:
        roots: indices of the texts that are no span of a longer one;
        members: per root, (text index, start, end) of every text found inside it, the root
        itself included (end exclusive, in words).
    """
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    where: dict[int, tuple[int, int, int]] = {}  # hash of a span's words -> (root, start, end)
    roots: list[int] = []
    members: list[list[tuple[int, int, int]]] = []
    for i in order:
        words = tuple(texts[i])
        hit = where.get(hash(words))
        if hit is not None:
            r, start, end = hit
            if tuple(texts[roots[r]][start:end]) == words:
                members[r].append((i, start, end))
                continue
        r = len(roots)
        roots.append(i)
        members.append([(i, 0, len(words))])
        if len(words) <= max_root_words:
            for start in range(len(words)):
                for end in range(start + 1, len(words) + 1):
                    where.setdefault(hash(words[start:end]), (r, start, end))
    return roots, members


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numeric labels in numeric order ("2" before "10"), others alphabetically."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def train_classifier(train_path: str | Path, dev_path: str | Path, out: str | Path | None,
                     settings: FitSettings | None = None, config: ClassifierConfig | None = None,
                     options: ClassifierOptions | None = None, reporter=None, force: bool = False,
                     meta: dict | None = None, resume: str | Path | None = None) -> dict:
    """Train a sentence classifier through ``fit``; keep the epoch with the best dev accuracy.

    Args:
        settings: ``fit`` settings (default ``classifier_settings()``, the en-sentiment recipe).
        config: architecture (default ``ClassifierConfig()``); vocabularies and labels are filled in here.
        reporter: progress callbacks (seqattn.training.engine.Reporter).
        resume: OUT.checkpoint of an interrupted run with the same arguments.
    Returns:
        the saved config dict ("metrics": dev_accuracy, dev_macro_f1; "training": the run record).
    Raises:
        InputError: unreadable data, a dev label unknown to training, a forbidden ``out``, a
            checkpoint of another run; ModelError: an unreadable checkpoint.
    """
    from seqattn.training.engine import fit

    settings = settings or classifier_settings()
    task = ClassifierTask(train_path, dev_path, config or ClassifierConfig(), options or ClassifierOptions(), settings)
    return fit(task, settings, out, force=force, resume=resume, reporter=reporter, meta=meta)
