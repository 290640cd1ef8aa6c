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
