"""``logq security ...``: the first admin of a new broker or cluster (no broker needs to run), and a
development TLS set-up on one machine."""

from __future__ import annotations

from pathlib import Path

import click

from cli.passwords import new_password
from logq.coordinator.credentials import check_user_name, write_user_offline
from logq.coordinator.zookeeper import write_user_to_zookeeper
from logq.durable import DirectoryInUseError
from logq.errors import LogqError
from logq.permissions import check_private, make_private_dir
from logq.security.certs import write_dev_certificates
from logq.security.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MECHANISMS, make_credential


@click.group()
def security() -> None:
    """Set up security: the first admin, development certificates (docs/security.md).

    \b
    Examples:
      logq security dev-certs ./certs --client alice
      logq security init --data-dir ./data --admin admin
    """


@security.command("init")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="A standalone broker's.")
@click.option("--zookeeper", metavar="HOST:PORT[/chroot]", help="A cluster's ZooKeeper (zookeeper.connect).")
@click.option("--admin", "user", required=True, metavar="NAME", help="The user to create.")
@click.option(
    "--mechanism",
    "mechanisms",
    type=click.Choice(list(MECHANISMS)),
    multiple=True,
    help="SCRAM mechanism(s) of the credential (default: both).",
)
@click.option(
    "--iterations",
    type=click.IntRange(DEFAULT_ITERATIONS, MAX_ITERATIONS),
    default=DEFAULT_ITERATIONS,
    show_default=True,
)
def security_init(
    data_dir: Path | None, zookeeper: str | None, user: str, mechanisms: tuple[str, ...], iterations: int
) -> None:
    """Create the first user, before any broker runs (as Kafka's kafka-storage format --add-scram): in a
    standalone broker's data directory, or in a cluster's ZooKeeper. The password is asked for twice on
    a terminal, or read as one line from stdin. Later users: logq user create.

    \b
    Examples:
      logq security init --data-dir ./data --admin admin
      printf '%s\\n' "$ADMIN_PASSWORD" | logq security init --zookeeper 127.0.0.1:2181/logq --admin admin
    """
    if (data_dir is None) == (zookeeper is None):
        raise click.UsageError("give either --data-dir or --zookeeper")
    try:
        check_user_name(user)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--admin'") from None
    password = new_password(user)
    credentials = [make_credential(m, password, iterations) for m in mechanisms or MECHANISMS]
    try:
        if data_dir is not None:
            make_private_dir(data_dir)
            check_private(data_dir, "data directory")
            write_user_offline(data_dir, user, credentials)
            where = f"data directory {data_dir}"
        else:
            assert zookeeper is not None
            write_user_to_zookeeper(zookeeper, user, credentials)
            where = f"ZooKeeper {zookeeper}"
    except DirectoryInUseError as exc:
        raise click.ClickException(f"{exc}: with the broker running, use logq user create") from None
    except (LogqError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    names = ", ".join(c.mechanism for c in credentials)
    click.echo(f"created user {user} ({names}) in {where}")


@security.command("dev-certs")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--client", "clients", multiple=True, metavar="USER", help="A client certificate (CN=USER); repeatable."
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="A name or IP the broker certificate covers (default: localhost and 127.0.0.1); repeatable.",
)
def security_dev_certs(directory: Path, clients: tuple[str, ...], hosts: tuple[str, ...]) -> None:
    """Write a development CA, a broker certificate and client certificates into DIRECTORY (keys mode
    0600): TLS on one machine in one command. Not for production: the CA's key is there too.

    \b
    Example:
      logq security dev-certs ./certs --client alice
    """
    try:
        made = write_dev_certificates(directory, list(clients), hosts=list(hosts) or None)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot write certificates to {directory}: {exc}") from None
    click.echo(f"CA certificate:      {made.ca}")
    click.echo(f"broker certificate:  {made.broker_cert}")
    click.echo(f"broker key:          {made.broker_key}")
    for user, (cert, key) in made.clients.items():
        click.echo(f"client {user}: certificate {cert}, key {key}")
