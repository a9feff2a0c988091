"""Typed errors raised by the protocol codec (never IndexError, struct.error or UnicodeDecodeError).

Each is a :class:`logq.errors.LogqError` with the Kafka error code of what went wrong, so callers handle
them as every other logq error (``code``, ``retriable``).
"""

from __future__ import annotations

from collections.abc import Sequence

from logq.error_codes import ErrorCode
from logq.errors import LogqError


class ProtocolError(LogqError):
    """Base class of every error raised by :mod:`logq.protocol`: bytes or values that are not a valid
    message of the version at hand (INVALID_REQUEST)."""

    code = ErrorCode.INVALID_REQUEST


class ProtocolDecodeError(ProtocolError, ValueError):
    """Malformed bytes: truncated data, bad lengths or counts, invalid UTF-8, null where not allowed.

    ``api_key``, ``api_version`` and ``correlation_id`` are filled in once the request header prefix
    was readable, so the broker can log the request or answer INVALID_REQUEST before closing.
    """

    def __init__(
        self,
        message: str,
        *,
        api_key: int | None = None,
        api_version: int | None = None,
        correlation_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


class ProtocolEncodeError(ProtocolError, ValueError):
    """A message cannot be encoded: out-of-range integer, over-long string, null in a non-nullable field."""


class UnsupportedVersionError(ProtocolError):
    """The request's api_key is unknown or its api_version is outside the supported range
    (UNSUPPORTED_VERSION).

    Raised after reading only the fixed 8-byte header prefix, so the body is never parsed (docs/protocol.md,
    "ApiVersions negotiation").
    """

    code = ErrorCode.UNSUPPORTED_VERSION

    def __init__(self, api_key: int, api_version: int, correlation_id: int) -> None:
        super().__init__(f"unsupported api_key={api_key} api_version={api_version}")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


class FrameSizeError(ProtocolError):
    """A frame length prefix is zero, negative or above ``max_frame_bytes``; the connection must close.

    ``frames`` holds the complete frames that preceded the bad prefix in the same ``feed`` call.
    """

    def __init__(self, size: int, limit: int, frames: Sequence[memoryview] = ()) -> None:
        super().__init__(f"invalid frame size {size} (limit {limit})")
        self.size = size
        self.limit = limit
        self.frames = list(frames)
