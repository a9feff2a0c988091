"""``-X key=value``: any client setting on the command line, as kcat's ``-X`` (docs/client.md lists them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from logq.client.settings import settings_from_strings
from logq_cli.specs import parse_key_values


def x_option(func: Any) -> Any:
    return click.option(
        "-X",
        "x_settings",
        multiple=True,
        metavar="KEY=VALUE",
        help="A client setting (see docs/client.md), e.g. -X linger_ms=20 or Kafka's -X linger.ms=20; "
        "repeatable.",
    )(func)


def client_settings(
    settings_cls: type,
    x_settings: tuple[str, ...],
    own: Mapping[str, Any],
    flags: Mapping[str, str],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The settings a command's client gets: ``own`` (what its flags and defaults say), with ``-X`` added.
    A setting that has a flag (``flags``: setting -> flag) is refused in ``-X``, so that two values never
    compete. ValueError (one line) for an unknown setting or a bad value."""
    extra = settings_from_strings(settings_cls, parse_key_values(x_settings, "-X setting"), aliases)
    for name in extra:
        if name in flags:
            raise ValueError(f"-X {name}: give it with {flags[name]}")
    return {**own, **extra}
