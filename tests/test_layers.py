"""The import layers of docs/architecture.md ("Layers"), checked on the source: each package imports only
the layers below it, and each third-party library is imported by its one owner module. Also: the packages
pyproject.toml installs are exactly the package folders."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each part of logq may import (besides itself and the standard library). "core" is the top-level
# modules of logq (batch.py, errors.py, ...); the facade (logq/__init__.py, logq/aio.py) is the public API.
CORE = "core"
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "security": {CORE},
    "protocol": {CORE},
    "segments": {CORE},
    # the test toolkit (an in-process cluster): everything but the client and the CLI; nothing imports it
    "testing": {
        CORE,
        "security",
        "protocol",
        "segments",
        "coordinator",
        "retention",
        "compaction",
        "groups",
        "broker",
    },
    "coordinator": {CORE, "security"},
    "retention": {CORE, "segments"},
    "compaction": {CORE, "segments"},
    "groups": {CORE, "segments"},
    "client": {CORE, "protocol", "security"},
    # the broker's followers fetch from their leaders with the client's connection
    "broker": {
        CORE,
        "security",
        "protocol",
        "segments",
        "coordinator",
        "retention",
        "compaction",
        "groups",
        "client",
    },
    "facade": {CORE, "client", "security", "protocol"},
    "cli": {CORE, "facade", "client", "security", "protocol", "segments", "coordinator", "broker"},
}

# Each third-party library has one owner module (a path relative to the root).
OWNERS = {
    "rocksdict": "logq/segments/index.py",
    "zstandard": "logq/codec.py",
    "cramjam": "logq/codec.py",
    "crc32c": "logq/batch.py",
    "prometheus_client": "logq/broker/metrics.py",
    "kazoo": "logq/coordinator/zk_store.py",
    "cryptography": "logq/security/certs.py",
}


def part_of_file(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "cli":
        return "cli"
    if len(rel.parts) == 2:
        return "facade" if rel.name in ("__init__.py", "aio.py") else CORE
    return rel.parts[1]


def part_of_module(name: str) -> str | None:
    """The part a logq module belongs to (None: not logq's)."""
    parts = name.split(".")
    if parts[0] in ("cli", "logq_cli"):
        return "cli"
    if parts[0] != "logq":
        return None
    if len(parts) == 1:
        return "facade"
    if (ROOT / "logq" / parts[1]).is_dir():
        return parts[1]
    return "facade" if parts[1] == "aio" else CORE


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports, with the line (relative imports resolved inside logq)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = list(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                module = ".".join([*base, *([module] if module else [])])
            if module == "logq":  # from logq import batch: the module logq.batch
                found += [(f"logq.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((module, node.lineno))
    return found


SOURCES = sorted([*(ROOT / "logq").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_down(path: Path) -> None:
    mine = part_of_file(path)
    for module, line in imports(path):
        theirs = part_of_module(module)
        if theirs is not None and theirs != mine:
            assert theirs in ALLOWED[mine], f"{path.relative_to(ROOT)}:{line}: {mine} imports {module}"
        top = module.split(".")[0]
        if top in OWNERS:
            assert str(path.relative_to(ROOT)) == OWNERS[top], (
                f"{path.relative_to(ROOT)}:{line}: imports {top}, which only {OWNERS[top]} may import"
            )


def test_installed_packages_are_the_package_folders() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "logq").rglob("__init__.py")} | {
        "logq_cli"
    }
    assert listed == folders


def _fresh(code: str) -> object:
    """What ``code`` prints (as JSON) in a new interpreter, where nothing of logq is imported yet."""
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_broker_does_not_load_the_client_through_the_facade() -> None:
    """Importing any part of logq runs logq/__init__.py, which exports the client: it imports it on first
    use, so the broker loads only the client modules it uses (its followers' connection)."""
    loaded = _fresh(
        "import json, sys, logq.broker.app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('logq.client'))))"
    )
    assert isinstance(loaded, list)
    assert "logq.client.producer" not in loaded
    assert not {"logq.client.consumer", "logq.client.admin", "logq.client.sync_producer"} & set(loaded)


@pytest.mark.parametrize("facade", ["logq", "logq.aio"])
def test_the_facade_exports_every_name_it_lists(facade: str) -> None:
    exported = _fresh(
        f"import importlib, json; f = importlib.import_module({facade!r})\n"
        "print(json.dumps({'all': f.__all__, 'found': [n for n in f.__all__ if hasattr(f, n)],"
        " 'dir': sorted(set(f.__all__) - set(dir(f)))}))"
    )
    assert isinstance(exported, dict)
    assert exported["all"] == sorted(exported["all"])
    assert exported["found"] == exported["all"]
    assert exported["dir"] == []
