"""Listeners, as Kafka's ``listeners`` / ``advertised.listeners`` / ``listener.security.protocol.map`` /
``inter.broker.listener.name``: each listener has a name, a security protocol, the address it binds and
the address Metadata tells its clients.

    listeners = "CLIENT://127.0.0.1:9093,INTERNAL://127.0.0.1:9094"
    listener.security.protocol.map = "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT"

Without a map, a listener's name is its protocol (``SASL_SSL://:9093``). An empty host binds every
interface (and then needs an advertised address). Pure: parsing and checks only.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class SecurityProtocol(enum.Enum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    protocol: SecurityProtocol
    bind: HostPort  # host "" = every interface; port 0 = a free port
    advertised: HostPort | None  # None: the bound address


@dataclass(frozen=True, slots=True)
class Listeners:
    all: tuple[Listener, ...]
    inter_broker: Listener

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.all)

    @property
    def uses_tls(self) -> bool:
        return any(listener.protocol.tls for listener in self.all)

    @property
    def uses_sasl(self) -> bool:
        return any(listener.protocol.sasl for listener in self.all)


def _endpoints(text: str, what: str) -> list[tuple[str, HostPort]]:
    """``NAME://HOST:PORT,...`` as (name, address) pairs."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        name, sep, address = item.partition("://")
        if not sep or not _NAME.match(name):
            raise ValueError(f"{what}: expected NAME://HOST:PORT, got {item!r}")
        host, colon, port = address.rpartition(":")
        if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{what}: expected NAME://HOST:PORT, got {item!r}")
        out.append((name.upper(), HostPort(host.strip("[]"), int(port))))
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: each listener name may appear once, got {text!r}")
    return out


def _protocol_map(text: str | None) -> dict[str, SecurityProtocol]:
    if text is None:
        return {}
    out = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, protocol = item.partition(":")
        try:
            out[name.strip().upper()] = SecurityProtocol(protocol.strip().upper())
        except ValueError:
            choices = ", ".join(p.value for p in SecurityProtocol)
            raise ValueError(
                f"listener.security.protocol.map: expected NAME:PROTOCOL with PROTOCOL one of {choices}, "
                f"got {item!r}"
            ) from None
        if not sep:
            raise ValueError(f"listener.security.protocol.map: expected NAME:PROTOCOL, got {item!r}")
    return out


def parse_listeners(
    listeners: str,
    *,
    listen: HostPort | None = None,
    advertised_listener: HostPort | None = None,
    advertised_listeners: str | None = None,
    protocol_map: str | None = None,
    inter_broker_listener_name: str | None = None,
) -> Listeners:
    """The broker's listeners; ValueError (one line) for anything inconsistent."""
    bound = [("PLAINTEXT", listen)] if listen is not None else _endpoints(listeners, "listeners")
    if not bound:
        raise ValueError("listeners: at least one listener is needed")
    protocols = _protocol_map(protocol_map)
    advertised = (
        dict(_endpoints(advertised_listeners, "advertised.listeners")) if advertised_listeners else {}
    )
    unknown = set(advertised) - {name for name, _ in bound}
    if unknown:
        raise ValueError(
            f"advertised.listeners names listener(s) not in listeners: {', '.join(sorted(unknown))}"
        )
    if advertised_listener is not None:
        if len(bound) != 1 or advertised:
            raise ValueError("advertised.listener is for a single listener: use advertised.listeners")
        advertised[bound[0][0]] = advertised_listener
    out = []
    for name, address in bound:
        protocol = protocols.get(name)
        if protocol is None:
            try:
                protocol = SecurityProtocol(name)
            except ValueError:
                raise ValueError(
                    f"listener {name} has no security protocol: add {name}:<PROTOCOL> to "
                    "listener.security.protocol.map"
                ) from None
        shown = advertised.get(name)
        if shown is None and address.host in ("", "0.0.0.0", "::"):
            raise ValueError(
                f"listener {name} binds every interface: give its address in advertised.listeners"
            )
        out.append(Listener(name, protocol, address, shown))
    return Listeners(tuple(out), _inter_broker(out, inter_broker_listener_name))


def _inter_broker(listeners: Sequence[Listener], name: str | None) -> Listener:
    """The named listener; by default the one named PLAINTEXT, else the first (Kafka defaults to the
    PLAINTEXT protocol's listener)."""
    if name is not None:
        found = next((lst for lst in listeners if lst.name == name.upper()), None)
        if found is None:
            raise ValueError(f"inter.broker.listener.name {name!r} is not one of the listeners")
        return found
    return next((lst for lst in listeners if lst.name == "PLAINTEXT"), listeners[0])
