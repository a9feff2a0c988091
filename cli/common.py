"""What every client command shares: the global settings (bootstrap, output format, security), one-line
errors, and tables or JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from logq.client.cluster import DEFAULT_BOOTSTRAP, parse_bootstrap
from logq.errors import BrokerUnavailableError, LogqError
from logq_cli.passwords import client_password

FORMATS = ("table", "json")


@dataclass
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    fmt: str = "table"
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    user: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    _resolved: dict[str, Any] | None = field(default=None, repr=False)

    def security(self) -> dict[str, Any]:
        """The client settings the global security options give (only those given); the password is
        read once, from --password-file, $LOGQ_PASSWORD or a prompt."""
        if self._resolved is None:
            out: dict[str, Any] = {}
            if self.user is not None:
                out["sasl_username"] = self.user
                out["sasl_password"] = client_password(self.user, self.password_file)
                # --user alone means SASL; with TLS files too, SASL_SSL
                tls = self.ca_file is not None or self.cert_file is not None
                out["security_protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
            elif self.ca_file is not None or self.cert_file is not None:
                out["security_protocol"] = "SSL"
            if self.security_protocol is not None:
                out["security_protocol"] = self.security_protocol
            if self.sasl_mechanism is not None:
                out["sasl_mechanism"] = self.sasl_mechanism
            for name, path in (
                ("ssl_cafile", self.ca_file),
                ("ssl_certfile", self.cert_file),
                ("ssl_keyfile", self.key_file),
            ):
                if path is not None:
                    out[name] = str(path)
            self._resolved = out
        return dict(self._resolved)

    def security_flags(self) -> dict[str, str]:
        """Setting -> the global option that gave it (-X may not give it again)."""
        return {name: SECURITY_FLAGS[name] for name in self.security()}


SECURITY_FLAGS = {
    "security_protocol": "--security-protocol",
    "sasl_mechanism": "--sasl-mechanism",
    "sasl_username": "--user",
    "sasl_password": "--password-file or $LOGQ_PASSWORD",
    "ssl_cafile": "--ca-file",
    "ssl_certfile": "--cert-file",
    "ssl_keyfile": "--key-file",
}


def security_options(func: Any) -> Any:
    """The global security options of ``logq`` (before the command name)."""
    options = [
        click.option(
            "--security-protocol",
            type=click.Choice(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], case_sensitive=False),
            help="How to talk to the brokers (default: SASL_* with --user, SSL with --ca-file, else "
            "PLAINTEXT).",
        ),
        click.option(
            "--sasl-mechanism",
            type=click.Choice(["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"], case_sensitive=False),
            help="SASL mechanism (default SCRAM-SHA-256).",
        ),
        click.option(
            "--user", metavar="NAME", help="Log in as NAME (SASL); the password: see --password-file."
        ),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Read --user's password from the first line of FILE (else $LOGQ_PASSWORD, else a prompt).",
        ),
        click.option(
            "--ca-file", type=click.Path(dir_okay=False, path_type=Path), help="The brokers' CA (PEM)."
        ),
        click.option(
            "--cert-file", type=click.Path(dir_okay=False, path_type=Path), help="A client certificate (PEM)."
        ),
        click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="Its key (PEM)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings(ctx: click.Context) -> Settings:
    """The global options, found on the root context."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings(os.environ.get("LOGQ_BOOTSTRAP", DEFAULT_BOOTSTRAP))
    return root.obj


def client_options(func: Any) -> Any:
    """``-b`` and ``--format`` on a subcommand too (``logq queue list -b host:port``): they override the
    global ones given before the command name."""

    def set_bootstrap(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            settings(ctx).bootstrap = value

    def set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            settings(ctx).fmt = value

    func = click.option(
        "--format",
        "_fmt",
        type=click.Choice(FORMATS),
        default=None,
        expose_value=False,
        callback=set_format,
        help="Output as a table (default) or JSON.",
    )(func)
    return click.option(
        "-b",
        "--bootstrap",
        "_bootstrap",
        metavar="HOST:PORT[,...]",
        default=None,
        expose_value=False,
        callback=set_bootstrap,
        help=f"Brokers to contact (default {DEFAULT_BOOTSTRAP}, or $LOGQ_BOOTSTRAP).",
    )(func)


@contextlib.contextmanager
def one_line_errors(bootstrap: str | None = None) -> Iterator[None]:
    """Turn what the client raises into one ``Error: ...`` line and exit status 1 (no traceback).

    The client's messages name the brokers themselves (``cannot reach a broker at HOST:PORT: connection
    refused``), so ``bootstrap`` is only named for an error that names no broker."""
    try:
        yield
    except BrokerUnavailableError as exc:
        message = str(exc)
        if bootstrap and ":" not in message:
            message = f"brokers at {bootstrap}: {message}"
        raise click.ClickException(message) from None
    except (LogqError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except TimeoutError as exc:
        raise click.ClickException(f"timed out: {exc}") from None


class _ClientWarnings(logging.Handler):
    """Writes to whatever stderr is when a record comes (click's, so that tests capture it too), first
    clearing a progress line a terminal may show."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clear = "\r\x1b[K" if sys.stderr.isatty() else ""
            click.echo(f"{clear}warning: {record.getMessage()}", err=True)
        except Exception:
            self.handleError(record)


def show_client_warnings() -> None:
    """The client's warnings (a missing queue, an offset reset, an undelivered record at close) on
    stderr as ``warning: ...`` lines; its info and debug messages stay quiet. For the client commands
    only: the broker configures its own logging."""
    client_log = logging.getLogger("logq.client")
    if not any(isinstance(h, _ClientWarnings) for h in client_log.handlers):
        client_log.addHandler(_ClientWarnings(logging.WARNING))


def check_bootstrap(value: str) -> str:
    try:
        parse_bootstrap(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'-b/--bootstrap'") from None
    return value


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=None, separators=(",", ":"), default=str))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns as wide as their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    click.echo(line(headers))
    for row in cells:
        click.echo(line(row))
