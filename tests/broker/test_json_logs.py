"""``--log-format json`` / ``log.format = "json"``: the broker writes one JSON event per line on stderr
(time, level, logger, message, fields), the exception's text as a field; a bad format is refused in one
line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from logq.broker.log_format import JsonLinesFormatter
from tests.broker_process import ROOT, BrokerProcess, free_port

KEYS = {"time", "level", "logger", "message", "fields"}


def _events(lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        event = json.loads(line)  # every line is one whole event
        assert set(event) == KEYS, line
        assert event["time"].endswith("Z")
        assert event["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(event["fields"]["process"], int)
        events.append(event)
    return events


def test_a_broker_logging_json_writes_one_event_per_line(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", broker={"log.format": "json"}).start()
    try:
        logq = [sys.executable, "-m", "logq_cli.main", "-b", broker.bootstrap]
        subprocess.run(
            [*logq, "queue", "create", "orders", "-p", "2"], check=True, timeout=60, capture_output=True
        )
        assert broker.stop() == 0
    finally:
        broker.kill()
    events = _events(broker.output)
    messages = {(e["logger"], e["message"].split(" (")[0]) for e in events}
    assert ("logq.broker.app", f"listening on {broker.bootstrap}") in messages
    assert ("logq.broker.run", "shutting down") in messages
    assert all(e["level"] == "INFO" for e in events if e["logger"] == "logq.broker.app")


def test_the_log_format_flag_overrides_the_setting(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "broker.toml"
    config.write_text('[broker]\n"log.format" = "text"\n')
    start = [sys.executable, "-m", "logq_cli.main", "broker", "start", "--config", str(config)]
    flags = ["--data-dir", str(tmp_path / "data"), "--listen", listen, "--log-format", "json"]
    lines: list[str] = []
    with subprocess.Popen([*start, *flags], cwd=ROOT, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                assert line, "the broker exited: " + "".join(lines)
                lines.append(line)
                if "listening on" in line:
                    break
            proc.terminate()
            lines += proc.stderr.readlines()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    events = _events(lines)
    assert any(e["message"].startswith(f"listening on {listen}") for e in events)


def test_an_unknown_log_format_is_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('[broker]\n"log.format" = "xml"\n')
    start = [sys.executable, "-m", "logq_cli.main", "broker", "start", "--data-dir", str(tmp_path / "d")]
    result = subprocess.run(
        [*start, "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert result.stderr == "Error: broker setting 'log.format' must be one of text, json, not 'xml'\n"
    flag = subprocess.run(
        [*start, "--log-format", "xml"], capture_output=True, text=True, timeout=60, check=False
    )
    assert flag.returncode != 0
    assert "Invalid value for '--log-format'" in flag.stderr
    assert "Traceback" not in flag.stderr


def test_an_exception_and_extra_values_go_in_the_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    logger = logging.getLogger("logq.test.json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logger.exception("handling %s failed", "orders-0", extra={"queue": "orders", "partition": 0})
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # the traceback's newlines are escaped inside the line
    event = _events(lines)[0]
    assert event["level"] == "ERROR"
    assert event["logger"] == "logq.test.json_logs"
    assert event["message"] == "handling orders-0 failed"
    assert event["fields"]["queue"] == "orders"
    assert event["fields"]["partition"] == 0
    assert event["fields"]["exception"].startswith("Traceback (most recent call last):")
    assert event["fields"]["exception"].endswith("ValueError: bad\nvalue")


WARN_AND_FAIL_IN_A_THREAD = """
import threading, warnings
from logq.broker.log_format import configure_logging
configure_logging("json")
warnings.warn("a setting is deprecated", UserWarning)
thread = threading.Thread(target=lambda: 1 / 0, name="worker")
thread.start()
thread.join()
"""


def test_warnings_and_uncaught_thread_exceptions_are_json_events_too() -> None:
    """Python prints these on stderr by itself: in JSON mode they must not break the stream."""
    result = subprocess.run(
        [sys.executable, "-c", WARN_AND_FAIL_IN_A_THREAD],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    events = _events(result.stderr.splitlines())
    assert [(e["level"], e["logger"]) for e in events] == [
        ("WARNING", "py.warnings"),
        ("ERROR", "logq.broker"),
    ]
    assert "a setting is deprecated" in events[0]["message"]
    assert events[1]["message"] == "uncaught exception in thread worker"
    assert events[1]["fields"]["exception"].endswith("ZeroDivisionError: division by zero")
