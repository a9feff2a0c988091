"""Client settings as documented dataclasses: the one place that names each setting of the producer and the
consumer, with its type, its default and what it does (``producer_settings.ProducerSettings``,
``consumer_settings.ConsumerSettings``).

The public constructors, asyncio and synchronous, take the settings as keyword arguments and build the
dataclass from them (:func:`build_settings`: an unknown name is a TypeError that suggests the closest one,
a bad value a ValueError). :func:`takes_settings` gives those constructors a signature that names every
setting and a docstring that documents it, so ``help(logq.Producer)`` and editors show them. The command
line's ``-X key=value`` goes through :func:`settings_from_strings`, which also takes Kafka's dotted names
(``linger.ms`` for ``linger_ms``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = [
    "build_settings",
    "check_number",
    "setting",
    "setting_docs",
    "settings_from_strings",
    "takes_settings",
]

S = TypeVar("S")
C = TypeVar("C", bound=type)

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null", "")
_KIND_WORDS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "text",
    type(None): "none",
}


def setting(default: Any, doc: str) -> Any:
    """A dataclass field with a default and the sentence that documents it (shown by help())."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def check_number(name: str, value: object, low: float, *, integer: bool = True) -> None:
    """ValueError unless ``value`` is an int (or, unless ``integer``, a float) of at least ``low``."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {low:g}, not {value!r}")


def _names(settings_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(settings_cls)]


def build_settings(settings_cls: type[S], owner: str, keywords: Mapping[str, Any]) -> S:
    """``settings_cls(**keywords)``, with an unknown name reported as the caller's own TypeError."""
    known = _names(settings_cls)
    for name in keywords:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; the settings are: {', '.join(known)}"
            raise TypeError(f"{owner}() got an unknown setting {name!r}{hint}")
    return settings_cls(**keywords)


def settings_from_strings(
    settings_cls: type, items: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings given as text (``-X key=value``) converted to their types. A key may be the setting's
    name, Kafka's dotted name (``linger.ms``) or one of ``aliases`` (Kafka names that differ from logq's).
    ValueError for an unknown key or a value that does not convert."""
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    hints = typing.get_type_hints(settings_cls)
    out: dict[str, Any] = {}
    for key, text in items.items():
        name = key.strip().replace(".", "_").replace("-", "_")
        name = (aliases or {}).get(name, name)
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown setting {key!r}{hint}: see docs/client.md for the settings")
        out[name] = _convert(key, text, hints[name])
    return out


def _convert(key: str, text: str, hint: Any) -> Any:
    """``text`` as a value of the type ``hint`` (a union is tried member by member, None first)."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    value = text.strip()
    if type(None) in kinds and value.lower() in _NONE:
        return None
    for kind in kinds:
        if kind is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
        elif kind is int:
            try:
                return int(value)
            except ValueError:
                continue
        elif kind is float:
            try:
                return float(value)
            except ValueError:
                continue
        elif kind is str:
            return value
        elif typing.get_origin(kind) in (tuple, Sequence):
            return tuple(part.strip() for part in value.split(",") if part.strip())
    wanted = " or ".join(_KIND_WORDS.get(k, str(k)) for k in kinds)
    raise ValueError(f"bad value {text!r} for setting {key!r}: expected {wanted}")


def setting_docs(settings_cls: type) -> str:
    """Each setting, its default and its sentence, as a docstring section."""
    lines = []
    for f in dataclasses.fields(settings_cls):
        lines.append(f"    {f.name} = {f.default!r}")
        lines += textwrap.wrap(
            f.metadata.get("doc", ""), 100, initial_indent=" " * 8, subsequent_indent=" " * 8
        )
    return "\n".join(lines)


def takes_settings(settings_cls: type, heading: str) -> Callable[[C], C]:
    """Class decorator for a public constructor ``__init__(self, bootstrap=..., **settings)`` that builds
    ``settings_cls``: its signature names every setting (keyword-only, with its type and default) and the
    class docstring ends with ``heading`` and the settings' documentation."""

    def decorate(cls: C) -> C:
        init = cls.__init__  # type: ignore[misc]
        own = inspect.signature(init, eval_str=True)
        hints = typing.get_type_hints(settings_cls)
        leading = [p for p in own.parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        trailing = [p for p in own.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        named = [
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]
            )
            for f in dataclasses.fields(settings_cls)
        ]
        init.__signature__ = own.replace(parameters=[*leading, *named, *trailing])
        doc = inspect.cleandoc(cls.__doc__ or "")
        cls.__doc__ = f"{doc}\n\n{heading}\n\n{setting_docs(settings_cls)}\n"
        return cls

    return decorate
