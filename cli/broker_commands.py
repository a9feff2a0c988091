"""``logq broker config``: the dynamic broker settings, listed with their sources, and changed."""

from __future__ import annotations

import click

from logq.client.sync_admin import Admin
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings
from logq_cli.specs import parse_key_values


@click.command("config")
@click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE", help="A dynamic setting to set; repeatable."
)
@click.option(
    "--delete", "deletions", multiple=True, metavar="KEY", help="A dynamic setting to remove; repeatable."
)
@click.option(
    "--broker",
    "broker_id",
    type=click.IntRange(min=0),
    help="One broker's own settings (sent to it) instead of the cluster-wide ones; also the broker listed.",
)
@click.option("--dry-run", is_flag=True, help="Have the broker check the change, and change nothing.")
@client_options
@click.pass_context
def broker_config(
    ctx: click.Context,
    *,
    assignments: tuple[str, ...],
    deletions: tuple[str, ...],
    broker_id: int | None,
    dry_run: bool,
) -> None:
    """List the settings a broker lets change while it runs, with their values and sources (broker: its
    own dynamic setting; cluster: the cluster-wide one; config-file; default); with --set / --delete,
    change them first (cluster-wide, or with --broker that broker's own). A setting that needs a restart
    is refused by name. Queues' own settings come first: logq queue alter.

    \b
    Examples:
      logq broker config
      logq broker config --set retention.ms=86400000 --set log.flush.interval.ms=500
      logq broker config --broker 2 --delete retention.ms
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap):
        changes = parse_key_values(assignments, "setting")
        with Admin(opts.bootstrap, **opts.security()) as admin:
            if changes or deletions:
                admin.alter_broker_settings(changes, deletions, broker_id=broker_id, validate_only=dry_run)
            described = [d for d in admin.describe_broker_settings(broker_id) if not d.read_only]
    if opts.fmt == "json":
        print_json([{"name": d.name, "value": d.value, "source": d.source} for d in described])
        return
    if dry_run:
        click.echo("dry run: the change is valid; nothing was changed")
    print_table(["SETTING", "VALUE", "SOURCE"], [[d.name, d.value, d.source] for d in described])
