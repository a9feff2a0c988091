"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51): users over the wire, as Kafka's
kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[...]' and the AdminClient use them.

The client sends the salt and the SaltedPassword (PBKDF2 done on its side), so use a TLS listener. Errors
are per user, as Kafka's: an unknown mechanism UNSUPPORTED_SASL_MECHANISM, iterations outside 4096-16384
or an empty name or salt UNACCEPTABLE_CREDENTIAL, a (user, mechanism) listed twice DUPLICATE_RESOURCE,
deleting or describing what does not exist RESOURCE_NOT_FOUND. As in Kafka, describing needs DESCRIBE on
the cluster and altering ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for the whole request).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.broker.metrics import BrokerMetrics
from logq.broker.session import current_session
from logq.coordinator import Coordinator
from logq.coordinator.credentials import check_user_name
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import CLUSTER_NAME, AclOperation, ResourceType
from logq.security.scram import MAX_ITERATIONS, MIN_ITERATIONS, credential_from_salted

log = logging.getLogger(__name__)

MECHANISM_CODES = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}  # Kafka's ScramMechanism types
CODES_BY_MECHANISM = {name: code for code, name in MECHANISM_CODES.items()}
_CLUSTER = (ResourceType.CLUSTER, CLUSTER_NAME)


class _RefusedError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class UserHandlers:
    def __init__(self, coordinator: Coordinator, metrics: BrokerMetrics, auth: RequestAuthorizer) -> None:
        self._coordinator = coordinator
        self._metrics = metrics
        self._auth = auth
        self.by_type: dict[type, Handler] = {
            m.DescribeUserScramCredentialsRequest: self.describe,
            m.AlterUserScramCredentialsRequest: self.alter,
        }

    async def describe(
        self, header: RequestHeader, req: m.DescribeUserScramCredentialsRequest
    ) -> m.DescribeUserScramCredentialsResponse:
        if not self._auth.allows_cluster(AclOperation.DESCRIBE):
            return m.DescribeUserScramCredentialsResponse(
                error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                error_message=self._auth.refusal(AclOperation.DESCRIBE, *_CLUSTER),
                results=[],
            )
        users = self._coordinator.credentials()
        wanted = sorted(users) if not req.users else [u.name for u in req.users]
        counts = Counter(wanted)
        results = []
        for name in dict.fromkeys(wanted):
            result = m.DescribeUserScramCredentialsResult(user=name, error_code=ErrorCode.NONE)
            if counts[name] > 1:
                result.error_code = ErrorCode.DUPLICATE_RESOURCE
                result.error_message = f"user {name!r} was listed more than once"
            elif name not in users:
                result.error_code = ErrorCode.RESOURCE_NOT_FOUND
                result.error_message = f"attempt to describe a user credential that does not exist: {name!r}"
            else:
                result.credential_infos = [
                    m.CredentialInfo(mechanism=CODES_BY_MECHANISM[mech], iterations=cred.iterations)
                    for mech, cred in sorted(users[name].items())
                ]
            results.append(result)
        return m.DescribeUserScramCredentialsResponse(error_code=ErrorCode.NONE, results=results)

    async def alter(
        self, header: RequestHeader, req: m.AlterUserScramCredentialsRequest
    ) -> m.AlterUserScramCredentialsResponse:
        if not self._auth.allows_cluster(AclOperation.ALTER):
            message = self._auth.refusal(AclOperation.ALTER, *_CLUSTER)
            names = dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions])
            return m.AlterUserScramCredentialsResponse(
                results=[
                    m.AlterUserScramCredentialsResult(
                        user=name, error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED, error_message=message
                    )
                    for name in names
                ]
            )
        pairs = Counter(
            [(d.name, d.mechanism) for d in req.deletions] + [(u.name, u.mechanism) for u in req.upsertions]
        )
        order = list(dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions]))
        failed: dict[str, _RefusedError] = {}
        for (name, mechanism), count in pairs.items():
            if count > 1 and name not in failed:
                failed[name] = _RefusedError(
                    ErrorCode.DUPLICATE_RESOURCE, f"a credential of user {name!r} is changed more than once"
                )
            if mechanism not in MECHANISM_CODES and name not in failed:
                failed[name] = _RefusedError(
                    ErrorCode.UNSUPPORTED_SASL_MECHANISM, f"unknown SCRAM mechanism {mechanism}"
                )
        for upsertion in req.upsertions:
            problem = _check_upsertion(upsertion)
            if problem is not None and upsertion.name not in failed:
                failed[upsertion.name] = problem
        for deletion in req.deletions:
            if deletion.name not in failed:
                await self._apply(failed, deletion.name, self._delete(deletion))
        for upsertion in req.upsertions:
            if upsertion.name not in failed:
                await self._apply(failed, upsertion.name, self._upsert(upsertion))
        results = []
        for name in order:
            refused = failed.get(name)
            results.append(
                m.AlterUserScramCredentialsResult(
                    user=name,
                    error_code=refused.code if refused else ErrorCode.NONE,
                    error_message=str(refused) if refused else None,
                )
            )
            if refused is not None:
                self._metrics.errors.labels("AlterUserScramCredentials", str(int(refused.code))).inc()
        return m.AlterUserScramCredentialsResponse(results=results)

    async def _apply(self, failed: dict[str, _RefusedError], name: str, change: Awaitable[None]) -> None:
        try:
            await change
        except LogqError as exc:
            failed[name] = _RefusedError(exc.code, str(exc))

    async def _delete(self, deletion: m.ScramCredentialDeletion) -> None:
        mechanism = MECHANISM_CODES[deletion.mechanism]
        await self._coordinator.delete_credential(deletion.name, mechanism)
        log.info(
            "%s deleted the %s credential of user %r", current_session().principal, mechanism, deletion.name
        )

    async def _upsert(self, upsertion: m.ScramCredentialUpsertion) -> None:
        mechanism = MECHANISM_CODES[upsertion.mechanism]
        credential = credential_from_salted(
            mechanism, upsertion.salted_password, upsertion.salt, upsertion.iterations
        )
        await self._coordinator.upsert_credential(upsertion.name, credential)
        log.info(
            "%s set the %s credential of user %r", current_session().principal, mechanism, upsertion.name
        )


def _check_upsertion(upsertion: m.ScramCredentialUpsertion) -> _RefusedError | None:
    try:
        check_user_name(upsertion.name)
    except ValueError as exc:
        return _RefusedError(ErrorCode.UNACCEPTABLE_CREDENTIAL, str(exc))
    if not MIN_ITERATIONS <= upsertion.iterations <= MAX_ITERATIONS:
        return _RefusedError(
            ErrorCode.UNACCEPTABLE_CREDENTIAL,
            f"iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {upsertion.iterations}",
        )
    if not upsertion.salt or not upsertion.salted_password:
        return _RefusedError(
            ErrorCode.UNACCEPTABLE_CREDENTIAL, "the salt and the salted password must not be empty"
        )
    return None
