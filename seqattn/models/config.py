"""One config base for every model: a dataclass's fields are the schema of its config.json.

A model's config is a ``@dataclass`` that derives from ``Config``.  Its fields, their type
annotations and their metadata say everything there is to check, once, for every model:

    @dataclass
    class EncoderConfig(Config):
        d_model: int = bounded(256, min=1, max=MAX_WIDTH)
        dropout: float = bounded(0.1, min=0.0, below=1.0)
        window: int | None = bounded(None, min=0, max=MAX_WINDOW)
        score: str = bounded("dot", choices=SCORES)

Types (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``list[X]``, ``Literal[...]`` and a
nested ``Config``) are checked strictly: a bool is not an integer, "3" is not a number, a float
must be finite, an integer must fit the field's range.  Rules between fields (heads dividing
d_model) live in the class's ``check()``; rules that only weights need (a filled vocabulary) in
``check_trained()``.  Every check runs when a config is made, from code or from JSON, and before
any tensor exists, so a hostile config.json ends in one ``ConfigError`` naming the field:
``model/config.json: encoder.n_heads must be >= 1, got 0``.

Keys: ``from_dict`` refuses a key that is no field, naming it (a typo such as ``n_head`` would
otherwise be dropped and the model built with the default).  A missing key takes the field's
default, so configs saved before a field existed still load; a field added later can be marked
``omit_default=True`` so that ``to_dict`` leaves it out while it has its default, and old
models save byte for byte as they were.
"""

from __future__ import annotations

import math
import numbers
import types
import typing
from dataclasses import MISSING, field, fields
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from seqattn.errors import ModelError

MAX_INT = 2 ** 53  # integers beyond this are no size or count (and lose exactness as JSON numbers)
MAX_ITEMS = 1_000_000  # default bound on a list field's length (vocabularies)
MAX_CHARS = 10_000  # default bound on a string's length (a field, or an item of a list)

C = TypeVar("C", bound="Config")


class ConfigError(ModelError, ValueError):
    """A config value that breaks its field's rule (exit code 2, like every ``ModelError``).

    Also a ``ValueError``, which is what a config made with bad values in code raised before.
    The message names the field by its path (``encoder.n_heads``) and, where known, the file.

    Args:
        problem: what is wrong, a phrase that follows the field (``must be >= 1, got 0``), or a
            whole sentence when ``field`` is None.
        field: the field's path inside the config, or None.
        where: the file or object the config came from (``model/config.json``), or None.
    """

    def __init__(self, problem: str, field: str | None = None, where: str | None = None):
        self.problem, self.field, self.where = problem, field, where
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.field} {self.problem}" if self.field else self.problem
        return f"{self.where}: {text}" if self.where else text

    def within(self, name: str) -> "ConfigError":
        """The same error one level up: the field ``x`` of ``encoder`` becomes ``encoder.x``.

        ``field`` "" stands for the value itself (its owner names it), None for no field at all.
        """
        if self.field is None:
            return ConfigError(f"{name}: {self.problem}", None, self.where)
        path = name if not self.field else name + self.field if self.field.startswith("[") else f"{name}.{self.field}"
        return ConfigError(self.problem, path, self.where)

    def at(self, where: str | None) -> "ConfigError":
        """The same error, naming the file (or object) the config came from."""
        return ConfigError(self.problem, self.field, where) if where else self


def bounded(default: Any = MISSING, *, default_factory: Any = MISSING, min: float | None = None,
            max: float | None = None, above: float | None = None, below: float | None = None,
            choices: tuple | None = None, min_items: int = 0, max_items: int = MAX_ITEMS,
            max_chars: int = MAX_CHARS, omit_default: bool = False, finite: bool = True):
    """A dataclass ``field`` with the rules ``Config`` checks.

    Args:
        min, max: inclusive bounds of a number (or of each number of a list).
        above, below: exclusive bounds (``below=1.0``: a dropout of 1 would drop everything).
        choices: the allowed values (strings such as a score function's names).
        min_items, max_items: length bounds of a list.
        max_chars: length bound of a string, or of each string of a list.
        omit_default: ``to_dict`` leaves the field out while it holds its default (a field added
            after models were shipped: their saved configs stay as they were).
        finite: False lets NaN and infinity through to ``check()`` (which then says what the
            value means); JSON holds neither.
    """
    rules = {"min": min, "max": max, "above": above, "below": below, "choices": choices,
             "min_items": min_items, "max_items": max_items, "max_chars": max_chars,
             "omit_default": omit_default, "finite": finite}
    return field(default=default, default_factory=default_factory, metadata=rules)


class Config:
    """Base of every model config (a ``@dataclass``): validation, ``to_dict`` and ``from_dict``.

    Subclasses add rules between fields in ``check()`` and rules for a config that describes
    trained weights in ``check_trained()``; both raise ``self.invalid(field, problem)``.
    """

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            try:
                checked = _check_value(value, hints[f.name], f.metadata)
            except ConfigError as err:
                raise err.within(f.name) from None
            if checked is not value:
                object.__setattr__(self, f.name, checked)  # frozen configs too (FrameSpec)
        self.check()

    def check(self) -> None:
        """Rules between fields; runs after every field passed its own rules.

        Raises:
            ConfigError: from ``self.invalid``.
        """

    def check_trained(self) -> None:
        """Rules a config must meet to describe trained weights (filled vocabularies, known
        input size); a config about to be trained may still be empty there.

        Raises:
            ConfigError: from ``self.invalid``.
        """

    def invalid(self, field: str, problem: str) -> ConfigError:
        """The error for ``field`` (a path such as ``encoder.window``) breaking a rule."""
        return ConfigError(problem, field)

    def to_dict(self) -> dict:
        """The config as JSON-able values, fields in declaration order, nested configs as dicts."""
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("omit_default") and f.default is not MISSING and value == f.default:
                continue
            out[f.name] = value.to_dict() if isinstance(value, Config) else list(value) if isinstance(
                value, (list, tuple)) else value
        return out

    @classmethod
    def from_dict(cls: type[C], d: Any, where: str | None = None) -> C:
        """Build from a JSON object (e.g. ``json.loads`` of a config.json's ``config``), checking every rule.

        Missing keys take their defaults; keys that are no field are refused.

        Args:
            d: the object; anything that is not a dict is refused.
            where: named first in errors (``model/config.json``).
        Raises:
            ConfigError: the first rule ``d`` breaks, naming ``where`` and the field's path.
        """
        try:
            if not isinstance(d, dict):
                raise ConfigError(f"must be an object, got {_show(d)}", "config")
            names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
            for key in d:
                if key not in names:
                    raise ConfigError(f"{_show_key(key)} is not a setting of {cls.__name__} "
                                      f"(known: {', '.join(names)})")
            for f in fields(cls):  # type: ignore[arg-type]
                if f.init and f.name not in d and f.default is MISSING and f.default_factory is MISSING:
                    raise ConfigError("is missing", f.name)
            return cls(**d)
        except ConfigError as err:
            raise err.at(where) from None


@cache
def _type_hints(cls: type) -> dict[str, Any]:
    # The annotations are strings (``from __future__ import annotations``); evaluate them once.
    return typing.get_type_hints(cls)


def _show(value: Any) -> str:
    """A value as an error shows it: JSON's words, and never more than a few dozen characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, numbers.Integral) and abs(int(value)) > MAX_INT:
        return f"an integer of about {int(abs(int(value)).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _show_key(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _optional(tp: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, True) or (tp, False)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported config field type {tp}")  # a bug in a config class
        return args[0], len(args) < len(get_args(tp))
    return tp, False


def _check_value(value: Any, tp: Any, rules: Any) -> Any:
    """``value`` checked against type ``tp`` and ``rules`` (a field's metadata); returns it in its
    canonical type (an int given for a float field becomes a float; a tuple for a list, a list).

    Raises:
        ConfigError: the value breaks its type or a rule (``field`` is None: the caller names it).
    """
    tp, nullable = _optional(tp)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"must be {_describe(tp)}, got null", "")
    origin = get_origin(tp)
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in get_args(tp)):
            raise ConfigError(f"must be one of {', '.join(map(repr, get_args(tp)))}, got {_show(value)}", "")
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"must be a list, got {_show(value)}", "")
        if not rules.get("min_items", 0) <= len(value) <= rules.get("max_items", MAX_ITEMS):
            raise ConfigError(f"must hold {_items_range(rules)} items, got {len(value)}", "")
        item_rules = {k: v for k, v in rules.items() if k not in ("min_items", "max_items")}
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_check_value(item, item_type, item_rules))
            except ConfigError as err:
                raise err.within(f"[{i}]") from None
        return out if isinstance(value, tuple) or out != value or any(a is not b for a, b in zip(out, value)) \
            else value
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return tp.from_dict(value)
        raise ConfigError(f"must be an object, got {_show(value)}", "")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {_show(value)}", "")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"must be an integer, got {_show(value)}", "")
        checked = int(value)
        if abs(checked) > MAX_INT:
            raise ConfigError(f"must be {_range(rules) or 'a size or count'}, got {_show(checked)}", "")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"must be a number, got {_show(value)}", "")
        try:
            checked = float(value)
        except OverflowError:  # an integer of hundreds of digits
            checked = math.inf
        if not math.isfinite(checked) and rules.get("finite", True):
            raise ConfigError(f"must be a finite number, got {_show(value)}", "")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, got {_show(value)}", "")
        if len(value) > rules.get("max_chars", MAX_CHARS):
            raise ConfigError(f"must be at most {rules.get('max_chars', MAX_CHARS)} characters, "
                              f"got {len(value)}", "")
        checked = value
    else:
        raise TypeError(f"unsupported config field type {tp}")  # a bug in a config class
    choices = rules.get("choices")
    if choices is not None and checked not in choices:
        raise ConfigError(f"must be one of {', '.join(map(repr, choices))}, got {_show(value)}", "")
    low, high, above, below = (rules.get(k) for k in ("min", "max", "above", "below"))
    if (low is not None and checked < low) or (high is not None and checked > high) or \
            (above is not None and checked <= above) or (below is not None and checked >= below):
        raise ConfigError(f"must be {_range(rules)}, got {_show(value)}", "")
    return value if type(value) is type(checked) and value == checked else checked


def _range(rules: Any) -> str:
    parts = []
    for key, word in (("min", ">="), ("above", ">"), ("max", "<="), ("below", "<")):
        if rules.get(key) is not None:
            parts.append(f"{word} {rules[key]:g}" if isinstance(rules[key], float) else f"{word} {rules[key]}")
    return " and ".join(parts)


def _items_range(rules: Any) -> str:
    low, high = rules.get("min_items", 0), rules.get("max_items", MAX_ITEMS)
    return f"at most {high:,}" if low == 0 else f"{low:,} to {high:,}"


def _describe(tp: Any) -> str:
    if get_origin(tp) is list:
        return "a list"
    if isinstance(tp, type) and issubclass(tp, Config):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))

