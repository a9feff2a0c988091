"""DescribeUserScramCredentials (key 50, v0) and AlterUserScramCredentials (key 51, v0): flexible
versions (compact types, tagged fields), as every version of these APIs is.

Field lists follow Apache Kafka's ``DescribeUserScramCredentialsRequest.json`` /
``...Response.json`` and ``AlterUserScramCredentialsRequest.json`` / ``...Response.json``. Mechanisms
are int8: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512. An upsertion carries the salt and the SaltedPassword the
client computed (PBKDF2), never the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from logq.protocol.schema import BYTES, INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "AlterUserScramCredentialsRequest",
    "AlterUserScramCredentialsResponse",
    "AlterUserScramCredentialsResult",
    "CredentialInfo",
    "DescribeUserScramCredentialsRequest",
    "DescribeUserScramCredentialsResponse",
    "DescribeUserScramCredentialsResult",
    "ScramCredentialDeletion",
    "ScramCredentialUpsertion",
    "UserName",
]


@dataclass(slots=True, kw_only=True)
class UserName(Struct):
    name: str = wire(STRING)


@dataclass(slots=True, kw_only=True)
class DescribeUserScramCredentialsRequest(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 0
    users: list[UserName] | None = wire(ArrayOf(UserName), nullable="0+", default=None)  # null: all


@dataclass(slots=True, kw_only=True)
class CredentialInfo(Struct):
    mechanism: int = wire(INT8)
    iterations: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class DescribeUserScramCredentialsResult(Struct):
    user: str = wire(STRING)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    credential_infos: list[CredentialInfo] = wire(ArrayOf(CredentialInfo))


@dataclass(slots=True, kw_only=True)
class DescribeUserScramCredentialsResponse(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 0
    throttle_time_ms: int = wire(INT32)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    results: list[DescribeUserScramCredentialsResult] = wire(ArrayOf(DescribeUserScramCredentialsResult))


@dataclass(slots=True, kw_only=True)
class ScramCredentialDeletion(Struct):
    name: str = wire(STRING)
    mechanism: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class ScramCredentialUpsertion(Struct):
    name: str = wire(STRING)
    mechanism: int = wire(INT8)
    iterations: int = wire(INT32)
    salt: bytes = wire(BYTES)
    salted_password: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class AlterUserScramCredentialsRequest(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 0
    deletions: list[ScramCredentialDeletion] = wire(ArrayOf(ScramCredentialDeletion))
    upsertions: list[ScramCredentialUpsertion] = wire(ArrayOf(ScramCredentialUpsertion))


@dataclass(slots=True, kw_only=True)
class AlterUserScramCredentialsResult(Struct):
    user: str = wire(STRING)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class AlterUserScramCredentialsResponse(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 0
    throttle_time_ms: int = wire(INT32)
    results: list[AlterUserScramCredentialsResult] = wire(ArrayOf(AlterUserScramCredentialsResult))
