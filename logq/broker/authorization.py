"""What the connection being served may do: its session's principal and host, asked of the authorizer.

Handlers call ``allows(operation, resource_type, name)`` before they look at the resource (authorization
before existence, so a refused client learns nothing of what exists). With no authorizer configured
(``authorizer.enable`` false) everything is allowed and the authorized-operations bit fields list every
operation: the broker behaves exactly as without ACLs. The decision itself, and its cache, are in
``logq.security.authorizer``; the ACLs come from the coordinator, which calls ``update`` on every change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from logq.broker.session import current_session
from logq.security.acl import (
    ANONYMOUS,
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    AclBinding,
    AclOperation,
    ResourceType,
    operations_bitfield,
)
from logq.security.authorizer import Authorizer

log = logging.getLogger(__name__)


class RequestAuthorizer:
    def __init__(self, authorizer: Authorizer | None = None) -> None:
        self._authorizer = authorizer
        self.enabled = authorizer is not None

    @classmethod
    def from_settings(
        cls, enabled: bool, super_users: Iterable[str], allow_everyone_if_no_acl_found: bool
    ) -> RequestAuthorizer:
        if not enabled:
            return cls(None)
        supers = frozenset(super_users)
        if ANONYMOUS in supers:
            log.warning(
                "super.users lists %s: every unauthenticated client is a super user, and the ACLs "
                "decide nothing for them",
                ANONYMOUS,
            )
        return cls(
            Authorizer(super_users=supers, allow_everyone_if_no_acl_found=allow_everyone_if_no_acl_found)
        )

    def update(self, bindings: frozenset[AclBinding]) -> None:
        """The coordinator's new ACL set (its listener)."""
        if self._authorizer is not None:
            self._authorizer.update(bindings)

    @property
    def principal(self) -> str:
        return current_session().principal

    def allows(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        authorizer = self._authorizer
        if authorizer is None:
            return True
        session = current_session()
        return authorizer.authorize(session.principal, session.host, operation, resource_type, name)

    def allows_cluster(self, operation: AclOperation) -> bool:
        return self.allows(operation, ResourceType.CLUSTER, CLUSTER_NAME)

    def may_create_queue(self, name: str) -> bool:
        """CREATE on the cluster, or on the queue itself (Kafka's two ways)."""
        return self.allows_cluster(AclOperation.CREATE) or self.allows(
            AclOperation.CREATE, ResourceType.TOPIC, name
        )

    def allows_some(self, operation: AclOperation, resource_type: ResourceType) -> bool:
        """``operation`` on at least one resource of the type (InitProducerId: WRITE on any queue)."""
        authorizer = self._authorizer
        if authorizer is None:
            return True
        session = current_session()
        return authorizer.authorize_by_type(session.principal, session.host, operation, resource_type)

    def operations(self, resource_type: ResourceType, name: str) -> int:
        """The KIP-430 authorized-operations bit field of a resource (every supported one without an
        authorizer)."""
        authorizer = self._authorizer
        if authorizer is None:
            return operations_bitfield(SUPPORTED_OPERATIONS[resource_type])
        session = current_session()
        return authorizer.authorized_operations(session.principal, session.host, resource_type, name)

    def refusal(self, operation: AclOperation, resource_type: ResourceType, name: str) -> str:
        """The one-line reason sent where the response has room for a message."""
        return f"{self.principal} may not {operation.name} {resource_type.name}:{name}"
