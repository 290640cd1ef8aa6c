"""Learn the abbreviations that keep their period from EWT train; write them as JSON.

Usage: python scripts/learn_abbreviations.py ../shared/data/ud_english_ewt/en_ewt-ud-train.conllu
A word form of 2+ characters that ends in "." inside a sentence ("Mr.", "U.S.", "approx.") is an
abbreviation in UD English; the sentence splitter and tokenizer keep such periods attached.
"""

import json
import sys
from collections import Counter

from seqattn.readers.conllu import read_conllu
from seqattn.readers.text import ABBREVIATIONS


def main(train_conllu: str) -> None:
    counts = Counter(w.lower() for s in read_conllu(train_conllu) for w in s.words[:-1]
                     if len(w) > 1 and w.endswith(".") and any(c.isalpha() for c in w))
    words = sorted(w for w in counts)
    ABBREVIATIONS.write_text(json.dumps({"source": "UD English EWT train (CC BY-SA 4.0)", "abbreviations": words},
                                        indent=0) + "\n", encoding="utf-8")
    print(f"{ABBREVIATIONS}: {len(words)} abbreviations")


if __name__ == "__main__":
    main(sys.argv[1])
