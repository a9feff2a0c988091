"""The ``logq`` command line (click). Commands only parse arguments and call into ``logq``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from logq import __version__
from logq.errors import LogqError
from logq.segments import LogManager


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="logq")
def main() -> None:
    """logq: a Kafka-style message queue."""


@main.group()
def broker() -> None:
    """Run a broker."""


@broker.command("start")
def broker_start() -> None:
    """Start a standalone broker (not built yet: the storage engine exists, the network server is next)."""
    click.echo(
        "logq: the broker's network server is not built yet; the storage engine is "
        "(try: logq storage inspect ./data)",
        err=True,
    )
    sys.exit(2)


@main.group()
def storage() -> None:
    """Inspect a broker's data directory."""


@storage.command("inspect")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def storage_inspect(data_dir: Path, fmt: str) -> None:
    """Open DATA_DIR (recovering it if needed) and list its partitions.

    \b
    Example:
      logq storage inspect ./data --format json
    """
    if not data_dir.is_dir():
        raise click.ClickException(f"{data_dir} is not a directory")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        manager = LogManager(data_dir)
    except LogqError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        dropped = {report.name: report.truncated_bytes for report in manager.reports}
        rows = [
            {
                "queue": queue,
                "partition": partition,
                "log_start_offset": plog.log_start_offset,
                "log_end_offset": plog.log_end_offset,
                "segments": len(plog.segment_infos()),
                "bytes": plog.size_bytes,
                "recovery_dropped_bytes": dropped.get(plog.name, 0),
            }
            for (queue, partition), plog in zip(manager.partitions(), manager.logs(), strict=True)
        ]
    finally:
        manager.close()
    if fmt == "json":
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'QUEUE':<30} {'PART':>4} {'START':>12} {'END':>12} {'SEGS':>5} {'BYTES':>14}")
    for row in rows:
        click.echo(
            f"{row['queue']:<30} {row['partition']:>4} {row['log_start_offset']:>12} "
            f"{row['log_end_offset']:>12} {row['segments']:>5} {row['bytes']:>14}"
        )


if __name__ == "__main__":
    main()
