"""The API table: which request/response classes belong to each api_key, and the supported versions.

This is the one place that lists versions (docs/protocol.md, "APIs and versions"). ``API_SPECS`` is
everything the codec decodes and encodes; ``ADVERTISED_API_KEYS`` is what an ApiVersions response lists
by default. DescribeGroups, ListGroups, DescribeConfigs, DescribeLogDirs, OffsetForLeaderEpoch, the ACL
APIs (DescribeAcls, CreateAcls, DeleteAcls) and the SASL and user APIs are decodable but left out of the
default advertisement (never advertise an API you do not serve); a broker that serves them passes them to
:func:`api_versions_entries`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from logq.protocol import messages as m
from logq.protocol.schema import Struct, is_flexible


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    INCREMENTAL_ALTER_CONFIGS = 44
    OFFSET_DELETE = 47
    DESCRIBE_CLIENT_QUOTAS = 48
    ALTER_CLIENT_QUOTAS = 49
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51


@dataclass(frozen=True, slots=True)
class ApiSpec:
    api_key: ApiKey
    min_version: int
    max_version: int
    request_type: type[Struct]
    response_type: type[Struct]

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def flexible(self, version: int) -> bool:
        """Whether ``version`` uses the flexible encoding (compact types, tagged fields)."""
        return is_flexible(self.request_type, version)


# Each max is the last non-flexible version; every version in between must work, as some clients use fixed
# versions (docs/protocol.md, "Clients' quirks").
_SPECS: Final = (
    ApiSpec(ApiKey.PRODUCE, 0, 8, m.ProduceRequest, m.ProduceResponse),
    ApiSpec(ApiKey.FETCH, 4, 11, m.FetchRequest, m.FetchResponse),
    ApiSpec(ApiKey.LIST_OFFSETS, 1, 7, m.ListOffsetsRequest, m.ListOffsetsResponse),  # flexible from v6
    ApiSpec(ApiKey.METADATA, 0, 8, m.MetadataRequest, m.MetadataResponse),
    ApiSpec(ApiKey.OFFSET_COMMIT, 2, 7, m.OffsetCommitRequest, m.OffsetCommitResponse),
    ApiSpec(ApiKey.OFFSET_FETCH, 1, 5, m.OffsetFetchRequest, m.OffsetFetchResponse),
    ApiSpec(ApiKey.FIND_COORDINATOR, 0, 2, m.FindCoordinatorRequest, m.FindCoordinatorResponse),
    ApiSpec(ApiKey.JOIN_GROUP, 0, 5, m.JoinGroupRequest, m.JoinGroupResponse),
    ApiSpec(ApiKey.HEARTBEAT, 0, 3, m.HeartbeatRequest, m.HeartbeatResponse),
    ApiSpec(ApiKey.LEAVE_GROUP, 0, 3, m.LeaveGroupRequest, m.LeaveGroupResponse),
    ApiSpec(ApiKey.SYNC_GROUP, 0, 3, m.SyncGroupRequest, m.SyncGroupResponse),
    ApiSpec(ApiKey.DESCRIBE_GROUPS, 0, 4, m.DescribeGroupsRequest, m.DescribeGroupsResponse),
    ApiSpec(ApiKey.LIST_GROUPS, 0, 2, m.ListGroupsRequest, m.ListGroupsResponse),
    ApiSpec(ApiKey.SASL_HANDSHAKE, 0, 1, m.SaslHandshakeRequest, m.SaslHandshakeResponse),
    ApiSpec(ApiKey.API_VERSIONS, 0, 2, m.ApiVersionsRequest, m.ApiVersionsResponse),
    ApiSpec(ApiKey.CREATE_TOPICS, 0, 4, m.CreateTopicsRequest, m.CreateTopicsResponse),
    ApiSpec(ApiKey.DELETE_TOPICS, 0, 3, m.DeleteTopicsRequest, m.DeleteTopicsResponse),
    ApiSpec(ApiKey.DELETE_RECORDS, 0, 1, m.DeleteRecordsRequest, m.DeleteRecordsResponse),
    ApiSpec(ApiKey.INIT_PRODUCER_ID, 0, 1, m.InitProducerIdRequest, m.InitProducerIdResponse),
    ApiSpec(
        ApiKey.OFFSET_FOR_LEADER_EPOCH, 0, 3, m.OffsetForLeaderEpochRequest, m.OffsetForLeaderEpochResponse
    ),
    ApiSpec(ApiKey.DESCRIBE_ACLS, 0, 1, m.DescribeAclsRequest, m.DescribeAclsResponse),
    ApiSpec(ApiKey.CREATE_ACLS, 0, 1, m.CreateAclsRequest, m.CreateAclsResponse),
    ApiSpec(ApiKey.DELETE_ACLS, 0, 1, m.DeleteAclsRequest, m.DeleteAclsResponse),
    ApiSpec(ApiKey.DESCRIBE_CONFIGS, 0, 3, m.DescribeConfigsRequest, m.DescribeConfigsResponse),
    ApiSpec(ApiKey.ALTER_CONFIGS, 0, 1, m.AlterConfigsRequest, m.AlterConfigsResponse),
    # v1 is flexible (FLEXIBLE_FROM on the message classes), and served.
    ApiSpec(
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        0,
        1,
        m.IncrementalAlterConfigsRequest,
        m.IncrementalAlterConfigsResponse,
    ),
    ApiSpec(ApiKey.DESCRIBE_LOG_DIRS, 0, 1, m.DescribeLogDirsRequest, m.DescribeLogDirsResponse),
    ApiSpec(ApiKey.SASL_AUTHENTICATE, 0, 1, m.SaslAuthenticateRequest, m.SaslAuthenticateResponse),
    ApiSpec(ApiKey.DELETE_GROUPS, 0, 1, m.DeleteGroupsRequest, m.DeleteGroupsResponse),
    ApiSpec(ApiKey.OFFSET_DELETE, 0, 0, m.OffsetDeleteRequest, m.OffsetDeleteResponse),
    ApiSpec(ApiKey.CREATE_PARTITIONS, 0, 1, m.CreatePartitionsRequest, m.CreatePartitionsResponse),
    # v0 only: v1 is the first flexible version.
    ApiSpec(
        ApiKey.DESCRIBE_CLIENT_QUOTAS, 0, 0, m.DescribeClientQuotasRequest, m.DescribeClientQuotasResponse
    ),
    ApiSpec(ApiKey.ALTER_CLIENT_QUOTAS, 0, 0, m.AlterClientQuotasRequest, m.AlterClientQuotasResponse),
    # Flexible from v0 (FLEXIBLE_FROM on the message classes).
    ApiSpec(
        ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS,
        0,
        0,
        m.DescribeUserScramCredentialsRequest,
        m.DescribeUserScramCredentialsResponse,
    ),
    ApiSpec(
        ApiKey.ALTER_USER_SCRAM_CREDENTIALS,
        0,
        0,
        m.AlterUserScramCredentialsRequest,
        m.AlterUserScramCredentialsResponse,
    ),
)

API_SPECS: Final[Mapping[int, ApiSpec]] = MappingProxyType({s.api_key: s for s in _SPECS})
"""api_key → spec, for every API the codec handles."""

_OPTIONAL: Final = (
    ApiKey.DELETE_RECORDS,
    ApiKey.DESCRIBE_GROUPS,
    ApiKey.LIST_GROUPS,
    ApiKey.DESCRIBE_CONFIGS,
    ApiKey.ALTER_CONFIGS,
    ApiKey.INCREMENTAL_ALTER_CONFIGS,
    ApiKey.DESCRIBE_LOG_DIRS,
    ApiKey.OFFSET_FOR_LEADER_EPOCH,
    ApiKey.DESCRIBE_ACLS,
    ApiKey.CREATE_ACLS,
    ApiKey.DELETE_ACLS,
    ApiKey.SASL_HANDSHAKE,
    ApiKey.SASL_AUTHENTICATE,
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS,
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS,
    ApiKey.DELETE_GROUPS,
    ApiKey.OFFSET_DELETE,
    ApiKey.CREATE_PARTITIONS,
    ApiKey.DESCRIBE_CLIENT_QUOTAS,
    ApiKey.ALTER_CLIENT_QUOTAS,
)

ADVERTISED_API_KEYS: Final = tuple(k for k in API_SPECS if k not in _OPTIONAL)
"""What an ApiVersions response lists by default."""

_BY_REQUEST_TYPE: Final = {s.request_type: s for s in _SPECS}
_BY_RESPONSE_TYPE: Final = {s.response_type: s for s in _SPECS}

RequestBody = (
    m.ProduceRequest | m.FetchRequest | m.ListOffsetsRequest | m.MetadataRequest | m.OffsetCommitRequest
    | m.OffsetFetchRequest | m.FindCoordinatorRequest | m.JoinGroupRequest | m.HeartbeatRequest
    | m.LeaveGroupRequest | m.SyncGroupRequest | m.DescribeGroupsRequest | m.ListGroupsRequest
    | m.ApiVersionsRequest | m.CreateTopicsRequest | m.DeleteTopicsRequest | m.InitProducerIdRequest
    | m.DescribeConfigsRequest | m.DescribeLogDirsRequest | m.OffsetForLeaderEpochRequest
    | m.DescribeAclsRequest | m.CreateAclsRequest | m.DeleteAclsRequest
    | m.SaslHandshakeRequest | m.SaslAuthenticateRequest | m.DescribeUserScramCredentialsRequest
    | m.AlterUserScramCredentialsRequest | m.DeleteGroupsRequest | m.OffsetDeleteRequest
    | m.CreatePartitionsRequest | m.AlterConfigsRequest | m.IncrementalAlterConfigsRequest
    | m.DeleteRecordsRequest | m.DescribeClientQuotasRequest | m.AlterClientQuotasRequest
)  # fmt: skip
"""Any decoded request body; dispatch with ``match``/``isinstance``."""

ResponseBody = (
    m.ProduceResponse | m.FetchResponse | m.ListOffsetsResponse | m.MetadataResponse
    | m.OffsetCommitResponse | m.OffsetFetchResponse | m.FindCoordinatorResponse | m.JoinGroupResponse
    | m.HeartbeatResponse | m.LeaveGroupResponse | m.SyncGroupResponse | m.DescribeGroupsResponse
    | m.ListGroupsResponse | m.ApiVersionsResponse | m.CreateTopicsResponse | m.DeleteTopicsResponse
    | m.InitProducerIdResponse | m.DescribeConfigsResponse | m.DescribeLogDirsResponse
    | m.OffsetForLeaderEpochResponse | m.DescribeAclsResponse | m.CreateAclsResponse | m.DeleteAclsResponse
    | m.OffsetForLeaderEpochResponse | m.SaslHandshakeResponse | m.SaslAuthenticateResponse
    | m.DescribeUserScramCredentialsResponse | m.AlterUserScramCredentialsResponse
    | m.DeleteGroupsResponse | m.OffsetDeleteResponse
    | m.CreatePartitionsResponse | m.AlterConfigsResponse | m.IncrementalAlterConfigsResponse
    | m.DeleteRecordsResponse | m.DescribeClientQuotasResponse | m.AlterClientQuotasResponse
)  # fmt: skip
"""Any response body."""


def spec_for_request(request_type: type[Struct]) -> ApiSpec:
    spec = _BY_REQUEST_TYPE.get(request_type)
    if spec is None:
        raise TypeError(f"{request_type.__name__} is not a request message")
    return spec


def spec_for_response(response_type: type[Struct]) -> ApiSpec:
    spec = _BY_RESPONSE_TYPE.get(response_type)
    if spec is None:
        raise TypeError(f"{response_type.__name__} is not a response message")
    return spec


def expects_response(body: Struct) -> bool:
    """False only for Produce with acks=0, which gets no response at all (docs/protocol.md, "Framing, headers
    and flexible versions")."""
    return not (isinstance(body, m.ProduceRequest) and body.acks == 0)


def api_versions_entries(extra: Iterable[ApiKey] = ()) -> list[m.ApiVersionsResponseKey]:
    """The ApiVersions ``api_keys`` list: the default ones plus any ``extra`` supported APIs, by key."""
    keys = sorted({*ADVERTISED_API_KEYS, *extra})
    return [
        m.ApiVersionsResponseKey(
            api_key=k, min_version=API_SPECS[k].min_version, max_version=API_SPECS[k].max_version
        )
        for k in keys
    ]
