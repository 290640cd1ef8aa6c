"""Word-segmentation F1 of seqattn's tokenizer against a treebank's gold tokens, by character span.

Usage:
    python scripts/tokenizer_f1.py ../shared/data/ud_english_ewt/en_ewt-ud-dev.conllu [--errors 30]

Each gold sentence's raw ``# text`` is tokenised alone (``seqattn.readers.text.word_spans``, the
words ``seqattn tag`` and ``seqattn tokenize`` use, with their offsets).  The gold words are put
on the same text: surface tokens in order, separated by whitespace, and the syntactic words of a
multiword token (EWT's "didn't" = "did" + "n't") on consecutive pieces of its span; in UD English
EWT v2.16 the words of every multiword token spell it exactly, so each gold word has a span.

Printed, one JSON object:
    span_f1:         F1 of predicted word spans against gold word spans (a word counts when both
                     its start and its end are right).
    word_f1:         the older measure (scripts/evaluate_tokenizer.py): F1 of the multiset of
                     word strings per sentence, blind to where a word is.
    exact_sentences: share of sentences whose words are all right.
``--errors N`` also prints the N most frequent differences (gold words -> predicted words) on
stderr, for reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from seqattn.readers.text import align_words, word_spans


def gold_sentences(path: str):
    """Yield (text, [(word, start, end), ...]) per sentence with a ``# text`` line."""
    text, surface, words, mwt_end = None, [], [], 0
    with open(path, encoding="utf-8") as handle:
        for line in list(handle) + [""]:
            line = line.rstrip("\n")
            if line.startswith("# text = "):
                text = line[len("# text = "):]
            elif line and not line.startswith("#"):
                cols = line.split("\t")
                if "-" in cols[0]:  # multiword token: its span, then its words inside it
                    surface.append((cols[1], []))
                    mwt_end = int(cols[0].split("-")[1])
                elif "." not in cols[0]:  # skip empty nodes
                    if surface and int(cols[0]) <= mwt_end:
                        surface[-1][1].append(cols[1])
                    else:
                        surface.append((cols[1], [cols[1]]))
            elif not line and surface:
                if text is not None:
                    spans = align_words(text, [form for form, _ in surface])
                    gold = []
                    for (form, parts), (start, end) in zip(surface, spans):
                        if "".join(parts) != form:
                            raise ValueError(f"{path}: multiword token {form!r} is not spelt by {parts}")
                        for part in parts:
                            gold.append((part, start, start + len(part)))
                            start += len(part)
                    yield text, gold
                text, surface, mwt_end = None, [], 0


def f1(tp: int, n_pred: int, n_gold: int) -> float:
    p, r = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(path: str, show_errors: int = 0) -> dict:
    span_tp = bag_tp = n_pred = n_gold = exact = sentences = 0
    errors: Counter = Counter()
    for text, gold in gold_sentences(path):
        pred = word_spans(text)
        sentences += 1
        n_pred, n_gold = n_pred + len(pred), n_gold + len(gold)
        span_tp += len(set(pred) & set(gold))
        bag_tp += sum((Counter(w for w, _, _ in pred) & Counter(w for w, _, _ in gold)).values())
        exact += pred == gold
        if show_errors and pred != gold:
            wrong_gold = {(s, e) for _, s, e in gold} - {(s, e) for _, s, e in pred}
            wrong_pred = {(s, e) for _, s, e in pred} - {(s, e) for _, s, e in gold}
            if wrong_gold or wrong_pred:  # group each difference by the chunk of text it covers
                lo = min(s for s, _ in wrong_gold | wrong_pred)
                hi = max(e for _, e in wrong_gold | wrong_pred)
                errors[(" ".join(w for w, s, e in gold if lo <= s and e <= hi),
                        " ".join(w for w, s, e in pred if lo <= s and e <= hi))] += 1
    for (g, p), n in errors.most_common(show_errors):
        print(f"{n:5d}  {g!r:50} -> {p!r}", file=sys.stderr)
    return {"data": path, "span_f1": round(f1(span_tp, n_pred, n_gold), 4),
            "word_f1": round(f1(bag_tp, n_pred, n_gold), 4), "exact_sentences": round(exact / sentences, 4),
            "sentences": sentences, "gold_words": n_gold, "predicted_words": n_pred}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("conllu", nargs="+")
    parser.add_argument("--errors", type=int, default=0, help="print the N most frequent differences on stderr")
    args = parser.parse_args()
    for path in args.conllu:
        print(json.dumps(evaluate(path, args.errors)))
