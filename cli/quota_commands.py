"""``logq quota ...``: client quotas (Kafka's KIP-219 throttling) by user and/or client id, over
DescribeClientQuotas / AlterClientQuotas. ``--user`` and ``--client-id`` here name the quota's entity;
the admin's own login is the global ``logq --user``."""

from __future__ import annotations

import re
from typing import Any

import click

from logq.client.sync_admin import Admin
from logq.quotas import (
    CONSUMER_BYTE_RATE,
    CONTROLLER_MUTATION_RATE,
    DEFAULT,
    PRODUCER_BYTE_RATE,
    QUOTA_KEYS,
    REQUEST_PERCENTAGE,
    QuotaEntity,
)
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_byte_rate(text: str) -> int:
    """``10MB`` -> 10,000,000 bytes per second; ``512KiB`` -> 524,288; a bare number is bytes."""
    match = _RATE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise click.BadParameter(f"{text!r} is not a byte rate (e.g. 1048576, 10MB, 512KiB)")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise click.BadParameter(f"{text!r}: a byte rate must be above 0")
    return value


class _ByteRate(click.ParamType[int]):
    name = "RATE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_byte_rate(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _entity_options(func: Any) -> Any:
    for option in reversed(
        (
            click.option("--user", "user", help="The user the quota applies to (the name it logs in with)."),
            click.option("--default-user", is_flag=True, help="Every user without a quota of its own."),
            click.option("--client-id", "client_id", help="The client id the quota applies to."),
            click.option(
                "--default-client-id", is_flag=True, help="Every client id without a quota of its own."
            ),
        )
    ):
        func = option(func)
    return func


def _entity(
    user: str | None, default_user: bool, client_id: str | None, default_client_id: bool
) -> QuotaEntity:
    if user is not None and default_user:
        raise click.UsageError("give --user or --default-user, not both")
    if client_id is not None and default_client_id:
        raise click.UsageError("give --client-id or --default-client-id, not both")
    if user == "" or client_id == "":
        raise click.UsageError("an empty name: use --default-user or --default-client-id for the default")
    entity = QuotaEntity(DEFAULT if default_user else user, DEFAULT if default_client_id else client_id)
    if entity.user is None and entity.client_id is None:
        raise click.UsageError("name the entity: --user, --client-id, or their --default-* forms")
    return entity


def _name(value: str | None) -> str:
    return "" if value is None else "(default)" if value == DEFAULT else value


@click.group()
def quota() -> None:
    """Client quotas: byte rates and request time per user and/or client id, Kafka's way. A client over
    its quota gets its answer at once with a throttle time and is not read from for that long.

    \b
    Examples:
      logq quota set --user alice --client-id app --producer-byte-rate 10MB
      logq quota set --default-client-id --consumer-byte-rate 50MB
      logq quota list
      logq quota remove --user alice --client-id app
    """


@quota.command("set")
@_entity_options
@click.option("--producer-byte-rate", type=_ByteRate(), help="Bytes per second produced (e.g. 10MB, 512KiB).")
@click.option("--consumer-byte-rate", type=_ByteRate(), help="Bytes per second fetched.")
@click.option(
    "--request-percentage",
    type=click.FloatRange(min=0, min_open=True),
    help="Share of request-handling time.",
)
@click.option(
    "--controller-mutation-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Partitions created or deleted per second.",
)
@client_options
@click.pass_context
def quota_set(
    ctx: click.Context,
    *,
    user: str | None,
    default_user: bool,
    client_id: str | None,
    default_client_id: bool,
    producer_byte_rate: int | None,
    consumer_byte_rate: int | None,
    request_percentage: float | None,
    controller_mutation_rate: float | None,
) -> None:
    """Set quotas of one entity (other keys it has are kept).

    \b
    Example:
      logq quota set --user alice --producer-byte-rate 10MB --consumer-byte-rate 20MB
    """
    entity = _entity(user, default_user, client_id, default_client_id)
    values = {
        PRODUCER_BYTE_RATE: producer_byte_rate,
        CONSUMER_BYTE_RATE: consumer_byte_rate,
        REQUEST_PERCENTAGE: request_percentage,
        CONTROLLER_MUTATION_RATE: controller_mutation_rate,
    }
    changes: dict[str, float | None] = {k: float(v) for k, v in values.items() if v is not None}
    if not changes:
        raise click.UsageError("give at least one quota: --producer-byte-rate, --consumer-byte-rate, ...")
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        admin.alter_client_quotas(entity, changes)
    _done(opts.fmt, entity, "set")


@quota.command("remove")
@_entity_options
@click.option(
    "--key",
    "keys",
    type=click.Choice(sorted(QUOTA_KEYS)),
    multiple=True,
    help="Remove only this quota (repeatable); default: every quota of the entity.",
)
@client_options
@click.pass_context
def quota_remove(
    ctx: click.Context,
    *,
    user: str | None,
    default_user: bool,
    client_id: str | None,
    default_client_id: bool,
    keys: tuple[str, ...],
) -> None:
    """Remove quotas of one entity.

    \b
    Example:
      logq quota remove --user alice --client-id app --key producer_byte_rate
    """
    entity = _entity(user, default_user, client_id, default_client_id)
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        if not keys:
            exact = admin.list_client_quotas(user=entity.user, client_id=entity.client_id)
            keys = tuple(exact.get(entity, {}))
            if not keys:
                raise click.ClickException(f"no quota is set for {entity.describe()}")
        admin.alter_client_quotas(entity, dict.fromkeys(keys))
    _done(opts.fmt, entity, "removed")


@quota.command("list")
@click.option("--user", "user", help="Only entities naming this user.")
@click.option("--client-id", "client_id", help="Only entities naming this client id.")
@client_options
@click.pass_context
def quota_list(ctx: click.Context, user: str | None, client_id: str | None) -> None:
    """List client quotas (the user or client id "(default)" is the default entity).

    \b
    Example:
      logq quota list --format json
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        quotas = admin.list_client_quotas(user=user, client_id=client_id)
    rows = sorted(quotas.items(), key=lambda item: item[0].sort_key())
    if opts.fmt == "json":
        print_json([{"user": e.user, "client_id": e.client_id, "quotas": values} for e, values in rows])
        return
    print_table(
        ["USER", "CLIENT-ID", "QUOTAS"],
        [
            [_name(e.user), _name(e.client_id), ", ".join(f"{k}={v:g}" for k, v in sorted(values.items()))]
            for e, values in rows
        ],
    )


def _done(fmt: str, entity: QuotaEntity, what: str) -> None:
    if fmt == "json":
        print_json({"user": entity.user, "client_id": entity.client_id, "result": what})
    else:
        click.echo(f"quotas of {entity.describe()}: {what}")
