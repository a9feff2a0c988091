"""Security benchmark: what TLS, SASL and ACL authorization cost, against no security, in one run.

Usage: python benchmarks/security_bench.py [--quick] [--rounds N] [--logins N] [--json FILE]
       [--profile FILE.txt]

Two real broker processes on 127.0.0.1, running side by side for the whole run:
- "open": no authorizer, a PLAINTEXT and an SSL listener (the same TLS settings as "secure");
- "secure": the authorizer on (``super.users = User:admin``, 1,000 unrelated ACLs besides the benchmark's
  grants), and PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners (PLAIN, SCRAM-SHA-256 and -512).
The benchmark user ``bench`` (and ``User:ANONYMOUS``, for the secure broker's PLAINTEXT listener) may
WRITE and READ every queue starting with ``bench-``; queues are created and deleted by ``admin``.

Throughput: ``benchmarks/confluent_perf.py`` (confluent-kafka, librdkafka; a new process for every run)
produces COUNT messages (acks=1, no compression, ``produce_batch``) into a fresh one-partition queue, then
drains it from the beginning, through each variant:

  plaintext       open broker, PLAINTEXT                    (the baseline: no security)
  ssl             open broker, SSL                          (TLS alone)
  acls            secure broker, PLAINTEXT as ANONYMOUS     (the authorizer alone)
  sasl_acls       secure broker, SASL_PLAINTEXT, SCRAM-SHA-256 as bench  (SASL + ACLs on plaintext)
  sasl_ssl_acls   secure broker, SASL_SSL, SCRAM-SHA-256 as bench        (everything)

at 100 B and 1 KiB, in several rounds; each round runs every variant once, in an order rotated from
round to round, so that the machine's noise falls on all of them alike. Ratios are per round (variant /
baseline of the same round); the report gives their median and range, and the broker's CPU time per
message (``/proc/<pid>/stat`` of the broker serving the variant).

Logins: a Python client (raw sockets, logq's protocol codec and SCRAM client) connects and logs in
LOGINS times per kind, the kinds interleaved: TCP + ApiVersions; TLS + ApiVersions; SASL with
SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, on SASL_PLAINTEXT and SASL_SSL. Times are split into connect,
TLS handshake, ApiVersions, SaslHandshake and the SaslAuthenticate round trips; the client's own PBKDF2
(SCRAM's salted password) is timed apart, and the broker's CPU per login is read from ``/proc``. Then
librdkafka's view (``confluent_perf.py perf connect``: a fresh client until its first Metadata answer),
and the server's PBKDF2 for a PLAIN login (``scram.password_matches``) timed in this process.

``--profile FILE.txt``: py-spy (``pip install py-spy``) samples the open broker while an SSL produce and
drain run (one extra, unmeasured pass), and the functions' shares of the samples are written to the file.
Traffic stays on 127.0.0.1; every phase is bounded in count and time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from logq.broker.authorization import RequestAuthorizer  # noqa: E402
from logq.broker.session import ClientSession, enter_session  # noqa: E402
from logq.coordinator.credentials import write_user_offline  # noqa: E402
from logq.permissions import make_private_dir  # noqa: E402
from logq.protocol import encode_request  # noqa: E402
from logq.protocol import messages as m  # noqa: E402
from logq.protocol.apis import spec_for_request  # noqa: E402
from logq.protocol.client import decode_response_as  # noqa: E402
from logq.security import acl, scram  # noqa: E402
from logq.security.certs import DevCertificates, write_dev_certificates  # noqa: E402
from tests.broker_process import BrokerProcess, free_port  # noqa: E402

CASES = ((100, 1_000_000), (1024, 200_000))
QUICK_SCALE = 20
ROUNDS = 7
LOGINS = 200
PERF = ROOT / "benchmarks" / "confluent_perf.py"
RUN_TIMEOUT_S = 300
QUEUE_PREFIX = "bench-"
USERS = {"admin": "admin-secret", "bench": "bench-secret"}
UNRELATED_ACLS = 1_000
PRODUCE_PROPERTIES = {
    "acks": "1",
    "compression.type": "none",
    "linger.ms": "5",
    "batch.size": "1000000",
    "queue.buffering.max.messages": "2000000",
    "queue.buffering.max.kbytes": "2000000",
}
# 4 MiB per partition per fetch, as benchmarks/broker_bench.py (librdkafka parses one answer while the
# next is in flight). A local queue of up to 1 GiB: librdkafka's default (64 MiB) filled up with 1 KiB
# messages, and it then paused fetching for up to fetch.queue.backoff.ms (1 s), which measured the pause.
CONSUME_PROPERTIES = {
    "fetch.max.bytes": str(64 << 20),
    "max.partition.fetch.bytes": str(4 << 20),
    "queued.min.messages": "1000000",
    "queued.max.messages.kbytes": str(1 << 20),
    "fetch.queue.backoff.ms": "10",
}


@dataclass(frozen=True)
class Variant:
    name: str
    broker: str  # "open", "secure" or "before"
    listener: str
    what: str
    sasl: str | None = None  # the mechanism, on SASL listeners

    @property
    def tls(self) -> bool:
        return self.listener in ("SSL", "SASL_SSL")


VARIANTS = (
    Variant("plaintext", "open", "PLAINTEXT", "no security"),
    Variant("ssl", "open", "SSL", "TLS"),
    Variant("acls", "secure", "PLAINTEXT", "ACLs (ANONYMOUS)"),
    Variant("sasl_acls", "secure", "SASL_PLAINTEXT", "SASL SCRAM-SHA-256 + ACLs", "SCRAM-SHA-256"),
    Variant("sasl_ssl_acls", "secure", "SASL_SSL", "TLS + SASL SCRAM-SHA-256 + ACLs", "SCRAM-SHA-256"),
)
# With --before REV: the open broker's two listeners run by the code of REV too, in the same rounds.
BEFORE_VARIANTS = (
    Variant("plaintext_before", "before", "PLAINTEXT", "no security, code before"),
    Variant("ssl_before", "before", "SSL", "TLS, code before"),
)
# (variant, baseline, what the ratio isolates)
COMPARISONS = (
    ("ssl", "plaintext", "TLS vs plaintext (no authorizer)"),
    ("sasl_acls", "plaintext", "SASL + ACLs on plaintext vs no security"),
    ("acls", "plaintext", "ACLs alone (authorizer on, ANONYMOUS) vs no security"),
    ("sasl_ssl_acls", "sasl_acls", "TLS under SASL + ACLs vs SASL + ACLs on plaintext"),
    ("sasl_ssl_acls", "plaintext", "TLS + SASL + ACLs vs no security"),
)
BEFORE_COMPARISONS = (
    ("ssl_before", "plaintext_before", "TLS vs plaintext, code before"),
    ("ssl", "ssl_before", "TLS: this code vs the code before"),
    ("plaintext", "plaintext_before", "plaintext: this code vs the code before"),
)


@dataclass
class Brokers:
    open: BrokerProcess
    secure: BrokerProcess
    certs: DevCertificates
    metrics_address: str  # the secure broker's Prometheus endpoint
    before: BrokerProcess | None = None  # the open broker's twin, run by older code (--before)
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        self.admin = AdminClient(
            {
                "bootstrap.servers": self.secure.address("SASL_PLAINTEXT"),
                "security.protocol": "SASL_PLAINTEXT",
                **sasl_properties("admin"),
            }
        )

    @property
    def variants(self) -> tuple[Variant, ...]:
        return VARIANTS + (BEFORE_VARIANTS if self.before is not None else ())

    @property
    def comparisons(self) -> tuple[tuple[str, str, str], ...]:
        return COMPARISONS + (BEFORE_COMPARISONS if self.before is not None else ())

    @property
    def processes(self) -> list[BrokerProcess]:
        return [self.open, self.secure, *([self.before] if self.before is not None else [])]

    def process(self, variant: Variant) -> BrokerProcess:
        if variant.broker == "before":
            assert self.before is not None
            return self.before
        return self.open if variant.broker == "open" else self.secure

    def address(self, variant: Variant) -> str:
        return self.process(variant).address(variant.listener)

    def client_properties(self, variant: Variant) -> dict[str, str]:
        props = {"security.protocol": variant.listener}
        if variant.tls:
            props["ssl.ca.location"] = str(self.certs.ca)
        if variant.sasl:
            props |= sasl_properties("bench", variant.sasl)
        return props

    def admin_for(self, variant: Variant) -> AdminClient:
        if variant.broker == "secure":
            return self.admin
        return AdminClient({"bootstrap.servers": self.process(variant).address("PLAINTEXT")})


def sasl_properties(user: str, mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
    return {"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": USERS[user]}


def cpu_seconds(pid: int) -> float:
    """The process's CPU time in nanoseconds' resolution (``/proc/<pid>/stat`` counts 10 ms ticks): the sum
    over its threads' schedstat. The broker's worker threads live as long as it does, so none is missed."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended just now
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def broker_pid(broker: BrokerProcess) -> int:
    assert broker.proc is not None
    return broker.proc.pid


# --- the brokers ---------------------------------------------------------------------------------------


def start_brokers(work: Path, before: str | None = None) -> Brokers:
    certs = write_dev_certificates(work / "certs", [])
    tls = {
        "ssl.certificate.location": str(certs.broker_cert),
        "ssl.key.location": str(certs.broker_key),
    }
    open_data = work / "open"
    make_private_dir(open_data)
    open_broker = BrokerProcess(open_data, listeners={"PLAINTEXT": "PLAINTEXT", "SSL": "SSL"}, broker=tls)
    before_broker = None
    if before is not None:
        make_private_dir(work / "before")
        tree = source_tree(before, work / "before-tree")
        before_broker = BrokerProcess(
            work / "before", listeners={"PLAINTEXT": "PLAINTEXT", "SSL": "SSL"}, broker=tls
        )
        with environment(PYTHONSAFEPATH="1", PYTHONPATH=str(tree)):  # its logq, not this one
            before_broker.start()
    secure_data = work / "secure"
    metrics_address = f"127.0.0.1:{free_port()}"
    make_private_dir(secure_data)
    for user, password in USERS.items():
        write_user_offline(
            secure_data, user, [scram.make_credential(mc, password) for mc in scram.MECHANISMS]
        )
    secure_broker = BrokerProcess(
        secure_data,
        listeners={name: name for name in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")},
        broker={
            **tls,
            "metrics.listen": metrics_address,  # requests served, per API
            "authorizer.enable": True,
            "super.users": "User:admin",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        },
    )
    started = [b for b in (before_broker,) if b is not None]
    try:
        for broker in (open_broker, secure_broker):
            broker.start()
            started.append(broker)
    except BaseException:
        for broker in started:
            broker.kill()
        raise
    brokers = Brokers(open_broker, secure_broker, certs, metrics_address, before_broker)
    try:
        grant_acls(brokers.admin)
    except BaseException:
        for broker in brokers.processes:
            broker.kill()
        raise
    return brokers


def source_tree(revision: str, into: Path) -> Path:
    """The repository's files at ``revision`` (``git archive``), to run a broker from."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables for the processes started inside (``BrokerProcess`` inherits them).

    ``PYTHONSAFEPATH`` keeps ``python -m`` from putting the working directory (this checkout) ahead of
    ``PYTHONPATH`` on ``sys.path``."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def grant_acls(admin: AdminClient) -> None:
    """The benchmark's grants, and UNRELATED_ACLS others so that the authorizer has a real set to search."""
    prefixed, literal = ResourcePatternType.PREFIXED, ResourcePatternType.LITERAL
    allow = AclPermissionType.ALLOW
    bindings = []
    for principal in ("User:bench", "User:ANONYMOUS"):
        for operation in (AclOperation.WRITE, AclOperation.READ):
            bindings.append(
                AclBinding(ResourceType.TOPIC, QUEUE_PREFIX, prefixed, principal, "*", operation, allow)
            )
        # confluent_perf.py's consumer names group "unused" (it assigns, it does not join)
        bindings.append(
            AclBinding(ResourceType.GROUP, "unused", literal, principal, "*", AclOperation.READ, allow)
        )
    for i in range(UNRELATED_ACLS):
        pattern = prefixed if i % 2 else literal
        bindings.append(
            AclBinding(ResourceType.TOPIC, f"other-{i}", pattern, f"User:u{i}", "*", AclOperation.READ, allow)
        )
    for future in admin.create_acls(bindings, request_timeout=60).values():
        future.result()


def create_queue(admin: AdminClient, name: str) -> None:
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)


def delete_queue(admin: AdminClient, name: str) -> None:
    admin.delete_topics([name], operation_timeout=30)[name].result(60)


# --- throughput ----------------------------------------------------------------------------------------


def run_perf(bootstrap: str, properties: dict[str, str], *args: str) -> dict[str, Any]:
    command = [sys.executable, str(PERF), "-b", bootstrap]
    for key, value in properties.items():
        command += ["-X", f"{key}={value}"]
    proc = subprocess.run(
        [*command, "perf", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"confluent_perf.py {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(
    brokers: Brokers,
    variant: Variant,
    size: int,
    count: int,
    tag: str,
    *,
    around: Callable[[str], contextlib.AbstractContextManager[None]] | None = None,
) -> dict[str, Any]:
    """Produce ``count`` messages into a fresh queue through the variant, then drain it (each run inside
    ``around(mode)``, if given)."""
    queue = f"{QUEUE_PREFIX}{variant.name}-{size}-{tag}"
    admin = brokers.admin_for(variant)
    create_queue(admin, queue)
    pid = broker_pid(brokers.process(variant))
    props = brokers.client_properties(variant)
    bootstrap = brokers.address(variant)
    out: dict[str, Any] = {}
    try:
        for mode, extra, args in (
            ("produce", PRODUCE_PROPERTIES, ["--size", str(size), "--batch"]),
            # from offset 0: with -2 (the beginning) librdkafka waits ~0.5 s before its first fetch
            ("consume", CONSUME_PROPERTIES, ["--offset", "0"]),
        ):
            requests0 = requests_served(brokers, variant)
            cpu0 = cpu_seconds(pid)
            with around(mode) if around is not None else contextlib.nullcontext():
                result = run_perf(bootstrap, {**extra, **props}, mode, queue, "--count", str(count), *args)
            if result["messages"] != count:
                raise RuntimeError(f"{variant.name} {mode}: {result['messages']} of {count} messages")
            result["broker_cpu_us_per_msg"] = (cpu_seconds(pid) - cpu0) / count * 1e6
            if requests0 is not None:
                served = requests_served(brokers, variant) or {}
                result["requests"] = {api: n - requests0.get(api, 0) for api, n in served.items()}
            out[mode] = result
    finally:
        delete_queue(admin, queue)
    return out


def requests_served(brokers: Brokers, variant: Variant) -> dict[str, float] | None:
    """The secure broker's ``logq_requests_total`` by API (None for the other brokers)."""
    if variant.broker != "secure":
        return None
    with urllib.request.urlopen(f"http://{brokers.metrics_address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        sample.labels["api"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "logq_requests"
        for sample in family.samples
        if sample.name == "logq_requests_total"
    }


def throughput(brokers: Brokers, rounds: int, quick: bool) -> dict[str, Any]:
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}  # case -> variant -> one result per round
    for r in range(rounds):
        variants = brokers.variants
        shift = r % len(variants)
        order = variants[shift:] + variants[:shift]
        for size, full_count in CASES:
            count = full_count // QUICK_SCALE if quick else full_count
            case = f"{size}B"
            for variant in order:
                result = measure(brokers, variant, size, count, f"r{r}")
                runs.setdefault(case, {}).setdefault(variant.name, []).append(result)
                print(
                    f"round {r} {case} {variant.name}: "
                    f"produce {result['produce']['msgs_per_sec']:,.0f} msg/s, "
                    f"consume {result['consume']['msgs_per_sec']:,.0f} msg/s",
                    flush=True,
                )
    return runs


def ratios(runs: list[dict[str, Any]], base: list[dict[str, Any]], mode: str, key: str) -> list[float]:
    """Per round: the variant's figure over the baseline's of the same round."""
    return [v[mode][key] / b[mode][key] for v, b in zip(runs, base, strict=True)]


def throughput_tables(
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    variants: tuple[Variant, ...],
    comparisons: tuple[tuple[str, str, str], ...],
) -> list[str]:
    lines = [
        "| size | variant | produce msg/s | MB/s | broker CPU us/msg "
        "| consume msg/s | MB/s | broker CPU us/msg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, by_variant in runs.items():
        for variant in variants:
            results = by_variant[variant.name]
            cells = [case, f"{variant.name} ({variant.what})"]
            for mode in ("produce", "consume"):
                cells += [
                    f"{statistics.median(r[mode]['msgs_per_sec'] for r in results):,.0f}",
                    f"{statistics.median(r[mode]['mb_per_sec'] for r in results):,.1f}",
                    f"{statistics.median(r[mode]['broker_cpu_us_per_msg'] for r in results):.2f}",
                ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| size | ratio | produce msg/s: median (range) | broker CPU/msg | consume msg/s: median (range) "
        "| broker CPU/msg |",
        "|---|---|---|---:|---|---:|",
    ]
    for case, by_variant in runs.items():
        for variant, baseline, what in comparisons:
            cells = [case, f"{variant} / {baseline}: {what}"]
            for mode in ("produce", "consume"):
                rs = ratios(by_variant[variant], by_variant[baseline], mode, "msgs_per_sec")
                cpu = ratios(by_variant[variant], by_variant[baseline], mode, "broker_cpu_us_per_msg")
                cells += [
                    f"**{statistics.median(rs):.2f}** ({min(rs):.2f}-{max(rs):.2f})",
                    f"{statistics.median(cpu):.2f}",
                ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


# --- logins --------------------------------------------------------------------------------------------


class LoginClient:
    """One connection, blocking, timed step by step: logq's codec over a socket (wrapped for TLS)."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._sock: socket.socket | None = None
        self._correlation = 0

    def _timed(self, step: str, started: float) -> None:
        self.steps[step] = self.steps.get(step, 0.0) + (time.perf_counter() - started) * 1000

    def connect(self, address: str, tls: ssl.SSLContext | None) -> None:
        host, port = address.rsplit(":", 1)
        began = time.perf_counter()
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._timed("connect", began)
        if tls is not None:
            began = time.perf_counter()
            sock = tls.wrap_socket(sock, server_hostname=host)  # the handshake happens here
            self._timed("tls", began)
        self._sock = sock

    def call(self, step: str, body: Any, version: int) -> Any:
        assert self._sock is not None
        began = time.perf_counter()
        self._correlation += 1
        self._sock.sendall(encode_request(body, version, self._correlation, "security-bench"))
        size = struct.unpack(">i", self._read(4))[0]
        _, response = decode_response_as(
            self._read(size), spec_for_request(type(body)).response_type, version
        )
        self._timed(step, began)
        return response

    def _read(self, n: int) -> bytes:
        assert self._sock is not None
        out = bytearray()
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


def one_login(address: str, tls: ssl.SSLContext | None, mechanism: str | None) -> dict[str, float]:
    """Connect, [TLS], ApiVersions, [SaslHandshake, SaslAuthenticate...]: milliseconds per step."""
    client = LoginClient()
    began = time.perf_counter()
    try:
        client.connect(address, tls)
        client.call("api_versions", m.ApiVersionsRequest(), 0)
        if mechanism is not None:
            login(client, mechanism)
        client.steps["total"] = (time.perf_counter() - began) * 1000
    finally:
        client.close()
    return client.steps


def login(client: LoginClient, mechanism: str) -> None:
    user, password = "bench", USERS["bench"]
    answer = client.call("sasl_handshake", m.SaslHandshakeRequest(mechanism=mechanism), 1)
    if answer.error_code:
        raise RuntimeError(f"SaslHandshake {mechanism}: error {answer.error_code}")
    if mechanism == "PLAIN":
        token = f"\0{user}\0{password}".encode()
        done = client.call("authenticate", m.SaslAuthenticateRequest(auth_bytes=token), 1)
    else:
        exchange = scram.ScramClient(mechanism, user, password)
        first = client.call("authenticate", m.SaslAuthenticateRequest(auth_bytes=exchange.first()), 1)
        began = time.perf_counter()
        final = exchange.final(first.auth_bytes)  # the client's PBKDF2 of the password
        client.steps["client_pbkdf2"] = (time.perf_counter() - began) * 1000
        done = client.call("authenticate", m.SaslAuthenticateRequest(auth_bytes=final), 1)
        if not done.error_code:
            exchange.verify(done.auth_bytes)
    if done.error_code:
        raise RuntimeError(f"{mechanism} login failed: {done.error_message}")


LOGIN_KINDS = (
    ("PLAINTEXT: connect + ApiVersions", "PLAINTEXT", None),
    ("SSL: connect + TLS + ApiVersions", "SSL", None),
    ("SASL_PLAINTEXT, SCRAM-SHA-256", "SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_PLAINTEXT, SCRAM-SHA-512", "SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_PLAINTEXT, PLAIN", "SASL_PLAINTEXT", "PLAIN"),
    ("SASL_SSL, SCRAM-SHA-256", "SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL, SCRAM-SHA-512", "SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL, PLAIN", "SASL_SSL", "PLAIN"),
)


def logins(brokers: Brokers, count: int) -> dict[str, Any]:
    """Each kind ``count`` times, interleaved; the secure broker's CPU per login, per kind."""
    context = ssl.create_default_context(cafile=str(brokers.certs.ca))
    pid = broker_pid(brokers.secure)
    samples: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    cpu: dict[str, float] = collections.defaultdict(float)
    for _ in range(count):
        for name, listener, mechanism in LOGIN_KINDS:
            address = brokers.secure.address(listener)
            cpu0 = cpu_seconds(pid)
            samples[name].append(one_login(address, context if "SSL" in listener else None, mechanism))
            cpu[name] += cpu_seconds(pid) - cpu0
    out: dict[str, Any] = {}
    for name, _listener, _mechanism in LOGIN_KINDS:
        steps = sorted({step for sample in samples[name] for step in sample})
        out[name] = {
            step: {
                "median_ms": statistics.median(s[step] for s in samples[name]),
                "p90_ms": statistics.quantiles([s[step] for s in samples[name]], n=10)[-1],
            }
            for step in steps
        }
        out[name]["broker_cpu_ms_per_login"] = cpu[name] / count * 1000
    return out


def librdkafka_connects(brokers: Brokers, count: int, rounds: int = 5) -> dict[str, Any]:
    """librdkafka's view: a fresh client until its first Metadata answer, the kinds interleaved."""
    kinds = (
        ("PLAINTEXT", None),
        ("SSL", None),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
        ("SASL_SSL", "SCRAM-SHA-256"),
        ("SASL_SSL", "SCRAM-SHA-512"),
    )
    times: dict[str, list[float]] = collections.defaultdict(list)
    per_round = max(1, count // rounds)
    for _ in range(rounds):
        for listener, mechanism in kinds:
            variant = Variant("connect", "secure", listener, "", mechanism)
            # librdkafka otherwise defers some connections by ~50 ms (sparse connections), which would
            # be most of what is measured
            props = {**brokers.client_properties(variant), "enable.sparse.connections": "false"}
            result = run_perf(
                brokers.address(variant), props, "connect", "bench-none", "--count", str(per_round)
            )
            times[f"{listener}{', ' + mechanism if mechanism else ''}"] += result["connect_ms"]
    return {
        name: {"median_ms": statistics.median(ts), "p90_ms": statistics.quantiles(ts, n=10)[-1], "n": len(ts)}
        for name, ts in times.items()
    }


def server_pbkdf2(repeats: int = 50) -> dict[str, float]:
    """What the broker computes for one PLAIN login: ``password_matches`` (one PBKDF2), per credential."""
    out: dict[str, float] = {}
    for mechanism in scram.MECHANISMS:
        for iterations in (scram.DEFAULT_ITERATIONS, scram.MAX_ITERATIONS):
            credential = scram.make_credential(mechanism, "bench-secret", iterations)
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                assert scram.password_matches(credential, "bench-secret")
                times.append((time.perf_counter() - began) * 1000)
            out[f"{mechanism}, {iterations} iterations"] = statistics.median(times)
    return out


def authorization_cost(repeats: int = 200_000) -> float:
    """Microseconds per authorization decision once cached, as a handler asks it: ``RequestAuthorizer.allows``
    (the principal from the connection's context, one dict lookup), with the benchmark's ACLs and
    UNRELATED_ACLS others."""
    topic, allow = acl.ResourceType.TOPIC, acl.AclPermissionType.ALLOW
    pattern = acl.ResourcePattern(topic, QUEUE_PREFIX, acl.PatternType.PREFIXED)
    bindings = [
        acl.AclBinding(pattern, acl.AccessControlEntry("User:bench", "*", acl.AclOperation.WRITE, allow))
    ]
    for i in range(UNRELATED_ACLS):
        other = acl.ResourcePattern(topic, f"other-{i}", acl.PatternType(3 if i % 2 else 2))
        bindings.append(
            acl.AclBinding(other, acl.AccessControlEntry(f"User:u{i}", "*", acl.AclOperation.READ, allow))
        )
    authorizer = RequestAuthorizer.from_settings(True, ["User:admin"], allow_everyone_if_no_acl_found=False)
    authorizer.update(frozenset(bindings))
    enter_session(ClientSession("127.0.0.1", 50000, "User:bench", "SASL_PLAINTEXT"))
    queue = f"{QUEUE_PREFIX}queue"
    assert authorizer.allows(acl.AclOperation.WRITE, topic, queue)
    began = time.perf_counter()
    for _ in range(repeats):
        authorizer.allows(acl.AclOperation.WRITE, topic, queue)
    return (time.perf_counter() - began) / repeats * 1e6


def authorization_table(runs: dict[str, dict[str, list[dict[str, Any]]]], cost_us: float) -> list[str]:
    """What authorization costs per message on the sasl_acls variant: requests per message (from the
    broker's counters) times one cached decision per queue named."""
    lines = [
        f"One cached authorization decision: {cost_us:.2f} us. Requests the secure broker served, per "
        "1,000,000 messages (sasl_acls, median of the rounds):",
        "",
        "| size | Produce requests | all requests while producing | Fetch requests | all requests while "
        "draining | authorization per message |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case, by_variant in runs.items():
        results = by_variant["sasl_acls"]
        per_million = 1e6 / results[0]["produce"]["messages"]
        served = {
            (mode, api): statistics.median(
                (sum(r[mode]["requests"].values()) if api == "all" else r[mode]["requests"].get(api, 0))
                for r in results
            )
            * per_million
            for mode, api in (
                ("produce", "Produce"),
                ("produce", "all"),
                ("consume", "Fetch"),
                ("consume", "all"),
            )
        }
        # at most one decision per request and queue (each request here names one queue)
        per_message = (served["produce", "all"] + served["consume", "all"]) * cost_us / 2e6
        lines.append(
            f"| {case} | {served['produce', 'Produce']:,.0f} | {served['produce', 'all']:,.0f} "
            f"| {served['consume', 'Fetch']:,.0f} | {served['consume', 'all']:,.0f} | {per_message:.5f} us |"
        )
    return lines


def login_tables(result: dict[str, Any], rdkafka: dict[str, Any], pbkdf2: dict[str, float]) -> list[str]:
    steps = ("connect", "tls", "api_versions", "sasl_handshake", "authenticate", "client_pbkdf2")
    lines = [
        "| login | total: median (p90) ms | " + " | ".join(steps) + " | broker CPU ms/login |",
        "|---|---:|" + "---:|" * len(steps) + "---:|",
    ]
    for name, steps_of in result.items():
        total = steps_of["total"]
        cells = [name, f"**{total['median_ms']:.2f}** ({total['p90_ms']:.2f})"]
        cells += [f"{steps_of[s]['median_ms']:.2f}" if s in steps_of else "" for s in steps]
        cells.append(f"{steps_of['broker_cpu_ms_per_login']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| librdkafka: new client until its first Metadata answer | median ms | p90 ms | n |"]
    lines.append("|---|---:|---:|---:|")
    for name, t in rdkafka.items():
        lines.append(f"| {name} | **{t['median_ms']:.2f}** | {t['p90_ms']:.2f} | {t['n']} |")
    lines += ["", "| the broker's PBKDF2 for one PLAIN login | median ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in pbkdf2.items()]
    return lines


# --- profile -------------------------------------------------------------------------------------------


def profile_tls(brokers: Brokers, out_file: Path, quick: bool) -> None:
    """py-spy on the open broker during an SSL produce, then drain, per size (one extra pass, not
    measured): the functions' shares, a section per run, into ``out_file``."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    sections: list[str] = []
    size = 0

    @contextlib.contextmanager
    def sampled(mode: str) -> Iterator[None]:
        raw = out_file.with_name(f"{out_file.stem}-{size}B-{mode}.collapsed")
        spy = subprocess.Popen(
            [py_spy, "record", "--format", "raw", "--rate", "250", "--nonblocking", "--threads",
             "--pid", str(broker_pid(brokers.open)), "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(1.0)  # py-spy attaches
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            spy.wait(60)
        sections.extend([f"## SSL {mode}, {size} B messages ({raw.name})", *profile_summary(raw), ""])

    variant = next(v for v in VARIANTS if v.name == "ssl")
    for size, full_count in CASES:
        count = full_count // QUICK_SCALE if quick else full_count
        measure(brokers, variant, size, count, "profile", around=sampled)
    out_file.write_text("\n".join(sections))
    print(f"profile: {out_file}", flush=True)


def profile_summary(raw: Path, top: int = 40) -> list[str]:
    """Shares of the event loop thread's busy samples (waiting in ``select`` left out): by the function a
    sample was in (self), and by every function on its stack (inclusive)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        thread, *frames = stack.split(";")
        if "MainThread" not in thread or not frames:
            continue
        n = int(count_text)
        names = [_function(f) for f in frames]
        if names[-1].startswith(("EpollSelector.select", "select (")):
            idle += n
            continue
        total += n
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    lines = [f"event loop thread: {total} busy samples ({idle} more waiting in select)", "", "self:"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


# --- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"1/{QUICK_SCALE} of the messages, 2 rounds")
    parser.add_argument("--rounds", type=int, help=f"throughput rounds (default {ROUNDS}; 2 with --quick)")
    parser.add_argument("--logins", type=int, help=f"logins per kind (default {LOGINS}; 20 with --quick)")
    parser.add_argument("--only", choices=["throughput", "logins"], help="run one part")
    parser.add_argument(
        "--before", metavar="REV", help="also run the open broker's variants on the code of this git revision"
    )
    parser.add_argument("--profile", type=Path, help="py-spy the open broker under SSL load into this file")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else ROUNDS)
    login_count = args.logins or (20 if args.quick else LOGINS)
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="security-"))
    results: dict[str, Any] = {}
    report: list[str] = []
    brokers: Brokers | None = None
    try:
        brokers = start_brokers(work, args.before)
        if args.profile:
            profile_tls(brokers, args.profile, args.quick)
        if args.only in (None, "throughput"):
            runs = throughput(brokers, rounds, args.quick)
            results["throughput"] = runs
            results["authorization_decision_us"] = authorization_cost()
            report += [*throughput_tables(runs, brokers.variants, brokers.comparisons), ""]
            report += [*authorization_table(runs, results["authorization_decision_us"]), ""]
        if args.only in (None, "logins"):
            results["logins"] = logins(brokers, login_count)
            results["librdkafka_connect"] = librdkafka_connects(brokers, max(10, login_count // 4))
            results["server_pbkdf2_ms"] = server_pbkdf2()
            report += login_tables(
                results["logins"], results["librdkafka_connect"], results["server_pbkdf2_ms"]
            )
    finally:
        for process in brokers.processes if brokers is not None else []:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
