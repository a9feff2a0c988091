"""The synchronous admin client: the asyncio Admin run on a LoopThread, one call at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from logq.client.admin import (
    CREATION_WAIT_S,
    DeletePermission,
    GroupDescription,
    GroupListing,
    QueueDescription,
    RecordDeletionRow,
    ResetRow,
    ResetSpec,
    SettingDescription,
)
from logq.client.admin import (
    Admin as AsyncAdmin,
)
from logq.client.cluster import DEFAULT_BOOTSTRAP, QueueInfo, QueuePartition
from logq.client.loop_thread import LoopThread
from logq.client.security import SecuritySettings
from logq.client.settings import build_settings, takes_settings
from logq.quotas import QuotaEntity
from logq.security.acl import AclBinding, AclBindingFilter


@takes_settings(SecuritySettings, "Security settings (keyword arguments, as the producer's and consumer's):")
class Admin:
    """Queues, groups and users, for scripts: ``with Admin("127.0.0.1:9092") as admin:
    admin.list_queues()``."""

    def __init__(
        self,
        bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP,
        *,
        client_id: str = "logq-admin",
        request_timeout_ms: int = 30_000,
        **security: Any,
    ) -> None:
        build_settings(
            SecuritySettings, "Admin", security
        )  # a bad setting fails here, in the caller's thread
        self._loop = LoopThread("logq-admin")
        self._request_timeout_ms = request_timeout_ms
        self._timeout_s = request_timeout_ms / 1000 * 2 + 5  # a call may make a few requests
        try:
            self._admin = self._loop.run(
                _start(bootstrap, client_id, request_timeout_ms, security), timeout=self._timeout_s
            )
        except BaseException:
            self._loop.stop()
            raise

    def close(self) -> None:
        try:
            self._loop.run(self._admin.close(), timeout=self._timeout_s)
        finally:
            self._loop.stop()

    def __enter__(self) -> Admin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def create_queue(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = -1,
        settings: Mapping[str, str] | None = None,
        *,
        timeout_ms: int | None = None,
        wait_s: float = CREATION_WAIT_S,
        on_wait: Callable[[str], None] | None = None,
    ) -> QueueInfo:
        """See the asyncio ``Admin.create_queue``; ``on_wait`` is called on the client's loop thread."""
        answer_s = (timeout_ms if timeout_ms is not None else self._request_timeout_ms) / 1000
        return self._loop.run(
            self._admin.create_queue(
                name,
                partitions,
                replication_factor,
                settings,
                timeout_ms=timeout_ms,
                wait_s=wait_s,
                on_wait=on_wait,
            ),
            answer_s + wait_s + self._timeout_s,
        )

    def may_delete_queue(self, name: str) -> DeletePermission:
        """Whether the broker would delete ``name`` (and why not), without deleting anything."""
        return self._loop.run(self._admin.may_delete_queue(name), self._timeout_s)

    def delete_queue(self, name: str) -> None:
        self._loop.run(self._admin.delete_queue(name), self._timeout_s)

    def list_queues(self, *, include_internal: bool = False) -> list[QueueInfo]:
        return self._loop.run(self._admin.list_queues(include_internal=include_internal), self._timeout_s)

    def describe_queue(self, name: str) -> QueueDescription:
        return self._loop.run(self._admin.describe_queue(name), self._timeout_s)

    def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        *,
        validate_only: bool = False,
        timeout_ms: int | None = None,
    ) -> QueueInfo:
        """See the asyncio ``Admin.create_partitions``."""
        call = self._admin.create_partitions(
            name, total, assignments, validate_only=validate_only, timeout_ms=timeout_ms
        )
        return self._loop.run(call, self._timeout_s)

    def plan_record_deletion(
        self,
        queue: str,
        *,
        before: int | None = None,
        before_time_ms: int | None = None,
        partitions: Sequence[int] | None = None,
    ) -> list[RecordDeletionRow]:
        """See the asyncio ``Admin.plan_record_deletion``: a dry run."""
        return self._loop.run(
            self._admin.plan_record_deletion(
                queue, before=before, before_time_ms=before_time_ms, partitions=partitions
            ),
            self._timeout_s,
        )

    def delete_records(
        self, offsets: Mapping[QueuePartition, int], *, timeout_ms: int | None = None
    ) -> dict[QueuePartition, int]:
        """See the asyncio ``Admin.delete_records``."""
        wait_s = (self._request_timeout_ms if timeout_ms is None else timeout_ms) / 1000
        return self._loop.run(
            self._admin.delete_records(offsets, timeout_ms=timeout_ms), self._timeout_s + wait_s
        )

    def partitions_of(self, queue: str) -> list[QueuePartition]:
        return self._loop.run(self._admin.partitions_of(queue), self._timeout_s)

    def list_offsets(self, partitions: Sequence[QueuePartition], timestamp: int) -> dict[QueuePartition, int]:
        return self._loop.run(self._admin.list_offsets(partitions, timestamp), self._timeout_s)

    def list_users(self, names: Sequence[str] | None = None) -> dict[str, list[tuple[str, int]]]:
        return self._loop.run(self._admin.list_users(names), self._timeout_s)

    def set_user_password(self, user: str, password: str, **options: Any) -> None:
        """See the asyncio ``Admin.set_user_password``."""
        self._loop.run(self._admin.set_user_password(user, password, **options), self._timeout_s)

    def delete_user(self, user: str) -> None:
        self._loop.run(self._admin.delete_user(user), self._timeout_s)

    def list_client_quotas(
        self, *, user: str | None = None, client_id: str | None = None
    ) -> dict[QuotaEntity, dict[str, float]]:
        """See the asyncio ``Admin.list_client_quotas``."""
        return self._loop.run(self._admin.list_client_quotas(user=user, client_id=client_id), self._timeout_s)

    def alter_client_quotas(
        self, entity: QuotaEntity, changes: Mapping[str, float | None], *, validate_only: bool = False
    ) -> None:
        """See the asyncio ``Admin.alter_client_quotas``."""
        self._loop.run(
            self._admin.alter_client_quotas(entity, changes, validate_only=validate_only), self._timeout_s
        )

    def list_groups(self) -> list[GroupListing]:
        return self._loop.run(self._admin.list_groups(), self._timeout_s)

    def describe_group(self, group: str) -> GroupDescription:
        return self._loop.run(self._admin.describe_group(group), self._timeout_s)

    def committed_offsets(
        self, group: str, partitions: Sequence[QueuePartition] | None = None
    ) -> dict[QueuePartition, int]:
        return self._loop.run(self._admin.committed_offsets(group, partitions), self._timeout_s)

    def plan_offset_reset(
        self, group: str, partitions: Sequence[QueuePartition], spec: ResetSpec, *, now_ms: int
    ) -> list[ResetRow]:
        return self._loop.run(
            self._admin.plan_offset_reset(group, partitions, spec, now_ms=now_ms), self._timeout_s
        )

    def apply_offset_reset(self, group: str, rows: Sequence[ResetRow]) -> None:
        self._loop.run(self._admin.apply_offset_reset(group, rows), self._timeout_s)

    # group deletion: see the asyncio Admin's methods
    def check_group_deletable(self, group: str) -> dict[QueuePartition, int]:
        return self._loop.run(self._admin.check_group_deletable(group), self._timeout_s)

    def delete_group(self, group: str) -> None:
        self._loop.run(self._admin.delete_group(group), self._timeout_s)

    def check_offsets_deletable(self, group: str, queues: Iterable[str]) -> None:
        self._loop.run(self._admin.check_offsets_deletable(group, queues), self._timeout_s)

    def delete_offsets(self, group: str, partitions: Sequence[QueuePartition]) -> None:
        self._loop.run(self._admin.delete_offsets(group, partitions), self._timeout_s)

    @property
    def principal(self) -> str:
        """Who the brokers see this client as: User:<sasl_username> over SASL, else User:ANONYMOUS (on SSL
        with a client certificate, the brokers' rules name it)."""
        return self._admin.principal

    # --- settings after creation ----------------------------------------------------------------------

    def describe_queue_settings(self, name: str) -> list[SettingDescription]:
        return self._loop.run(self._admin.describe_queue_settings(name), self._timeout_s)

    def alter_queue_settings(
        self,
        name: str,
        set_settings: Mapping[str, str] | None = None,
        delete: Sequence[str] = (),
        *,
        validate_only: bool = False,
    ) -> None:
        self._loop.run(
            self._admin.alter_queue_settings(name, set_settings, delete, validate_only=validate_only),
            self._timeout_s,
        )

    def describe_broker_settings(self, broker_id: int | None = None) -> list[SettingDescription]:
        return self._loop.run(self._admin.describe_broker_settings(broker_id), self._timeout_s)

    def alter_broker_settings(
        self,
        set_settings: Mapping[str, str] | None = None,
        delete: Sequence[str] = (),
        *,
        broker_id: int | None = None,
        validate_only: bool = False,
    ) -> None:
        self._loop.run(
            self._admin.alter_broker_settings(
                set_settings, delete, broker_id=broker_id, validate_only=validate_only
            ),
            self._timeout_s,
        )

    def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        self._loop.run(self._admin.create_acls(bindings), self._timeout_s)

    def describe_acls(self, acl_filter: AclBindingFilter | None = None) -> list[AclBinding]:
        return self._loop.run(self._admin.describe_acls(acl_filter), self._timeout_s)

    def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[AclBinding]:
        return self._loop.run(self._admin.delete_acls(filters), self._timeout_s)


async def _start(
    bootstrap: str | Sequence[str], client_id: str, request_timeout_ms: int, security: Mapping[str, Any]
) -> AsyncAdmin:
    admin = AsyncAdmin(bootstrap, client_id=client_id, request_timeout_ms=request_timeout_ms, **security)
    try:
        await admin.start()
    except BaseException:
        await admin.close()
        raise
    return admin
