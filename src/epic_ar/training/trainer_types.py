"""Checking `trainer.*` values against the types Lightning's Trainer declares, so that
`trainer.max_epochs=abc` is one line naming the key, not a traceback from inside Lightning."""

from __future__ import annotations

import types
import typing
from typing import Any

from epic_ar.errors import EpicArError


def check_trainer_types(arguments: dict[str, Any]) -> None:
    """Refuse a Trainer argument whose value cannot have the type Lightning declares for it
    (`max_epochs=abc`), naming the key and the types accepted. Values of types a config
    cannot hold (Lightning objects, timedeltas) are left to Lightning."""
    from lightning import Trainer

    try:
        hints = typing.get_type_hints(Trainer.__init__)
    except Exception:  # unresolvable annotations: leave the checks to Lightning
        return
    for key, value in arguments.items():
        if key in hints and _fits(value, hints[key]) is False:
            raise EpicArError(
                f"trainer.{key}: {value!r} is not {_describe(hints[key])} "
                "(as Lightning's Trainer takes it)"
            )


_SIMPLE_TYPES: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    type(None): "null",
}


def _fits(value: Any, annotation: Any) -> bool | None:
    """Whether `value` (plain config data) has type `annotation`; None: cannot tell."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        fits = [_fits(value, arg) for arg in args]
        return True if any(fits) else None if None in fits else False
    if origin is typing.Literal:
        return value in args and type(value) in {type(arg) for arg in args}
    if origin is list:
        if not isinstance(value, list):
            return False
        return all(_fits(item, args[0]) is not False for item in value) if args else True
    if origin is dict:
        return isinstance(value, dict) or None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation in (str, type(None)):
        return isinstance(value, annotation)
    return None  # a class a config cannot hold (an Accelerator, a timedelta, ...)


def _describe(annotation: Any) -> str:
    """`annotation` in words: "an integer or null", "one of 'bf16-mixed', ...", ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        literals = [
            v for arg in args if typing.get_origin(arg) is typing.Literal for v in arg.__args__
        ]
        others = [arg for arg in args if typing.get_origin(arg) is not typing.Literal]
        if float in others and int in others:  # "a number" covers integers
            others.remove(int)
        words = [_describe(arg) for arg in others]
        if literals:
            words.insert(0, _describe(typing.Literal[tuple(literals)]))
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return _SIMPLE_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))
