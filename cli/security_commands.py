"""``logq security ...``: the first admin of a new broker or cluster (no broker needs to run), ZooKeeper
ACLs on an existing cluster's znodes, and a development TLS set-up on one machine."""

from __future__ import annotations

from pathlib import Path

import click

from logq.coordinator.credentials import check_user_name, write_user_offline
from logq.coordinator.zk_auth import DIGEST_ENV, ZkDigest, load_zk_digest
from logq.coordinator.zookeeper import write_user_to_zookeeper, zookeeper_acl_plan
from logq.durable import DirectoryInUseError
from logq.errors import LogqError
from logq.permissions import check_private, make_private_dir
from logq.security.certs import write_dev_certificates
from logq.security.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MECHANISMS, make_credential
from logq_cli.passwords import new_password


@click.group()
def security() -> None:
    """Set up security: the first admin, development certificates (docs/security.md).

    \b
    Examples:
      logq security dev-certs ./certs --client alice
      logq security init --data-dir ./data --admin admin
      logq security zk-acls --zookeeper 127.0.0.1:2181/logq --zookeeper-digest-file zk.digest --apply
    """


def _zookeeper_digest(digest_file: Path | None) -> ZkDigest | None:
    try:
        return load_zk_digest(digest_file)
    except (LogqError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


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
@click.option(
    "--zookeeper-digest-file",
    "digest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"With --zookeeper: a private file whose first line is the ZooKeeper digest user:password (else "
    f"${DIGEST_ENV}); what is created then gets the brokers' ZooKeeper ACLs (zookeeper.set.acl).",
)
def security_init(
    *,
    data_dir: Path | None,
    zookeeper: str | None,
    user: str,
    mechanisms: tuple[str, ...],
    iterations: int,
    digest_file: Path | None,
) -> None:
    """Create the first user, before any broker runs (as Kafka's kafka-storage format --add-scram): in a
    standalone broker's data directory, or in a cluster's ZooKeeper. The password is asked for twice on
    a terminal, or read as one line from stdin. Later users: logq user create.

    \b
    Examples:
      logq security init --data-dir ./data --admin admin
      printf '%s\\n' "$ADMIN_PASSWORD" | logq security init --zookeeper 127.0.0.1:2181/logq --admin admin
      printf '%s\\n' "$ADMIN_PASSWORD" | logq security init --zookeeper 127.0.0.1:2181/logq --admin admin \\
          --zookeeper-digest-file /etc/logq/zookeeper.digest
    """
    if (data_dir is None) == (zookeeper is None):
        raise click.UsageError("give either --data-dir or --zookeeper")
    if digest_file is not None and zookeeper is None:
        raise click.UsageError("--zookeeper-digest-file goes with --zookeeper")
    digest = _zookeeper_digest(digest_file) if zookeeper is not None else None
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
            write_user_to_zookeeper(zookeeper, user, credentials, digest=digest)
            where = f"ZooKeeper {zookeeper}"
    except DirectoryInUseError as exc:
        raise click.ClickException(f"{exc}: with the broker running, use logq user create") from None
    except (LogqError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    names = ", ".join(c.mechanism for c in credentials)
    click.echo(f"created user {user} ({names}) in {where}")


@security.command("zk-acls")
@click.option(
    "--zookeeper", required=True, metavar="HOST:PORT[/chroot]", help="The cluster's zookeeper.connect."
)
@click.option(
    "--zookeeper-digest-file",
    "digest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"A private file whose first line is the ZooKeeper digest user:password (else ${DIGEST_ENV}): the "
    "user the brokers authenticate as.",
)
@click.option("--apply", is_flag=True, help="Set the ACLs (without it: only list the znodes to change).")
def security_zk_acls(zookeeper: str, digest_file: Path | None, apply: bool) -> None:
    """List, or with --apply set, the ZooKeeper ACLs of an existing cluster's znodes: those brokers with
    zookeeper.set.acl give the znodes they create (digest user: everything; others: read, except the
    secret ones). For a cluster made before ACLs were turned on, as Kafka's
    zookeeper-security-migration. Run it with the brokers already on zookeeper.set.acl.

    \b
    Examples:
      LOGQ_ZOOKEEPER_DIGEST=logq:secret logq security zk-acls --zookeeper 127.0.0.1:2181/logq
      logq security zk-acls --zookeeper 127.0.0.1:2181/logq --zookeeper-digest-file zk.digest --apply
    """
    digest = _zookeeper_digest(digest_file)
    if digest is None:
        raise click.UsageError(
            f"ZooKeeper ACLs need the digest credentials: --zookeeper-digest-file or ${DIGEST_ENV}"
        )
    try:
        paths = zookeeper_acl_plan(zookeeper, digest, apply=apply)
    except (LogqError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(path)
    if apply:
        click.echo(f"set the ACLs of {len(paths)} znode(s) under {zookeeper} (digest user {digest.user!r})")
    else:
        click.echo(f"{len(paths)} znode(s) under {zookeeper} lack their ACLs: --apply sets them")


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
