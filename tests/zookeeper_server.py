"""A ZooKeeper server for tests, found in this order:

1. ``LOGQ_TEST_ZOOKEEPER=HOST:PORT``: an existing server (tests use a fresh chroot each, so a shared
   server is fine);
2. Debian's ``zookeeper`` package (``/usr/share/java/zookeeper.jar`` and ``java``): a standalone server
   started here on a free 127.0.0.1 port with its own data directory and ``tickTime=500`` (sessions of
   1-10 s), stopped by PID;
3. testcontainers, when a Docker engine answers: the official ``zookeeper`` image;
4. otherwise none: ``find_zookeeper`` raises ``ZooKeeperUnavailable`` with the reason (the fixture
   skips, or fails when ``CI`` is set).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_VAR = "LOGQ_TEST_ZOOKEEPER"
JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_SIMPLE = Path("/usr/share/java/slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
TICK_MS = 500
DOCKER_IMAGE = "zookeeper:3.8"


class ZooKeeperUnavailable(RuntimeError):  # noqa: N818 (a reason to skip, not a failure)
    """No ZooKeeper server can be found or started; the message says why."""


def four_letter_word(host: str, port: int, word: str = "ruok", timeout: float = 1.0) -> str:
    """Send a four-letter command (``ruok``, ``srvr``, ...) and return the answer ("" if unreachable)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def wait_until_ok(host: str, port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if four_letter_word(host, port) == "imok":
            return
        if not alive():
            raise ZooKeeperUnavailable(f"ZooKeeper on {host}:{port} exited while starting")
        time.sleep(0.1)
    raise ZooKeeperUnavailable(f"ZooKeeper on {host}:{port} did not answer ruok with imok in {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalZooKeeper:
    """A standalone server from Debian's package, in ``root`` (config, data dir, log, pid)."""

    def __init__(self, root: Path, *, tick_ms: int = TICK_MS) -> None:
        self.root = root
        self.tick_ms = tick_ms
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connect(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LocalZooKeeper:
        java = shutil.which("java")
        if java is None:
            raise ZooKeeperUnavailable("java is not installed (Debian: apt-get install zookeeper)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.port = _free_port()
            config = self.root / "zoo.cfg"
            config.write_text(
                f"tickTime={self.tick_ms}\n"
                f"dataDir={self.root / 'data'}\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\n"
                "maxClientCnxns=0\n"
                "4lw.commands.whitelist=ruok,srvr,stat,mntr\n"
            )
            classpath = f"{JAR}:{SLF4J_SIMPLE}" if SLF4J_SIMPLE.exists() else str(JAR)
            log = (self.root / "zk.out").open("ab")
            self.proc = subprocess.Popen(
                [java, "-Xmx256m", "-cp", classpath, MAIN_CLASS, str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the test run does not hit it before we stop it
            )
            log.close()
            (self.root / "pid").write_text(f"{self.proc.pid}\n")
            try:
                wait_until_ok("127.0.0.1", self.port, timeout, alive=self._alive)
                return self
            except ZooKeeperUnavailable:
                out = (self.root / "zk.out").read_text(errors="replace")
                self.stop()
                if "Address already in use" in out:
                    continue  # another process took the free port between pick and bind
                raise ZooKeeperUnavailable(
                    f"ZooKeeper did not start on 127.0.0.1:{self.port}; its output ends:\n{out[-2000:]}"
                ) from None
        raise ZooKeeperUnavailable("ZooKeeper could not bind a free port in 3 attempts")

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL after 10 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class ZooKeeperHandle:
    """Where the server is (``HOST:PORT``), where it came from, and how to stop it (if we started it)."""

    connect: str
    source: str
    stop: Callable[[], None]


def _from_package(root: Path) -> ZooKeeperHandle:
    server = LocalZooKeeper(root).start()
    return ZooKeeperHandle(server.connect, f"Debian package ({JAR}), {server.connect}", server.stop)


def _docker_engine_present() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        # A failed probe leaves an unclosed socket behind: collect it here, not in a later test.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker  # type: ignore[import-untyped]

            client: Any = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


def _from_testcontainers() -> ZooKeeperHandle:
    from testcontainers.core.container import DockerContainer

    container: Any = (
        DockerContainer(DOCKER_IMAGE)
        .with_env("ZOO_TICK_TIME", str(TICK_MS))
        .with_env("ZOO_4LW_COMMANDS_WHITELIST", "ruok,srvr,stat,mntr")
        .with_exposed_ports(2181)
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(2181))
        wait_until_ok(host, port, 60)
    except BaseException:
        container.stop()
        raise
    return ZooKeeperHandle(f"{host}:{port}", f"testcontainers ({DOCKER_IMAGE})", container.stop)


def find_zookeeper(root: Path) -> ZooKeeperHandle:
    """A running ZooKeeper (see the module docstring for the order); raises ZooKeeperUnavailable."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        host, _, port = configured.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{ENV_VAR} must be HOST:PORT, not {configured!r}")
        wait_until_ok(host, int(port), 10)
        return ZooKeeperHandle(configured, f"{ENV_VAR}={configured}", lambda: None)
    reasons = []
    if JAR.exists():
        if shutil.which("java"):
            return _from_package(root)
        reasons.append(f"{JAR} is installed but java is not")
    else:
        reasons.append(f"{JAR} is missing (Debian: apt-get install zookeeper)")
    if _docker_engine_present():
        return _from_testcontainers()
    reasons.append("no Docker engine for testcontainers")
    raise ZooKeeperUnavailable(f"no ZooKeeper: {ENV_VAR} is not set, " + "; ".join(reasons))


@contextlib.contextmanager
def zookeeper_server(root: Path) -> Iterator[ZooKeeperHandle]:
    """``find_zookeeper`` as a context manager: stops the server it started on exit."""
    handle = find_zookeeper(root)
    try:
        yield handle
    finally:
        handle.stop()
