"""Every ZooKeeper call of logq: the only module that imports kazoo.

``ZkStore`` is synchronous and blocking: the coordinator calls it from worker threads
(``asyncio.to_thread``), never from the event loop and never from a kazoo thread. kazoo calls back on
its own threads: ``on_state`` (from the connection thread) and ``on_watch`` (from the callback thread)
must only hand the event over: they are never allowed to call ZooKeeper (docs/reliability.md,
"ZooKeeper pitfalls", 1).

What it guards against (docs/reliability.md, "ZooKeeper pitfalls"):
- a stale ephemeral (``/brokers/ids/N``, ``/controller``) left by one of *our* earlier sessions is
  deleted and re-created; one owned by another live session is waited for, then refused;
- a ``create`` retried after a ConnectionLoss may have succeeded: the node is read back and compared;
- every controller write is one transaction that starts with ``check(/controller_epoch, version)``.

ZooKeeper ACLs (``set_acl``, Kafka's ``zookeeper.set.acl``): the client presents its digest credentials
(``zk_auth``) and every znode it creates, the chroot and the persistent parents included, gets ACLs:
all permissions for that digest user, and READ for the world unless ``zk_layout.is_secret`` says the
znode is secret. Nobody else may create, change or delete anything. ``start`` checks first that the
credentials may write under the chroot, so a broker with wrong credentials stops with one line instead
of failing later; a refusal met anyway is a ZooKeeperAccessError.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
    ZookeeperError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, Permissions, make_digest_acl_credential

from logq.coordinator.credentials import encode_user
from logq.coordinator.interface import BrokerInfo
from logq.coordinator.zk_auth import DIGEST_ENV, ZkDigest
from logq.coordinator.zk_layout import (
    ACL_CHANGE_EXPIRY_MS,
    ACL_CHANGE_NODE,
    ACL_CHANGE_ROOTS,
    BROKER_CONFIGS,
    BROKER_IDS,
    CLIENTS,
    CLUSTER_ID,
    CONTROLLED_SHUTDOWN,
    CONTROLLER,
    CONTROLLER_EPOCH,
    DELETE_TOPICS,
    PERSISTENT_PATHS,
    PRODUCER_ID_BLOCK,
    SASL_SECRET,
    TOP_LEVEL_PATHS,
    TOPICS,
    USERS,
    BrokerIdInUseError,
    BrokerRecord,
    ControllerContext,
    ControllerFencedError,
    ControllerView,
    Op,
    ReadRequest,
    ReadResult,
    StaleVersionError,
    StateRecord,
    TopicRecord,
    ZooKeeperAccessError,
    ZooKeeperUnavailableError,
    acl_change_root,
    acl_change_sequence,
    acl_path,
    acl_resource_type,
    acl_root,
    ancestors,
    broker_config_path,
    broker_path,
    decode_acl_change,
    decode_acls,
    decode_broker,
    decode_cluster_id,
    decode_controller,
    decode_entity_config,
    decode_epoch,
    decode_producer_block_end,
    decode_state,
    decode_topic,
    decode_user_config,
    delete_request_path,
    encode_acl_change,
    encode_acls,
    encode_broker,
    encode_cluster_id,
    encode_controller,
    encode_entity_config,
    encode_epoch,
    encode_producer_block,
    encode_user_config,
    is_secret,
    new_cluster_id,
    partition_path,
    partitions_path,
    quota_config_path,
    quota_text,
    quota_values,
    shutdown_path,
    split_connect,
    state_path,
    topic_path,
    user_of,
    user_path,
    with_added_partitions,
    with_topic_settings,
)
from logq.errors import CoordinationError, QueueExistsError, UnknownQueueError
from logq.queues import collides
from logq.quotas import QuotaEntity
from logq.security.acl import AclBinding, PatternType, ResourcePattern
from logq.security.scram import MECHANISMS, ScramCredential

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# Errors after which the same call may simply be made again once connected.
_TRANSIENT = (ConnectionLoss, SessionExpiredError, ConnectionClosedError, OperationTimeoutError)
MAX_OPS_PER_TRANSACTION = 200  # keeps a multi well under jute.maxbuffer (1 MiB)
MAX_ACL_WRITE_TRIES = 10  # conditional ACL writes lost to concurrent writers before giving up (Kafka's)
_WORLD = Id("world", "anyone")
# What a broker does under its chroot: read, and create, change and delete znodes.
_WRITES = Permissions.WRITE | Permissions.CREATE | Permissions.DELETE
_NEEDED = Permissions.READ | _WRITES
_NOAUTH = (
    "ZooKeeper refused it (NOAUTH): the znodes' ACLs do not allow these credentials; give the "
    "cluster's ZooKeeper digest credentials (docs/security.md)"
)


def _unavailable_on_disconnect(fn: Callable[P, T]) -> Callable[P, T]:
    """Report a lost connection or session as ZooKeeperUnavailableError (the caller retries)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except _TRANSIENT as exc:
            raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc!r}") from None
        except KazooTimeoutError:
            raise ZooKeeperUnavailableError("ZooKeeper did not answer in time") from None
        except NoAuthError:
            raise ZooKeeperAccessError(f"{fn.__name__}: {_NOAUTH}") from None

    return wrapper


class ZkStore:
    def __init__(
        self,
        connect: str,
        *,
        session_timeout_ms: int,
        on_state: Callable[[str], None],
        on_watch: Callable[[str], None],
        digest: ZkDigest | None = None,
        set_acl: bool = False,
        warn_open: bool = True,
    ) -> None:
        hosts, self.chroot = split_connect(connect)
        if set_acl and digest is None:
            raise ValueError("ZooKeeper ACLs (set_acl) need digest credentials")
        self._hosts = hosts
        self._on_state = on_state
        self._on_watch = on_watch
        self._digest = digest
        self._warn_open = warn_open  # warn when set_acl meets a chroot made without ACLs
        self._connected = threading.Event()
        self._sessions: set[int] = set()  # every session id this store has had
        self._owner_acl: list[ACL] | None = None  # None: znodes are created open (ZooKeeper's default)
        self._public_acl: list[ACL] | None = None
        if set_acl and digest is not None:
            owner = ACL(Permissions.ALL, self._digest_id(digest))
            self._owner_acl = [owner]
            self._public_acl = [owner, ACL(Permissions.READ, _WORLD)]
        self._client: Any = KazooClient(
            hosts=hosts,
            timeout=session_timeout_ms / 1000,
            # Reconnect forever but never wait more than 1 s between attempts (pitfall 6).
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
            # kazoo sends these again on every reconnection.
            auth_data=[("digest", digest.auth)] if digest is not None else None,
        )
        self._client.add_listener(self._state_listener)

    # --- session ---------------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        try:
            self._client.start(timeout=timeout)
        except KazooTimeoutError:
            raise ZooKeeperUnavailableError(f"cannot connect to ZooKeeper at {self.hosts}") from None
        try:
            for path in ancestors(self.chroot):  # the chroot and its parents: not secret
                self._create_missing(path, self._public_acl)
            self._check_access(self.chroot or "/")
            if self.chroot:
                self._client.chroot = self.chroot  # only now: kazoo warns about a missing chroot
            for persistent in (*PERSISTENT_PATHS, CONTROLLER_EPOCH):
                self._ensure(persistent)
        except NoAuthError:
            self.stop()
            raise ZooKeeperAccessError(f"setting up {self.hosts}: {_NOAUTH}") from None
        except ZooKeeperAccessError:
            self.stop()
            raise
        except (KazooException, ZookeeperError) as exc:
            self.stop()
            raise ZooKeeperUnavailableError(f"ZooKeeper setup failed: {exc!r}") from exc

    # --- ACLs ----------------------------------------------------------------------------------------

    @staticmethod
    def _digest_id(digest: ZkDigest) -> Id:
        return Id("digest", make_digest_acl_credential(digest.user, digest.password))

    def acl_for(self, path: str) -> list[ACL] | None:
        """The ACLs a znode at ``path`` (under the chroot) is created with; None: ZooKeeper's open ACL."""
        return self._owner_acl if is_secret(path) else self._public_acl

    def _create_missing(self, path: str, acl: list[ACL] | None) -> None:
        if self._client.exists(path) is None:
            with contextlib.suppress(NodeExistsError):
                self._client.create(path, b"", acl=acl)

    def _ensure(self, path: str) -> None:
        """Create ``path`` and its missing parents, each with its own ACLs (kazoo's ``ensure_path``
        would give the parents the leaf's)."""
        for each in ancestors(path):
            self._create_missing(each, self.acl_for(each))

    def _create(self, path: str, value: bytes = b"", *, makepath: bool = False, **options: Any) -> Any:
        """``create`` with the ACLs ``path`` gets; ``makepath`` creates missing parents (with theirs)."""
        try:
            return self._client.create(path, value, acl=self.acl_for(path), **options)
        except NoNodeError:
            if not makepath:
                raise
        self._ensure(path.rsplit("/", 1)[0])
        return self._client.create(path, value, acl=self.acl_for(path), **options)

    def _check_access(self, path: str) -> None:
        """ZooKeeperAccessError (one line) unless these credentials may read and write under ``path``
        (the chroot, full path). Digest authentication itself never fails in ZooKeeper: wrong
        credentials only show as ACLs that do not name them. ACLs of other schemes (ip, sasl, x509)
        cannot be judged from here and are left to ZooKeeper."""
        acls, _ = self._client.get_acls(path)
        if any(acl.id.scheme not in ("world", "digest") for acl in acls):
            return
        ours = {_WORLD} | ({self._digest_id(self._digest)} if self._digest is not None else set())
        granted = 0
        for acl in acls:
            if acl.id in ours:
                granted |= acl.perms
        if granted & _NEEDED == _NEEDED:
            open_to_all = any(a.id == _WORLD and a.perms & _WRITES for a in acls)
            # Without a chroot the root is ZooKeeper's, not logq's: it stays open, and that is no news.
            if self._owner_acl is not None and open_to_all and self._warn_open and self.chroot:
                log.warning(
                    "ZooKeeper ACLs are on, but %s is open to everyone (made without ACLs): new znodes "
                    "get ACLs, existing ones stay open until 'logq security zk-acls --apply' sets theirs",
                    path,
                )  # fmt: skip
            return
        users = sorted({acl.id.id.split(":", 1)[0] for acl in acls if acl.id.scheme == "digest"})
        owners = ", ".join(repr(u) for u in users) or "nobody"
        if self._digest is None:
            raise ZooKeeperAccessError(
                f"ZooKeeper {self._hosts}{path} is locked by ACLs to digest user {owners}, and no "
                f"ZooKeeper credentials were given (a digest file, or ${DIGEST_ENV})"
            )
        if self._digest.user in users:
            raise ZooKeeperAccessError(
                f"ZooKeeper {self._hosts}{path} refuses digest user {self._digest.user!r}: wrong password"
            )
        raise ZooKeeperAccessError(
            f"ZooKeeper {self._hosts}{path} is locked by ACLs to digest user {owners}, not "
            f"{self._digest.user!r}"
        )

    def open_znodes(self) -> list[str]:
        """Every znode under the chroot (the chroot itself as ``/``) whose ACLs are not those this store
        gives it: what ``apply_acls`` would change (a cluster made before ACLs were turned on)."""
        return [path for path, _ in self._walk_acls()]

    def apply_acls(self) -> list[str]:
        """Give every znode under the chroot, and the chroot itself, the ACLs it would be created with
        (Kafka's zookeeper-security-migration); returns the paths changed. Needs ``set_acl``."""
        if self._public_acl is None:
            raise ValueError("apply_acls needs set_acl and digest credentials")
        changed = []
        for path, wanted in self._walk_acls():
            with contextlib.suppress(NoNodeError):  # an ephemeral gone meanwhile
                self._client.set_acls(path, wanted)
                changed.append(path)
        return changed

    def _walk_acls(self) -> Iterator[tuple[str, list[ACL]]]:
        """(path, the ACLs it should have) for each znode under the chroot whose ACLs differ."""
        # Without a chroot only logq's own top-level znodes: the rest of the tree is not logq's to lock.
        todo = ["/"] if self.chroot else sorted(TOP_LEVEL_PATHS, reverse=True)
        while todo:
            path = todo.pop()
            wanted = (self._public_acl if path == "/" else self.acl_for(path)) or OPEN_ACL_UNSAFE
            try:
                acls, _ = self._client.get_acls(path)
                children = self._client.get_children(path)
            except NoNodeError:
                continue
            if sorted(acls) != sorted(wanted):
                yield path, wanted
            prefix = "" if path == "/" else path
            todo.extend(f"{prefix}/{child}" for child in sorted(children, reverse=True))

    def stop(self) -> None:
        """Close the session (its ephemerals go at once) and the client's threads."""
        self._client.remove_listener(self._state_listener)
        try:
            self._client.stop()
        finally:
            self._client.close()

    def _state_listener(self, state: str) -> None:
        # kazoo's connection thread: no ZooKeeper call here (pitfall 1).
        if state == KazooState.CONNECTED:
            client_id = self._client.client_id
            if client_id is not None:
                self._sessions.add(int(client_id[0]))
            self._connected.set()
        else:
            self._connected.clear()
        self._on_state(str(state).lower())

    def _watch(self, event: Any) -> None:
        # kazoo's callback thread. A NONE-type event without a path means kazoo dropped every watch
        # (after a disconnection); the coordinator re-reads everything when it reconnects.
        if event.path:
            self._on_watch(str(event.path))

    @property
    def session_id(self) -> int | None:
        client_id = self._client.client_id
        return None if client_id is None else int(client_id[0])

    def session_credentials(self) -> tuple[int, bytes] | None:
        """(session id, password): what a second client needs to take over and end the session."""
        client_id = self._client.client_id
        return None if client_id is None else (int(client_id[0]), bytes(client_id[1]))

    def end_session(self) -> None:
        """End this store's session server-side (fault drills): a second client takes the session over
        and closes it, so this client sees it expire exactly as after a long pause or partition."""
        credentials = self.session_credentials()
        if credentials is None:
            return
        twin = KazooClient(hosts=self._hosts, client_id=credentials, timeout=10.0)
        try:
            twin.start(timeout=10)
            twin.stop()
        finally:
            twin.close()

    @property
    def negotiated_timeout_ms(self) -> int:
        return int(self._client._session_timeout)

    @property
    def hosts(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self._client.hosts) + self.chroot

    def _ours_from_before(self, owner: int) -> bool:
        return owner != 0 and owner in self._sessions and owner != self.session_id

    def _retrying(self, fn: Callable[[], T], deadline_s: float) -> T:
        """Call ``fn`` until it does not fail with a transient connection error, up to ``deadline_s``."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                return fn()
            except _TRANSIENT as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc!r}") from None
                self._connected.wait(min(remaining, 1.0))
            except KazooTimeoutError:
                raise ZooKeeperUnavailableError("ZooKeeper did not answer in time") from None
            except NoAuthError:
                raise ZooKeeperAccessError(_NOAUTH) from None

    # --- reads (each sets a watch that reports to on_watch) --------------------------------------

    @_unavailable_on_disconnect
    def read(
        self, request: ReadRequest, known: Iterable[str], acl_seen: Mapping[str, int] | None = None
    ) -> ReadResult:
        """Read what ``request`` asks for (``known``: the topics the caller has; ``acl_seen``: per ACL
        change root, the newest notification already acted on); a topic read also reads all its
        partition states."""
        have = set(known)
        out = ReadResult(everything=request.everything)
        self._read_acl_part(request, acl_seen or {}, out)
        # Queues first, brokers after: a queue's creator saw its replicas registered before creating
        # it, so the broker list read here includes them (the controller then puts them in the ISR).
        if request.everything or request.deletes:
            out.deletes = set(self._client.get_children(DELETE_TOPICS, watch=self._watch))
        if request.everything or request.shutdowns:
            children = self._client.get_children(CONTROLLED_SHUTDOWN, watch=self._watch)
            out.shutdowns = {int(c) for c in children if c.isdigit()}
        topics = set(request.topics)
        if request.everything or request.topic_names:
            out.topic_names = set(self._client.get_children(TOPICS, watch=self._watch))
            topics |= out.topic_names if request.everything else out.topic_names - have
            for gone in have - out.topic_names:
                out.topics[gone] = None
        out.topics.update(self._read_topics(sorted(topics)))
        states = {key for key in request.states if key[0] not in out.topics}
        for name, record in out.topics.items():
            if record is not None:
                states.update((name, p) for p in range(len(record.replicas)))
        out.states = self._read_states(sorted(states))
        if request.everything or request.brokers:
            out.brokers = self._read_brokers()
        if request.everything or request.controller:
            out.controller = self._read_controller()
        users = set(request.users)
        if request.everything or request.user_names:
            out.user_names = {user_of(c) for c in self._client.get_children(USERS, watch=self._watch)}
            users |= out.user_names
        out.users = self._read_users(sorted(users))
        entities = set(request.broker_configs)
        if request.everything or request.broker_config_names:
            out.broker_config_names = set(self._client.get_children(BROKER_CONFIGS, watch=self._watch))
            entities |= out.broker_config_names
        out.broker_configs = self._read_broker_configs(sorted(entities))
        if request.everything or request.quotas:
            out.quotas = self._read_quotas()
        return out

    def _read_quotas(self) -> dict[QuotaEntity, dict[str, float]]:
        """Every quota entity, watching every level (a change anywhere marks them all to be read)."""
        paths: list[str] = []
        for user in self._client.get_children(USERS, watch=self._watch):
            paths.append(f"{USERS}/{user}")
            try:
                clients = self._client.get_children(f"{USERS}/{user}/clients", watch=self._watch)
            except NoNodeError:
                # watch for its creation: a user's first client-id quota
                self._client.exists(f"{USERS}/{user}/clients", watch=self._watch)
                clients = []
            paths.extend(f"{USERS}/{user}/clients/{c}" for c in clients)
        paths.extend(f"{CLIENTS}/{c}" for c in self._client.get_children(CLIENTS, watch=self._watch))
        pending = [(p, self._client.get_async(p, watch=self._watch)) for p in paths]
        out: dict[QuotaEntity, dict[str, float]] = {}
        for path, result in pending:
            try:
                data, _ = result.get()
            except NoNodeError:
                continue
            values = quota_values(decode_entity_config(path, data))
            if values:
                out[QuotaEntity.from_path(path.removeprefix("/config/"))] = values
        return out

    def _read_broker_configs(self, entities: Sequence[str]) -> dict[str, dict[str, str] | None]:
        pending = [(e, self._client.get_async(broker_config_path(e), watch=self._watch)) for e in entities]
        out: dict[str, dict[str, str] | None] = {}
        for entity, result in pending:
            try:
                data, _ = result.get()
            except NoNodeError:
                out[entity] = None
                continue
            out[entity] = decode_entity_config(broker_config_path(entity), data)
        return out

    def _read_users(self, users: Sequence[str]) -> dict[str, dict[str, ScramCredential] | None]:
        pending = [(u, self._client.get_async(user_path(u), watch=self._watch)) for u in users]
        out: dict[str, dict[str, ScramCredential] | None] = {}
        for user, result in pending:
            try:
                data, _ = result.get()
            except NoNodeError:
                out[user] = None
                continue
            out[user] = decode_user_config(user, data)
        return out

    def _read_acl_part(self, request: ReadRequest, seen: Mapping[str, int], out: ReadResult) -> None:
        """Everything: the newest notification of each change root (setting the watches), then every
        ACL znode, so a change made after the listing is read again later, never missed. Otherwise:
        the resources named by the notifications newer than ``seen``, and those asked for."""
        if request.everything:
            out.acl_change_seen = {
                root: max(
                    map(acl_change_sequence, self._client.get_children(root, watch=self._watch)), default=-1
                )
                for root in ACL_CHANGE_ROOTS
            }
            out.all_acls = self._read_all_acls()
            return
        patterns = set(request.acl_patterns)
        if request.acl_changes:
            newest = dict(seen)
            for root in ACL_CHANGE_ROOTS:
                children = self._client.get_children(root, watch=self._watch)
                fresh = sorted(
                    (acl_change_sequence(c), c)
                    for c in children
                    if acl_change_sequence(c) > seen.get(root, -1)
                )
                pending = [(seq, self._client.get_async(f"{root}/{child}")) for seq, child in fresh]
                for seq, result in pending:
                    newest[root] = max(newest.get(root, -1), seq)
                    try:
                        data, _ = result.get()
                    except NoNodeError:
                        continue  # purged: older than the expiry, acted on long ago
                    pattern = decode_acl_change(root, data)
                    if pattern is not None:
                        patterns.add(pattern)
            out.acl_change_seen = newest
        out.acls = self._read_acl_resources(sorted(patterns))

    def _read_all_acls(self) -> dict[ResourcePattern, frozenset[AclBinding]]:
        patterns = []
        for pattern_type in (PatternType.LITERAL, PatternType.PREFIXED):
            root = acl_root(pattern_type)
            for type_name in self._client.get_children(root):
                resource_type = acl_resource_type(type_name)
                if resource_type is None:
                    continue
                for name in self._client.get_children(f"{root}/{type_name}"):
                    patterns.append(ResourcePattern(resource_type, name, pattern_type))
        return {p: acls for p, acls in self._read_acl_resources(patterns).items() if acls}

    def _read_acl_resources(
        self, patterns: Sequence[ResourcePattern]
    ) -> dict[ResourcePattern, frozenset[AclBinding]]:
        pending = [(p, self._client.get_async(acl_path(p))) for p in patterns]
        out: dict[ResourcePattern, frozenset[AclBinding]] = {}
        for pattern, result in pending:
            try:
                data, _ = result.get()
            except NoNodeError:
                out[pattern] = frozenset()
                continue
            try:
                out[pattern] = decode_acls(pattern, data)
            except CoordinationError as exc:  # not ours to repair; a bad znode must not stop the rest
                log.warning("ignoring the ACLs of %s: %s", pattern, exc)
                out[pattern] = frozenset()
        return out

    # --- ACL writes (any broker) ---------------------------------------------------------------------

    def update_acls(
        self,
        pattern: ResourcePattern,
        change: Callable[[frozenset[AclBinding]], frozenset[AclBinding]],
        deadline_s: float,
    ) -> frozenset[AclBinding]:
        """Replace the ACLs of one resource by ``change(current)``: a write conditional on the version
        read (retried on a conflict), then a change notification so every broker re-reads it. The
        znode goes when no ACL is left. Returns the ACLs written."""
        path = acl_path(pattern)
        wrote = False

        def attempt() -> frozenset[AclBinding]:
            nonlocal wrote
            for _ in range(MAX_ACL_WRITE_TRIES):
                try:
                    data, stat = self._client.get(path)
                    current, version = decode_acls(pattern, data), stat.version
                except NoNodeError:
                    current, version = frozenset(), None
                new = change(current)
                if new == current:
                    if wrote:  # a write retried after a ConnectionLoss had succeeded: still announce it
                        self._announce_acl_change(pattern)
                    return current
                try:
                    wrote = True
                    entries = [b.entry for b in new]
                    if version is None:
                        self._create(path, encode_acls(entries), makepath=True)
                    elif not new:
                        self._client.delete(path, version=version)
                    else:
                        self._client.set(path, encode_acls(entries), version=version)
                except (BadVersionError, NodeExistsError, NoNodeError):
                    wrote = False
                    continue  # another broker changed it meanwhile: read again
                self._announce_acl_change(pattern)
                return new
            raise CoordinationError(
                f"the ACLs of {pattern} changed under {MAX_ACL_WRITE_TRIES} attempts in a row; try again"
            )

        return self._retrying(attempt, deadline_s)

    def _announce_acl_change(self, pattern: ResourcePattern) -> None:
        root = acl_change_root(pattern.pattern_type)
        self._create(f"{root}/{ACL_CHANGE_NODE}", encode_acl_change(pattern), sequence=True)
        self._purge_acl_changes(root)

    def _purge_acl_changes(self, root: str) -> None:
        """Delete the notifications older than ACL_CHANGE_EXPIRY_MS (every broker acted on them)."""
        cutoff = time.time() * 1000 - ACL_CHANGE_EXPIRY_MS
        children = self._client.get_children(root)
        stats = [(c, self._client.exists_async(f"{root}/{c}")) for c in children]
        for child, result in stats:
            stat = result.get()
            if stat is not None and stat.ctime < cutoff:
                with contextlib.suppress(NoNodeError):  # another broker purged it first
                    self._client.delete(f"{root}/{child}")

    @_unavailable_on_disconnect
    def announce_shutdown(self, broker_id: int) -> None:
        """Ask the controller to move this broker's leaderships away (an ephemeral request: it ends
        with the session, so a broker that dies meanwhile leaves nothing behind)."""
        with contextlib.suppress(NodeExistsError):
            self._create(shutdown_path(broker_id), b"", ephemeral=True, makepath=True)

    @_unavailable_on_disconnect
    def live_broker_ids(self) -> list[int]:
        """The registered brokers, read now (no watch)."""
        return sorted(int(c) for c in self._client.get_children(BROKER_IDS) if c.isdigit())

    def _read_brokers(self) -> dict[int, BrokerRecord]:
        ids = [int(c) for c in self._client.get_children(BROKER_IDS, watch=self._watch) if c.isdigit()]
        pending = [(i, self._client.get_async(broker_path(i))) for i in ids]
        out: dict[int, BrokerRecord] = {}
        for broker_id, result in pending:
            try:
                data, stat = result.get()
            except NoNodeError:
                continue  # gone since the listing; the child watch reports it
            out[broker_id] = BrokerRecord(decode_broker(broker_id, data), stat.czxid, stat.ephemeralOwner)
        return out

    def _read_controller(self) -> ControllerView:
        view = ControllerView(-1, 0, 0)
        for _attempt in range(5):
            try:
                data, stat = self._client.get(CONTROLLER, watch=self._watch)
            except NoNodeError:
                if self._client.exists(CONTROLLER, watch=self._watch) is not None:
                    continue
                epoch_data, _ = self._client.get(CONTROLLER_EPOCH)
                return ControllerView(-1, 0, decode_epoch(epoch_data))
            epoch_data, epoch_stat = self._client.get(CONTROLLER_EPOCH)
            view = ControllerView(decode_controller(data), stat.ephemeralOwner, decode_epoch(epoch_data))
            # /controller and its epoch are written by one transaction: same zxid, same term.
            if epoch_stat.mzxid == stat.czxid:
                return view
        return view

    def _read_topics(self, names: Sequence[str]) -> dict[str, TopicRecord | None]:
        pending = [(n, self._client.get_async(topic_path(n), watch=self._watch)) for n in names]
        out: dict[str, TopicRecord | None] = {}
        for name, result in pending:
            try:
                data, stat = result.get()
            except NoNodeError:
                out[name] = None
                continue
            out[name] = decode_topic(name, data, stat.mzxid)
        return out

    def _read_states(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], StateRecord | None]:
        out: dict[tuple[str, int], StateRecord | None] = {}
        todo = list(keys)
        while todo:
            pending = [(k, self._client.get_async(state_path(*k), watch=self._watch)) for k in todo]
            missing = []
            for key, result in pending:
                try:
                    data, stat = result.get()
                except NoNodeError:
                    missing.append(key)
                    continue
                out[key] = decode_state(state_path(*key), data, stat.version, stat.mzxid, stat.czxid)
            # Watch for the creation of the missing ones; any created meanwhile is read again.
            checks = [(k, self._client.exists_async(state_path(*k), watch=self._watch)) for k in missing]
            todo = []
            for key, result in checks:
                if result.get() is None:
                    out[key] = None
                else:
                    todo.append(key)
        return out

    # --- broker registration ---------------------------------------------------------------------

    @_unavailable_on_disconnect
    def register_broker(self, info: BrokerInfo, wait_s: float) -> BrokerRecord:
        """Create the ephemeral ``/brokers/ids/N``; returns it with its czxid (the broker epoch).

        A node left by one of our own earlier sessions is deleted; one held by another session is
        waited for (``wait_s``: a crashed process's session takes up to its timeout to expire), then
        refused with BrokerIdInUseError."""
        path = broker_path(info.broker_id)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                _, stat = self._create(path, encode_broker(info), ephemeral=True, include_data=True)
                return BrokerRecord(info, stat.czxid, stat.ephemeralOwner)
            except NodeExistsError:
                pass
            except _TRANSIENT as exc:
                if not self._connected.wait(max(0.0, min(1.0, deadline - time.monotonic()))):
                    raise ZooKeeperUnavailableError(f"ZooKeeper unavailable: {exc!r}") from None
                continue
            try:
                data, stat = self._client.get(path)
            except NoNodeError:
                continue
            owner = stat.ephemeralOwner
            if owner == self.session_id:  # a create retried after ConnectionLoss had succeeded
                return BrokerRecord(decode_broker(info.broker_id, data), stat.czxid, owner)
            if self._ours_from_before(owner):
                log.info("deleting %s left by our expired session 0x%x", path, owner)
                self._delete_quietly(path, stat.version)
                continue
            if not self._wait_gone(path, deadline):
                holder = decode_broker(info.broker_id, data)
                raise BrokerIdInUseError(
                    f"broker id {info.broker_id} is already registered by another live ZooKeeper "
                    f"session (0x{owner:x}, advertising {holder.host}:{holder.port}); "
                    "is another broker running with the same broker.id?"
                )

    def _wait_gone(self, path: str, deadline: float) -> bool:
        gone = threading.Event()
        while True:
            gone.clear()
            if self._client.exists(path, watch=lambda _event: gone.set()) is None:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            gone.wait(min(remaining, 0.5))

    def _delete_quietly(self, path: str, version: int) -> None:
        with contextlib.suppress(NoNodeError, BadVersionError):
            self._client.delete(path, version=version)

    # --- cluster id, producer ids -------------------------------------------------------------------

    def ensure_cluster_id(self, deadline_s: float) -> str:
        def attempt() -> str:
            with contextlib.suppress(NodeExistsError):
                self._create(CLUSTER_ID, encode_cluster_id(new_cluster_id()))
            data, _ = self._client.get(CLUSTER_ID)
            return decode_cluster_id(data)

        return self._retrying(attempt, deadline_s)

    def claim_producer_id_block(self, broker_id: int, size: int, deadline_s: float) -> int:
        """Claim the next ``size`` producer ids by a conditional update; returns the first one."""

        def attempt() -> int:
            while True:
                try:
                    data, stat = self._client.get(PRODUCER_ID_BLOCK)
                except NoNodeError:
                    try:
                        self._create(PRODUCER_ID_BLOCK, encode_producer_block(broker_id, 0, size - 1))
                        return 0
                    except NodeExistsError:
                        continue
                start = decode_producer_block_end(data) + 1
                try:
                    self._client.set(
                        PRODUCER_ID_BLOCK,
                        encode_producer_block(broker_id, start, start + size - 1),
                        version=stat.version,
                    )
                    return start
                except BadVersionError:
                    continue  # another broker claimed one meanwhile

        # A retried claim after a ConnectionLoss may skip a block that was claimed: never a reuse.
        return self._retrying(attempt, deadline_s)

    # --- SCRAM credentials (any broker) ---------------------------------------------------------------

    def ensure_sasl_secret(self, size: int, deadline_s: float) -> bytes:
        """The cluster's SASL secret, created by the first broker that asks."""

        def attempt() -> bytes:
            with contextlib.suppress(NodeExistsError):
                self._create(SASL_SECRET, secrets.token_bytes(size), makepath=True)
            data, _ = self._client.get(SASL_SECRET)
            return bytes(data)

        return self._retrying(attempt, deadline_s)

    def change_user(
        self,
        user: str,
        change: Callable[[dict[str, ScramCredential]], dict[str, ScramCredential]],
        deadline_s: float,
    ) -> None:
        """Read-modify-write ``/config/users/<user>``, conditional on the version read (retried when
        another broker wrote meanwhile). ``change`` gets the current credentials (empty for a new user);
        the znode is deleted once no credential is left."""
        path = user_path(user)

        def attempt() -> None:
            while True:
                try:
                    data, stat = self._client.get(path)
                    current = decode_user_config(user, data)
                    # the user's quotas live in the same znode (Kafka's layout): kept as they are
                    others = {
                        k: v for k, v in decode_entity_config(path, data).items() if k not in MECHANISMS
                    }
                except NoNodeError:
                    current, stat, others = {}, None, {}
                wanted = change(dict(current))
                config = {**others, **encode_user(wanted)}
                try:
                    if stat is None:
                        if wanted:
                            self._create(path, encode_user_config(wanted), makepath=True)
                    elif config:
                        self._client.set(path, encode_entity_config(config), version=stat.version)
                    else:
                        self._delete_or_empty(path, stat.version)
                    return
                except (NodeExistsError, BadVersionError, NoNodeError):
                    continue  # another broker changed it meanwhile: read it again

        self._retrying(attempt, deadline_s)

    # --- queues (any broker) ------------------------------------------------------------------------

    def create_topic(self, name: str, data: bytes, deadline_s: float) -> None:
        """Create the assignment znode; QueueExistsError if it exists (and is not our own retry) or if
        a queue whose name differs only by '.' versus '_' exists (checked on a fresh listing, as Kafka
        does: two brokers creating such a pair at the same instant can both succeed)."""
        path = topic_path(name)
        tries = 0

        def attempt() -> None:
            nonlocal tries
            tries += 1
            clash = next((q for q in self._client.get_children(TOPICS) if collides(q, name)), None)
            if clash is not None:
                raise QueueExistsError(
                    f"queue {name!r} collides with {clash!r} ('.' and '_' are treated alike)"
                )
            try:
                self._create(path, data)
            except NodeExistsError:
                if tries > 1:  # a create retried after ConnectionLoss may have succeeded
                    try:
                        if self._client.get(path)[0] == data:
                            return
                    except NoNodeError:
                        pass
                raise QueueExistsError(f"queue {name!r} already exists") from None

        self._retrying(attempt, deadline_s)

    def grow_topic(
        self,
        name: str,
        plan: Callable[[TopicRecord, list[int]], Sequence[Sequence[int]]],
        deadline_s: float,
    ) -> None:
        """Add partitions to the assignment znode, conditional on the version read (read again when
        another broker wrote meanwhile). ``plan(record, live brokers)`` returns the replicas of the
        partitions to add (nothing: no write), or raises. The controller then creates their states.
        UnknownQueueError if the queue does not exist or is being deleted."""
        path = topic_path(name)
        sent: bytes | None = None  # a write whose outcome a lost connection hid

        def attempt() -> None:
            nonlocal sent
            while True:
                try:
                    data, stat = self._client.get(path)
                except NoNodeError:
                    raise UnknownQueueError(f"queue {name!r} does not exist") from None
                if sent is not None and data == sent:
                    return  # it went through before the connection was lost
                if self._client.exists(delete_request_path(name)) is not None:
                    raise UnknownQueueError(f"queue {name!r} is being deleted")
                live = sorted(int(c) for c in self._client.get_children(BROKER_IDS) if c.isdigit())
                added = plan(decode_topic(name, data, stat.mzxid), live)
                if not added:
                    return
                sent = with_added_partitions(name, data, added)
                try:
                    self._client.set(path, sent, version=stat.version)
                    return
                except BadVersionError:
                    sent = None  # changed meanwhile (another growth, new settings): decide again

        self._retrying(attempt, deadline_s)

    # --- settings changed after creation (any broker) ------------------------------------------------

    def set_topic_settings(self, name: str, settings: Mapping[str, str], deadline_s: float) -> None:
        """Replace a queue's settings in its assignment znode, conditional on the version read (read
        again when another broker changed the znode meanwhile, e.g. adding partitions); every other
        field is kept. UnknownQueueError if the queue does not exist."""
        path = topic_path(name)

        def attempt() -> None:
            while True:
                try:
                    data, stat = self._client.get(path)
                except NoNodeError:
                    raise UnknownQueueError(f"queue {name!r} does not exist") from None
                try:
                    self._client.set(path, with_topic_settings(name, data, settings), version=stat.version)
                    return
                except BadVersionError:
                    continue
                except NoNodeError:
                    raise UnknownQueueError(f"queue {name!r} does not exist") from None

        self._retrying(attempt, deadline_s)

    def set_broker_config(self, entity: str, settings: Mapping[str, str], deadline_s: float) -> None:
        """Replace the dynamic settings of ``/config/brokers/<entity>``; the znode goes when none is left."""
        self._update_entity_config(broker_config_path(entity), lambda _: dict(settings), deadline_s)

    def set_quotas(self, entity: QuotaEntity, changes: Mapping[str, float | None], deadline_s: float) -> None:
        """Read-modify-write one quota entity's znode (conditional on the version read), keeping its other
        keys (a user's SCRAM credentials); the znode goes when nothing is left in it or under it."""

        def changed(config: dict[str, str]) -> dict[str, str]:
            for key, value in changes.items():
                if value is None:
                    config.pop(key, None)
                else:
                    config[key] = quota_text(value)
            return config

        self._update_entity_config(quota_config_path(entity), changed, deadline_s)

    def _update_entity_config(
        self, path: str, change: Callable[[dict[str, str]], dict[str, str]], deadline_s: float
    ) -> None:
        """Read-modify-write an entity config znode (Kafka's ``{"version": 1, "config": {...}}``),
        conditional on the version read: read again when another broker changed it meanwhile. A znode
        left with no config is deleted, or emptied when it has children."""

        def attempt() -> None:
            while True:
                try:
                    data, stat = self._client.get(path)
                    config = decode_entity_config(path, data)
                except NoNodeError:
                    config, stat = {}, None
                config = change(config)
                try:
                    if stat is None:
                        if config:
                            self._create(path, encode_entity_config(config), makepath=True)
                    elif config:
                        self._client.set(path, encode_entity_config(config), version=stat.version)
                    else:
                        self._delete_or_empty(path, stat.version)
                    return
                except (NodeExistsError, BadVersionError, NoNodeError):
                    continue  # another broker changed it meanwhile: read it again

        self._retrying(attempt, deadline_s)

    def _delete_or_empty(self, path: str, version: int) -> None:
        """Delete an entity znode left with no config; one with children (a user's client-id quotas)
        keeps an empty config instead."""
        try:
            self._client.delete(path, version=version)
        except NotEmptyError:
            self._client.set(path, encode_entity_config({}), version=version)

    def request_delete(self, name: str, deadline_s: float) -> None:
        def attempt() -> None:
            if self._client.exists(topic_path(name)) is None:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            with contextlib.suppress(NodeExistsError):  # already requested
                self._create(delete_request_path(name))

        self._retrying(attempt, deadline_s)

    # --- controller --------------------------------------------------------------------------------

    @_unavailable_on_disconnect
    def elect(self, broker_id: int) -> ControllerContext | None:
        """Try to become controller: create /controller and bump /controller_epoch in one transaction.

        Returns the new term, or None when another broker is controller. A /controller left by one of
        our earlier sessions is deleted first."""
        while True:
            data, epoch_stat = self._client.get(CONTROLLER_EPOCH)
            epoch = decode_epoch(data) + 1
            session = self.session_id
            if session is None:
                return None
            tx = self._client.transaction()
            tx.create(CONTROLLER, encode_controller(broker_id), acl=self.acl_for(CONTROLLER), ephemeral=True)
            tx.set_data(CONTROLLER_EPOCH, encode_epoch(epoch), version=epoch_stat.version)
            results = tx.commit()
            error = _first_error(results)
            if error is None:
                return ControllerContext(epoch, results[1].version, session)
            if isinstance(error, BadVersionError):
                continue  # a controller came and went meanwhile
            if not isinstance(error, NodeExistsError):
                raise ZooKeeperUnavailableError(f"controller election failed: {error!r}")
            try:
                _, stat = self._client.get(CONTROLLER)
            except NoNodeError:
                continue
            if not self._ours_from_before(stat.ephemeralOwner):
                return None
            log.info("deleting /controller left by our expired session 0x%x", stat.ephemeralOwner)
            self._delete_quietly(CONTROLLER, stat.version)

    @_unavailable_on_disconnect
    def resign(self, ctx: ControllerContext) -> None:
        """Delete /controller if this session holds it, so that a new election (and epoch) follows."""
        try:
            _, stat = self._client.get(CONTROLLER)
        except NoNodeError:
            return
        if stat.ephemeralOwner == self.session_id == ctx.session_id:
            self._delete_quietly(CONTROLLER, stat.version)

    @_unavailable_on_disconnect
    def fenced_commit(self, ctx: ControllerContext, ops: Sequence[Op]) -> None:
        """Commit ``ops`` in transactions of at most MAX_OPS_PER_TRANSACTION, each one starting with a
        check of /controller_epoch's version. ControllerFencedError if the check fails (another broker
        became controller), StaleVersionError if another op's condition fails."""
        for i in range(0, len(ops), MAX_OPS_PER_TRANSACTION):
            chunk = ops[i : i + MAX_OPS_PER_TRANSACTION]
            tx = self._client.transaction()
            tx.check(CONTROLLER_EPOCH, ctx.epoch_version)
            for op in chunk:
                if op.kind == "create":
                    tx.create(op.path, op.data, acl=self.acl_for(op.path))
                elif op.kind == "set":
                    tx.set_data(op.path, op.data, version=op.version)
                elif op.kind == "delete":
                    tx.delete(op.path, version=op.version)
                else:
                    raise ValueError(f"unknown op {op.kind!r}")
            results = tx.commit()
            error = _first_error(results)
            if error is None:
                continue
            if not isinstance(results[0], Exception) or isinstance(results[0], RolledBackError):
                failed = next(op for op, r in zip(chunk, results[1:], strict=False) if _is_cause(r))
                raise StaleVersionError(f"{failed.kind} {failed.path}: {error!r}", failed.path)
            raise ControllerFencedError(
                f"controller epoch {ctx.epoch} is over: /controller_epoch is no longer at version "
                f"{ctx.epoch_version}"
            )

    @_unavailable_on_disconnect
    def set_state(self, path: str, data: bytes, version: int) -> tuple[int, int]:
        """A partition leader's conditional write of its state (ISR changes, Kafka's pre-AlterIsr way);
        returns the znode's new (version, mzxid). StaleVersionError if it changed since ``version``."""
        try:
            stat = self._client.set(path, data, version=version)
        except (BadVersionError, NoNodeError) as exc:
            raise StaleVersionError(f"set {path}: {exc!r}", path) from None
        return int(stat.version), int(stat.mzxid)

    @_unavailable_on_disconnect
    def missing_partition_ops(self, name: str, states: Mapping[int, bytes]) -> list[Op]:
        """The creates that give queue ``name`` a state znode for each partition of ``states`` that
        lacks one (and the parent znodes they need)."""
        try:
            existing = set(self._client.get_children(partitions_path(name)))
            ops: list[Op] = []
        except NoNodeError:
            existing = set()
            ops = [Op("create", partitions_path(name))]
        have_state = {}
        pending = [(p, self._client.exists_async(state_path(name, p))) for p in states if str(p) in existing]
        for p, result in pending:
            have_state[p] = result.get() is not None
        for p, data in sorted(states.items()):
            if str(p) not in existing:
                ops.append(Op("create", partition_path(name, p)))
            elif have_state[p]:
                continue
            ops.append(Op("create", state_path(name, p), data))
        return ops

    @_unavailable_on_disconnect
    def topic_tree_delete_ops(self, name: str) -> list[Op]:
        """The deletes that remove queue ``name``'s znodes (children first) and its delete request."""
        ops: list[Op] = []

        def walk(path: str) -> None:
            try:
                children = self._client.get_children(path)
            except NoNodeError:
                return
            for child in sorted(children):
                walk(f"{path}/{child}")
            ops.append(Op("delete", path))

        walk(topic_path(name))
        ops.append(Op("delete", delete_request_path(name)))
        return ops


def _first_error(results: Sequence[Any]) -> Exception | None:
    """The error that failed a transaction (kazoo reports the others as rolled back), or None."""
    errors = [r for r in results if isinstance(r, Exception)]
    if not errors:
        return None
    return next((e for e in errors if _is_cause(e)), errors[0])


def _is_cause(result: Any) -> bool:
    return isinstance(result, Exception) and not isinstance(result, RolledBackError | RuntimeInconsistency)
