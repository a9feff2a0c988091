"""``logq queue ...`` (``delete-records``: a dry run unless --execute) and ``logq admin delete-queue``."""

from __future__ import annotations

import datetime as dt

import click

from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings
from logq_cli.specs import parse_key_values, parse_timestamp


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@click.group()
def queue() -> None:
    """Create, list and describe queues.

    \b
    Example:
      logq queue create orders -p 3 && logq queue describe orders
    """


@queue.command("create")
@click.argument("name")
@click.option("-p", "--partitions", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "-r",
    "--replication",
    "replication",
    type=click.IntRange(min=1),
    help="Copies of each partition (default: the broker's default.replication.factor).",
)
@click.option(
    "-c", "--config", "configs", multiple=True, metavar="KEY=VALUE", help="A queue setting; repeatable."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.001, max=2_000_000),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long the broker may work on the creation before it answers. If it is still creating "
    "the queue then, the command says so and waits for it (up to 10 minutes more).",
)
@client_options
@click.pass_context
def queue_create(
    ctx: click.Context,
    *,
    name: str,
    partitions: int,
    replication: int | None,
    configs: tuple[str, ...],
    timeout: float,
) -> None:
    """Create queue NAME.

    \b
    Example:
      logq queue create orders -p 6 -r 3 -c retention.ms=86400000
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap):
        settings_map = parse_key_values(configs, "setting")
        with Admin(opts.bootstrap, **opts.security()) as admin:
            info = admin.create_queue(
                name,
                partitions,
                replication or -1,
                settings_map,
                timeout_ms=max(1, round(timeout * 1000)),
                on_wait=lambda line: click.echo(line + "...", err=True),
            )
    copies = len(info.partitions[0].replicas) if info.partitions else replication
    if opts.fmt == "json":
        print_json({"queue": name, "partitions": info.partition_count, "replication": copies})
    else:
        click.echo(f"created queue {name} with {info.partition_count} partition(s), replication {copies}")


@queue.command("list")
@click.option("--internal", is_flag=True, help="Also list internal queues (__consumer_offsets).")
@client_options
@click.pass_context
def queue_list(ctx: click.Context, internal: bool) -> None:
    """List queues with their partition counts.

    \b
    Example:
      logq queue list --format json
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        queues = admin.list_queues(include_internal=internal)
    if opts.fmt == "json":
        print_json(
            [
                {
                    "queue": q.name,
                    "partitions": q.partition_count,
                    "replication": len(q.partitions[0].replicas) if q.partitions else 0,
                    "internal": q.internal,
                }
                for q in queues
            ]
        )
        return
    print_table(
        ["QUEUE", "PARTITIONS", "REPLICATION"],
        [[q.name, q.partition_count, len(q.partitions[0].replicas) if q.partitions else 0] for q in queues],
    )


@queue.command("alter")
@click.argument("name")
@click.option(
    "-p",
    "--partitions",
    type=click.IntRange(min=1),
    help="Grow the queue to this many partitions in total (never fewer than now).",
)
@click.option(
    "-c", "--config", "configs", multiple=True, metavar="KEY=VALUE", help="A setting to set; repeatable."
)
@click.option(
    "--delete-config",
    "deletions",
    multiple=True,
    metavar="KEY",
    help="A setting to remove from the queue (back to the broker's value); repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Have the broker check the change, and change nothing.")
@client_options
@click.pass_context
def queue_alter(
    ctx: click.Context,
    *,
    name: str,
    partitions: int | None,
    configs: tuple[str, ...],
    deletions: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Change queue NAME after its creation: grow it, or change some of its settings (the others are
    kept). In force on every broker within a second.

    \b
    Examples:
      logq queue alter orders -p 12
      logq queue alter orders -c retention.ms=86400000 --delete-config segment.ms
    """
    opts = settings(ctx)
    if partitions is None and not configs and not deletions:
        raise click.UsageError("nothing to change: give -p N, -c KEY=VALUE or --delete-config KEY")
    verb = "would alter" if dry_run else "altered"
    done: list[str] = []
    report: dict[str, object] = {"queue": name, "dry_run": dry_run}
    with one_line_errors(opts.bootstrap):
        changes = parse_key_values(configs, "setting")
        with Admin(opts.bootstrap, **opts.security()) as admin_client:
            if changes or deletions:
                admin_client.alter_queue_settings(name, changes, deletions, validate_only=dry_run)
                done += [f"{k}={v}" for k, v in changes.items()] + [f"{k} deleted" for k in deletions]
                report |= {"set": changes, "deleted": list(deletions)}
            if partitions is not None:
                before = len(admin_client.partitions_of(name))
                info = admin_client.create_partitions(name, partitions, validate_only=dry_run)
                after = partitions if dry_run else info.partition_count
                done.append(f"{before} -> {after} partitions")
                report |= {"partitions": after, "before": before}
    if opts.fmt == "json":
        print_json(report)
        return
    click.echo(f"{verb} queue {name}: {', '.join(done)}")
    if partitions is not None:
        # Kafka's default partitioner maps a key by the partition count: say so where it changes.
        click.echo(
            "note: keyed messages may now go to other partitions than before (key -> partition follows "
            "the partition count)",
            err=True,
        )


@queue.command("describe")
@click.argument("name")
@client_options
@click.pass_context
def queue_describe(ctx: click.Context, name: str) -> None:
    """Show NAME's partitions (leader, replicas, in-sync replicas, offsets, size, the oldest retained
    timestamp) and every setting with its value and source: queue (set on it), broker (a dynamic setting
    of the broker answering, the controller), cluster (a cluster-wide dynamic setting), config-file (that
    broker's), default.

    \b
    Example:
      logq queue describe orders
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        desc = admin.describe_queue(name)
        all_settings = admin.describe_queue_settings(name)
    parts = [
        {
            "partition": p.partition,
            "leader": p.leader,
            "replicas": list(p.replicas),
            "isr": list(p.isr),
            "log_start_offset": p.log_start,
            "log_end_offset": p.log_end,
            "messages": p.messages,
            "size_bytes": p.size_bytes,
            "oldest_timestamp_ms": p.oldest_timestamp,
        }
        for p in desc.partitions
    ]
    if opts.fmt == "json":
        print_json(
            {
                "queue": desc.name,
                "internal": desc.internal,
                "partitions": parts,
                "size_bytes": desc.size_bytes,
                "messages": sum(p.messages for p in desc.partitions),
                "settings": dict(desc.settings),
                "settings_with_sources": [
                    {"name": d.name, "value": d.value, "source": d.source} for d in all_settings
                ],
            }
        )
        return
    total = sum(p.messages for p in desc.partitions)
    size = "unknown" if desc.size_bytes is None else f"{desc.size_bytes} B"
    click.echo(f"queue {desc.name}: {len(parts)} partition(s), {total} message(s), {size}")
    if desc.settings:
        click.echo("settings: " + ", ".join(f"{k}={v}" for k, v in sorted(desc.settings.items())))
    print_table(
        ["PARTITION", "LEADER", "REPLICAS", "ISR", "START", "END", "MESSAGES", "BYTES", "OLDEST"],
        [
            [
                p.partition,
                p.leader,
                ",".join(map(str, p.replicas)),
                ",".join(map(str, p.isr)),
                p.log_start,
                p.log_end,
                p.messages,
                p.size_bytes,
                _when(p.oldest_timestamp),
            ]
            for p in desc.partitions
        ],
    )
    click.echo()
    print_table(["SETTING", "VALUE", "SOURCE"], [[d.name, d.value, d.source] for d in all_settings])


@queue.command("delete-records")
@click.argument("name")
@click.option("--before", type=int, metavar="OFFSET", help="Delete every record below this offset.")
@click.option(
    "--before-time",
    metavar="TIME",
    help="Delete every record older than TIME (ISO 8601, or ms / s since the epoch).",
)
@click.option(
    "-p",
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    help="Only this partition; repeatable (default: every partition).",
)
@click.option("--execute", is_flag=True, help="Delete (without it, only print the plan).")
@client_options
@click.pass_context
def queue_delete_records(
    ctx: click.Context,
    *,
    name: str,
    before: int | None,
    before_time: str | None,
    partitions: tuple[int, ...],
    execute: bool,
) -> None:
    """Delete NAME's oldest records: move each partition's log start forward (admin only: DELETE on the
    queue). A dry run unless --execute: it prints, per partition, the log start now, the new one and
    how many records go. An offset past a partition's end deletes up to its end.

    \b
    Examples:
      logq queue delete-records orders --before 1000
      logq queue delete-records orders --before-time 2026-01-01T00:00:00Z -p 0 -p 1 --execute
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap):
        if (before is None) == (before_time is None):
            raise ValueError("give exactly one of --before OFFSET and --before-time TIME")
        before_ms = None if before_time is None else parse_timestamp(before_time)
        with Admin(opts.bootstrap, **opts.security()) as admin_client:
            rows = admin_client.plan_record_deletion(
                name, before=before, before_time_ms=before_ms, partitions=list(partitions) or None
            )
            if execute:
                wanted = {QueuePartition(r.queue, r.partition): r.new_start for r in rows if r.records}
                admin_client.delete_records(wanted)
    if opts.fmt == "json":
        print_json(
            {
                "queue": name,
                "executed": execute,
                "partitions": [
                    {
                        "partition": r.partition,
                        "log_start": r.log_start,
                        "new_log_start": r.new_start,
                        "records": r.records,
                    }
                    for r in rows
                ],
            }
        )
        return
    print_table(
        ["PARTITION", "LOG START", "NEW LOG START", "RECORDS"],
        [[r.partition, r.log_start, r.new_start, r.records] for r in rows],
    )
    total = sum(r.records for r in rows)
    if execute:
        click.echo(f"deleted {total} record(s) of queue {name}")
    else:
        click.echo(f"dry run: nothing deleted ({total} record(s) would go); add --execute to delete them")


@queue.command(
    "delete",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def queue_delete(args: tuple[str, ...]) -> None:
    """Not a command: deleting a queue is ``logq admin delete-queue`` (the name users try first)."""
    name = next((a for a in args if not a.startswith("-")), "NAME")
    raise click.ClickException(
        f"deleting a queue destroys its messages, so it is an admin command: logq admin delete-queue {name}"
    )


@click.group()
def admin() -> None:
    """Administrative actions that destroy data.

    \b
    Example:
      logq admin delete-queue orders --yes
    """


@admin.command("delete-queue")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
@click.pass_context
def admin_delete_queue(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete queue NAME and all its messages (admin only).

    A broker with an authorizer allows it to principals with DELETE on the queue (super users have it);
    one without allows it only when its setting delete.queue.enable is true. The command asks the broker
    before it asks you to confirm, and says who was refused and why.

    \b
    Example:
      logq admin delete-queue orders --yes
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin_client:
        allowed, reason = admin_client.may_delete_queue(name)  # refuse before asking, not after
        if not allowed:
            raise click.ClickException(reason)
        if not yes:
            click.confirm(f"Delete queue {name} and all its messages?", abort=True)
        admin_client.delete_queue(name)
    if opts.fmt == "json":
        print_json({"deleted": name})
    else:
        click.echo(f"deleted queue {name}")
