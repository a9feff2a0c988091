"""The ``logq`` command line (click). Commands only parse arguments and call into ``logq``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from logq import __version__
from logq.broker.config import BrokerConfig
from logq.broker.run import run_broker
from logq.client.cluster import DEFAULT_BOOTSTRAP
from logq.errors import LogqError
from logq.segments import LogManager
from logq_cli.acl_commands import acl
from logq_cli.broker_commands import broker_config
from logq_cli.client_commands import consume, produce
from logq_cli.common import FORMATS, Settings, check_bootstrap, security_options
from logq_cli.group_commands import group
from logq_cli.perf_commands import perf
from logq_cli.queue_commands import admin, queue
from logq_cli.quota_commands import quota
from logq_cli.security_commands import security
from logq_cli.user_commands import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="logq")
@click.option(
    "-b",
    "--bootstrap",
    metavar="HOST:PORT[,...]",
    envvar="LOGQ_BOOTSTRAP",
    default=DEFAULT_BOOTSTRAP,
    show_default=True,
    callback=lambda _ctx, _param, value: check_bootstrap(value),
    help="Brokers for the client commands (also $LOGQ_BOOTSTRAP).",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@security_options
@click.pass_context
def main(
    ctx: click.Context,
    /,
    *,
    bootstrap: str,
    fmt: str,
    security_protocol: str | None,
    sasl_mechanism: str | None,
    user: str | None,
    password_file: Path | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> None:
    """logq: a Kafka-style message queue.

    \b
    Examples:
      logq broker start
      logq queue create orders -p 6
      echo hello | logq produce orders
      logq consume orders -o beginning -e
      logq group describe billing
      logq acl add --allow-principal User:alice --operation read --queue orders
      logq --user alice --ca-file certs/ca.pem -b 127.0.0.1:9095 queue list   # SASL_SSL
    """
    ctx.obj = Settings(
        bootstrap, fmt, security_protocol, sasl_mechanism, user, password_file, ca_file, cert_file, key_file
    )


main.add_command(queue)
main.add_command(admin)
main.add_command(group)
main.add_command(produce)
main.add_command(consume)
main.add_command(perf)
main.add_command(acl)
main.add_command(security)
main.add_command(user)
main.add_command(quota)


@main.group()
def broker() -> None:
    """Run a broker, and change its settings while it runs.

    \b
    Examples:
      logq broker start --data-dir ./data
      logq broker config --set retention.ms=86400000
    """


broker.add_command(broker_config)


@broker.command("start")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML settings file (see configs/standalone.toml).",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: ./data")
@click.option("--listen", metavar="HOST:PORT", help="Default: 127.0.0.1:9092")
@click.option("--advertised-listener", metavar="HOST:PORT", help="The address clients are told to use.")
@click.option("--metrics-listen", metavar="HOST:PORT", help="Serve Prometheus metrics here.")
@click.option(
    "--zookeeper",
    metavar="HOST:PORT[/chroot]",
    help="Cluster mode (preview): join the cluster kept in this ZooKeeper (setting zookeeper.connect).",
)
@click.option("--broker-id", type=int, help="This broker's id, unique in the cluster (setting broker.id).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines on stderr: text, or json (one event a line, for log shippers; setting log.format).",
)
def broker_start(
    *,
    config_file: Path | None,
    data_dir: Path | None,
    listen: str | None,
    advertised_listener: str | None,
    metrics_listen: str | None,
    zookeeper: str | None,
    broker_id: int | None,
    log_format: str | None,
) -> None:
    """Start a broker: standalone (no ZooKeeper), or a cluster member with --zookeeper. Flags override
    the config file.

    \b
    Examples:
      logq broker start --data-dir ./data --listen 127.0.0.1:9092 --metrics-listen 127.0.0.1:9100
      logq broker start --zookeeper 127.0.0.1:2181/logq --broker-id 1 --data-dir ./data-1 \\
          --listen 127.0.0.1:9093
    """
    overrides = {
        "data.dir": data_dir,
        "listen": listen,
        "advertised.listener": advertised_listener,
        "metrics.listen": metrics_listen,
        "zookeeper.connect": zookeeper,
        "broker.id": broker_id,
        "log.format": log_format,
    }
    try:
        config = BrokerConfig.load(config_file, overrides)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        run_broker(config)
    except LogqError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. the port is taken
        raise click.ClickException(f"cannot start the broker: {exc}") from None


@main.group()
def storage() -> None:
    """Inspect a broker's data directory.

    \b
    Example:
      logq storage inspect ./data
    """


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
