"""The producer's and the consumer's settings: named in the signatures and help() of the four public
constructors, documented in docs/client.md with the defaults the code has, checked by name and value, and
read from ``-X key=value`` text."""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
import re
from pathlib import Path
from typing import Any

import pytest

import logq
import logq.aio
from logq.client.consumer_settings import ConsumerSettings
from logq.client.producer_settings import KAFKA_NAMES, ProducerSettings
from logq.client.security import SecuritySettings
from logq.client.settings import settings_from_strings

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = [
    (logq.Producer, ProducerSettings),
    (logq.aio.Producer, ProducerSettings),
    (logq.Consumer, ConsumerSettings),
    (logq.aio.Consumer, ConsumerSettings),
]


def _doc_table(heading: str) -> dict[str, str]:
    """The rows of the table under ``heading`` in docs/client.md: setting name -> default cell."""
    text = (ROOT / "docs" / "client.md").read_text()
    section = text.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", section, re.MULTILINE))


@pytest.mark.parametrize(("cls", "settings_cls"), PUBLIC)
def test_every_setting_is_named_in_the_signature_and_help(cls: type, settings_cls: type) -> None:
    parameters = inspect.signature(cls).parameters
    assert "settings" not in parameters  # no **settings left for users to guess at
    rendered = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for field in dataclasses.fields(settings_cls):
        parameter = parameters[field.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == field.default
        assert parameter.annotation is not inspect.Parameter.empty
        assert f"{field.name} = {field.default!r}" in rendered
        first_words = " ".join(field.metadata["doc"].split()[:4])
        assert first_words in " ".join(rendered.split()), field.name


@pytest.mark.parametrize(
    ("heading", "settings_cls"),
    [
        ("Producer settings", ProducerSettings),
        ("Consumer settings", ConsumerSettings),
        ("Security settings", SecuritySettings),
    ],
)
def test_docs_list_every_setting_with_its_default(heading: str, settings_cls: type) -> None:
    documented = _doc_table(heading)
    # The producer and the consumer inherit the security settings, which have a table of their own.
    shared = (
        set() if settings_cls is SecuritySettings else {f.name for f in dataclasses.fields(SecuritySettings)}
    )
    fields = {f.name: f.default for f in dataclasses.fields(settings_cls) if f.name not in shared}
    assert list(documented) == list(fields)
    for name, default in fields.items():
        assert documented[name] == repr(default), name


def test_an_unknown_setting_names_the_closest_one() -> None:
    for producer in (logq.Producer, logq.aio.Producer):
        with pytest.raises(
            TypeError,
            match=re.escape("Producer() got an unknown setting 'lingr_ms' (did you mean 'linger_ms'?)"),
        ):
            producer("127.0.0.1:9", lingr_ms=5)  # nothing listens on port 9: the check comes first
    for consumer in (logq.Consumer, logq.aio.Consumer):
        with pytest.raises(
            TypeError, match=re.escape("Consumer() got an unknown setting 'group' (did you mean 'group_id'?)")
        ):
            consumer("127.0.0.1:9", group="g")


BAD_CONSUMER_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"auto_offset_reset": "smallest"}, "auto_offset_reset"),
    ({"group_id": ""}, "group_id"),
    ({"heartbeat_interval_ms": 50_000}, "heartbeat_interval_ms"),
    ({"max_poll_records": 0}, "max_poll_records"),
    ({"assignors": ["sticky"]}, "assignor"),
    ({"assignors": "range"}, "assignors"),
    ({"fetch_max_bytes": "big"}, "fetch_max_bytes"),
    ({"client_id": ""}, "client_id"),
]


@pytest.mark.parametrize(("settings", "named"), BAD_CONSUMER_SETTINGS)
def test_bad_consumer_settings_are_value_errors_before_any_connection(
    settings: dict[str, Any], named: str
) -> None:
    for cls in (logq.aio.Consumer, logq.Consumer):
        with pytest.raises(ValueError, match=named):
            cls("127.0.0.1:9", **settings)  # nothing listens on port 9: the check comes first


def test_settings_from_text() -> None:
    parsed = settings_from_strings(
        ProducerSettings,
        {
            "linger.ms": "20",
            "acks": "1",
            "compression.type": "gzip",
            "enable.idempotence": "false",
            "retries": "none",
            "max-request-size": "5000000",
            "allow_auto_create": "no",
        },
        KAFKA_NAMES,
    )
    assert parsed == {
        "linger_ms": 20.0,
        "acks": 1,
        "compression": "gzip",
        "enable_idempotence": False,
        "retries": None,
        "max_request_size": 5_000_000,
        "allow_auto_create": False,
    }
    assert ProducerSettings(**parsed).wire_acks == 1
    consumer = settings_from_strings(
        ConsumerSettings, {"assignors": "cooperative-sticky, range", "group.id": "g"}
    )
    assert consumer == {"assignors": ("cooperative-sticky", "range"), "group_id": "g"}
    with pytest.raises(ValueError, match=r"unknown setting 'linger' .*'linger_ms'"):
        settings_from_strings(ProducerSettings, {"linger": "5"})
    with pytest.raises(ValueError, match=re.escape("bad value 'soon' for setting 'linger.ms'")):
        settings_from_strings(ProducerSettings, {"linger.ms": "soon"})
    with pytest.raises(ValueError, match="bad value 'maybe'"):
        settings_from_strings(ProducerSettings, {"allow_auto_create": "maybe"})
