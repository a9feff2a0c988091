"""Who is at the other end of the request being handled.

The server sets it once per connection, in that connection's task, and again when a SASL login
succeeds (the principal changes); handlers read it with ``current_session()``. A ContextVar rather
than a handler parameter: asyncio gives each task a copy of the context it was created in, so every
request of a connection (and any task it starts) sees its own connection's session, and handlers that
do not care need no extra argument.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from logq.security.acl import ANONYMOUS


@dataclass(frozen=True, slots=True)
class ClientSession:
    host: str  # the peer's IP address ("" when unknown, e.g. in-process calls)
    port: int
    # Who the client is, as ACLs name it: a PLAINTEXT connection is User:ANONYMOUS; an authenticated one
    # (SASL, a TLS client certificate) gets its own.
    principal: str = ANONYMOUS
    listener: str = ""  # the listener the connection came in on ("" for in-process calls)

    @property
    def kafka_host(self) -> str:
        """The peer as Kafka's DescribeGroups shows it: ``/127.0.0.1``."""
        return f"/{self.host}" if self.host else ""


NO_SESSION = ClientSession("", -1)
_CURRENT: ContextVar[ClientSession] = ContextVar("logq_client_session", default=NO_SESSION)


def current_session() -> ClientSession:
    return _CURRENT.get()


def enter_session(session: ClientSession) -> None:
    """Set the session of the current task (the connection's task, at its start)."""
    _CURRENT.set(session)
