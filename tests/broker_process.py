"""A real broker process on 127.0.0.1 for tests: started with ``logq broker start``, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', '\\"') + '"'


class _PortTakenError(RuntimeError):
    pass


class _StaleRegistrationError(RuntimeError):
    """A cluster broker killed during an earlier attempt is still registered until its ZooKeeper session
    expires (the tests' sessions last a few seconds)."""


class BrokerProcess:
    """``broker`` and ``log`` are the [broker] and [log] settings written to the broker's config file.

    ``listeners`` (name -> security protocol) gives the broker those listeners on free ports of
    127.0.0.1 instead of ``--listen`` (``advertised``: name -> the HOST:PORT Metadata tells its
    clients); ``address(name)`` is each one's HOST:PORT, ``bootstrap`` the first's. ``env`` adds
    environment variables to the broker process's."""

    def __init__(
        self,
        data_dir: Path,
        *,
        broker: Mapping[str, Any] | None = None,
        log: Mapping[str, Any] | None = None,
        port: int | None = None,
        listeners: Mapping[str, str] | None = None,
        advertised: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.config_path = data_dir.parent / f"broker-{self.port}.toml"
        self._settings = {"delete.queue.enable": True, **(broker or {})}
        self._log = dict(log or {})
        self._listeners = dict(listeners or {})
        self._advertised = dict(advertised or {})
        self._env = dict(env or {})  # added to the test's environment (e.g. a password variable)
        self.ports: dict[str, int] = {}
        self._write_config()
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def _write_config(self) -> None:
        settings = dict(self._settings)
        if self._listeners:
            ports = [self.port] + [free_port() for _ in range(len(self._listeners) - 1)]
            self.ports = dict(zip(self._listeners, ports, strict=True))
            settings["listeners"] = ",".join(f"{name}://127.0.0.1:{p}" for name, p in self.ports.items())
            settings["listener.security.protocol.map"] = ",".join(
                f"{n}:{p}" for n, p in self._listeners.items()
            )
            if self._advertised:
                settings["advertised.listeners"] = ",".join(f"{n}://{a}" for n, a in self._advertised.items())
        lines = ["[broker]"] + [f'"{k}" = {_toml_value(v)}' for k, v in settings.items()]
        lines += ["[log]"] + [f'"{k}" = {_toml_value(v)}' for k, v in self._log.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def start(self, timeout: float = 30) -> BrokerProcess:
        for _attempt in range(5):
            try:
                return self._start_once(timeout)
            except _PortTakenError:
                if self._fixed_port:
                    raise
                self.port = free_port()  # another process took the free port between pick and bind
                if self._listeners:
                    self._write_config()
            except _StaleRegistrationError:
                time.sleep(1)  # the attempt before registered, then lost its port: wait out its session
        return self._start_once(timeout)

    def _start_once(self, timeout: float) -> BrokerProcess:
        self.output = []
        listen = [] if self._listeners else ["--listen", self.bootstrap]
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "logq_cli.main", "broker", "start",
                "--config", str(self.config_path),
                "--data-dir", str(self.data_dir),
                *listen,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **self._env},
        )  # fmt: skip
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(self.proc, ready), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                text = "".join(self.output[-30:])
                if "address already in use" in text.lower():
                    raise _PortTakenError(text)
                if "is already registered by another live ZooKeeper session" in text:
                    raise _StaleRegistrationError(text)
                raise RuntimeError("broker did not start:\n" + text)
        return self

    def _pump(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            if "listening on" in line:
                ready.set()
        proc.stdout.close()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM: a clean shutdown. Returns the exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        self._signal(signal.SIGKILL, 30)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def _signal(self, sig: int, timeout: float) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
        code = proc.wait(timeout)
        time.sleep(0.05)  # let the output pump drain
        return code

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    @property
    def log_text(self) -> str:
        return "".join(self.output)
