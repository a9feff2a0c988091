"""``logq user ...``: users (SCRAM credentials) over the wire, with the admin's global options
(``--user``, ``--ca-file``, ...). Passwords are prompted for, or read as one line from stdin; never
taken from the command line."""

from __future__ import annotations

import click

from logq.client.sync_admin import Admin
from logq.coordinator.credentials import check_user_name
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.security.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MECHANISMS
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings
from logq_cli.passwords import new_password

_MECHANISM_OPTION = click.option(
    "--mechanism",
    "mechanisms",
    type=click.Choice(list(MECHANISMS)),
    multiple=True,
    help="SCRAM mechanism(s) of the credential (default: both); repeatable.",
)
_ITERATIONS_OPTION = click.option(
    "--iterations",
    type=click.IntRange(DEFAULT_ITERATIONS, MAX_ITERATIONS),
    default=DEFAULT_ITERATIONS,
    show_default=True,
)


@click.group()
def user() -> None:
    """Users who log in with SASL (SCRAM, and PLAIN against the same credentials). Use a TLS listener:
    the credentials travel salted and hashed, but an eavesdropper could replay them.

    \b
    Example:
      logq -b 127.0.0.1:9093 --ca-file certs/ca.pem --user admin user create orders-app
    """


def _exists(admin: Admin, name: str) -> bool:
    try:
        admin.list_users([name])
    except LogqError as exc:
        if exc.code == ErrorCode.RESOURCE_NOT_FOUND:
            return False
        raise
    return True


def _checked(name: str) -> str:
    try:
        check_user_name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'NAME'") from None
    return name


@user.command("create")
@click.argument("name")
@_MECHANISM_OPTION
@_ITERATIONS_OPTION
@client_options
@click.pass_context
def user_create(ctx: click.Context, name: str, mechanisms: tuple[str, ...], iterations: int) -> None:
    """Create user NAME; its password is asked for twice on a terminal, or read as one line from stdin.

    \b
    Examples:
      logq --user admin user create orders-app
      printf '%s\\n' "$APP_PASSWORD" | logq --user admin user create orders-app
    """
    opts = settings(ctx)
    _checked(name)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        if _exists(admin, name):
            raise click.ClickException(
                f"user {name} exists: change its password with logq user passwd {name}"
            )
        password = new_password(name)
        admin.set_user_password(name, password, mechanisms=mechanisms or MECHANISMS, iterations=iterations)
    _done(opts.fmt, name, "created")


@user.command("passwd")
@click.argument("name")
@_MECHANISM_OPTION
@_ITERATIONS_OPTION
@client_options
@click.pass_context
def user_passwd(ctx: click.Context, name: str, mechanisms: tuple[str, ...], iterations: int) -> None:
    """Give user NAME a new password (asked for twice, or one line from stdin).

    \b
    Example:
      logq --user admin user passwd orders-app
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        if not _exists(admin, name):
            raise click.ClickException(f"no user {name}: create it with logq user create {name}")
        password = new_password(name)
        admin.set_user_password(name, password, mechanisms=mechanisms or MECHANISMS, iterations=iterations)
    _done(opts.fmt, name, "password changed")


@user.command("delete")
@click.argument("name")
@client_options
@click.pass_context
def user_delete(ctx: click.Context, name: str) -> None:
    """Delete user NAME (every credential it has). Its open connections stay logged in until they close.

    \b
    Example:
      logq --user admin user delete orders-app
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        if not _exists(admin, name):
            raise click.ClickException(f"no user {name}")
        admin.delete_user(name)
    _done(opts.fmt, name, "deleted")


@user.command("list")
@client_options
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List users and their SCRAM mechanisms (never a password or a hash).

    \b
    Example:
      logq --user admin user list --format json
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        users = admin.list_users()
    if opts.fmt == "json":
        print_json(
            [
                {"user": name, "mechanisms": [{"mechanism": m, "iterations": i} for m, i in creds]}
                for name, creds in sorted(users.items())
            ]
        )
        return
    print_table(
        ["USER", "MECHANISMS"],
        [[name, ", ".join(f"{m} ({i})" for m, i in creds)] for name, creds in sorted(users.items())],
    )


def _done(fmt: str, name: str, what: str) -> None:
    if fmt == "json":
        print_json({"user": name, "result": what})
    else:
        click.echo(f"user {name}: {what}")
