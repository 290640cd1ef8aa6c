"""One line of JSON for the jsonl formats, which never holds NaN or Infinity.

Python's ``json.dumps`` writes ``NaN`` for a float NaN, which no JSON parser reads (``jq``
stops at that line).  Model directories are checked for finite weights (seqattn.models.io),
but weights that are finite and huge can still overflow to infinity and NaN in a forward pass;
such a line becomes one error instead of invalid JSON.
"""

from __future__ import annotations

import json

from seqattn.errors import ModelError


def json_line(obj, ensure_ascii: bool = True) -> str:
    """``obj`` as one line of JSON, newline included.

    Raises:
        ModelError: ``obj`` holds a NaN or an infinity (a model's output: the model is at fault).
    """
    try:
        return json.dumps(obj, ensure_ascii=ensure_ascii, allow_nan=False) + "\n"
    except ValueError:
        raise ModelError("the model gave a NaN or infinite number, which JSON cannot hold; its weights are "
                         "damaged or too large") from None


def attention_json(maps, panels, kind: str):
    """The "attention" of a jsonl object: the weights of one map as nested lists (as before the
    options existed); with several maps (``--layer all``, ``--head all``) a list of
    {"layer", "head", "kind", "weights"} (head null: the mean over heads).  Rounded to 4 places.

    Args:
        maps: (title, (N, K) weights as nested lists) each.
        panels: one per map, with ``.layer`` and ``.head`` (seqattn.cli.attention_options.Panel).
    """
    def rounded(matrix):
        return [[round(v, 4) for v in row] for row in matrix]

    if len(maps) == 1:
        return rounded(maps[0][1])
    return [{"layer": p.layer, "head": p.head, "kind": kind, "weights": rounded(m)} for p, (_, m) in zip(panels, maps)]
