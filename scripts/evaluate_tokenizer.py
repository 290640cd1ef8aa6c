"""Compare seqattn's sentence and word splitting with a treebank's gold tokens.

Usage: python scripts/evaluate_tokenizer.py ../shared/data/ud_english_ewt/en_ewt-ud-dev.conllu
(scripts/tokenizer_f1.py measures words by their character spans.)
Words: each gold sentence's `# text` is tokenised alone and compared with its gold words
(multiset F1, and the share of sentences tokenised exactly).  Sentences: each document's texts
are joined with spaces, split again, and compared with the gold sentence boundaries (F1).
"""

import json
import sys
from collections import Counter

from seqattn.readers.conllu import read_conllu
from seqattn.readers.text import sentence_spans, tokenize


def main(path: str) -> None:
    gold = [s for s in read_conllu(path) if s.text]
    tp = n_pred = n_gold = exact = 0
    for s in gold:
        pred = tokenize(s.text)
        common = Counter(pred) & Counter(s.words)
        tp += sum(common.values())
        n_pred, n_gold = n_pred + len(pred), n_gold + len(s.words)
        exact += pred == s.words
    p, r = tp / n_pred, tp / n_gold
    # Sentence boundaries: documents are runs of sentences that share the sent_id prefix.
    docs: dict[str, list[str]] = {}
    for s in gold:
        docs.setdefault((s.sent_id or "").rsplit("-", 1)[0], []).append(s.text)
    s_tp = s_pred = s_gold = 0
    for texts in docs.values():
        gold_ends, pos = set(), 0
        for t in texts:
            pos += len(t) + 1
            gold_ends.add(pos)
        joined = " ".join(texts)
        pred_ends = {words[-1][2] + 1 for words in sentence_spans(joined)}  # by offset: texts may hold double spaces
        s_tp += len(gold_ends & pred_ends)
        s_pred, s_gold = s_pred + len(pred_ends), s_gold + len(gold_ends)
    sp, sr = s_tp / s_pred, s_tp / s_gold
    print(json.dumps({"data": path, "word_f1": round(2 * p * r / (p + r), 4), "exact_sentences": round(exact / len(gold), 4),
                      "sentence_f1": round(2 * sp * sr / (sp + sr), 4), "sentences": len(gold)}))


if __name__ == "__main__":
    main(sys.argv[1])
