"""What every client command shares: the global settings (bootstrap, output format), one-line errors, and
tables or JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import click

from logq.client.cluster import DEFAULT_BOOTSTRAP, parse_bootstrap
from logq.errors import BrokerUnavailableError, LogqError

FORMATS = ("table", "json")


@dataclass
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    fmt: str = "table"


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
