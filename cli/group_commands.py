"""``logq group ...``: list, describe (with lag), reset offsets, delete groups and their offsets (the
last three a dry run unless --execute)."""

from __future__ import annotations

import time

import click

from logq.client.admin import ResetSpec
from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings
from logq_cli.specs import parse_datetime, parse_duration_ms, parse_queue_scope


@click.group()
def group() -> None:
    """Consumer groups: list, describe with lag, reset or delete offsets, delete.

    \b
    Example:
      logq group describe billing
    """


@group.command("list")
@client_options
@click.pass_context
def group_list(ctx: click.Context) -> None:
    """List consumer groups and their states.

    \b
    Example:
      logq group list
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        groups = admin.list_groups()
    if opts.fmt == "json":
        print_json(
            [{"group": g.group_id, "protocol_type": g.protocol_type, "state": g.state} for g in groups]
        )
        return
    print_table(["GROUP", "TYPE", "STATE"], [[g.group_id, g.protocol_type, g.state] for g in groups])


@group.command("describe")
@click.argument("group_id", metavar="GROUP")
@client_options
@click.pass_context
def group_describe(ctx: click.Context, group_id: str) -> None:
    """Show GROUP's members, their partitions, and per partition the committed offset, the end offset
    and the lag: every partition of every queue the group consumes (subscribed, assigned or committed
    to). A partition without a commit counts its lag from the log start.

    \b
    Example:
      logq group describe billing --format json
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        desc = admin.describe_group(group_id)
    members = [
        {
            "member_id": mem.member_id,
            "client_id": mem.client_id,
            "host": mem.client_host,
            "assignment": [{"queue": qp.queue, "partition": qp.partition} for qp in mem.assignment],
        }
        for mem in desc.members
    ]
    offsets = [
        {
            "queue": o.queue,
            "partition": o.partition,
            "committed": o.committed,
            "log_start": o.log_start,
            "log_end": o.log_end,
            "lag": o.lag,
            "lag_from": "committed" if o.committed is not None else "log-start",
            "owner": o.owner,
        }
        for o in desc.offsets
    ]
    if opts.fmt == "json":
        print_json(
            {
                "group": desc.group_id,
                "state": desc.state,
                "protocol": desc.protocol,
                "members": members,
                "offsets": offsets,
                "total_lag": desc.total_lag,
            }
        )
        return
    click.echo(f"group {desc.group_id}: {desc.state}, {len(members)} member(s), total lag {desc.total_lag}")
    if desc.members:
        print_table(
            ["MEMBER", "CLIENT", "HOST", "PARTITIONS"],
            [
                [
                    mem.member_id,
                    mem.client_id,
                    mem.client_host,
                    ",".join(f"{qp.queue}:{qp.partition}" for qp in mem.assignment) or "-",
                ]
                for mem in desc.members
            ],
        )
        click.echo()
    print_table(
        ["QUEUE", "PARTITION", "COMMITTED", "END", "LAG", "OWNER"],
        [[o.queue, o.partition, o.committed, o.log_end, o.lag, o.owner] for o in desc.offsets],
    )
    click.echo(f"TOTAL LAG {desc.total_lag}")
    if any(o.committed is None for o in desc.offsets):
        click.echo(
            "COMMITTED -: the group has no commit there; its lag counts from the log start "
            "(where auto.offset.reset=earliest begins; a consumer with latest would skip it)"
        )


def _reset_spec(
    *,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    by_duration: str | None,
    shift_by: int | None,
) -> ResetSpec:
    chosen = [
        ResetSpec("earliest") if to_earliest else None,
        ResetSpec("latest") if to_latest else None,
        ResetSpec("offset", to_offset) if to_offset is not None else None,
        ResetSpec("datetime", parse_datetime(to_datetime)) if to_datetime is not None else None,
        ResetSpec("duration", parse_duration_ms(by_duration)) if by_duration is not None else None,
        ResetSpec("shift", shift_by) if shift_by is not None else None,
    ]
    specs = [s for s in chosen if s is not None]
    if len(specs) != 1:
        raise ValueError(
            "give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, "
            "--shift-by"
        )
    return specs[0]


@group.command("reset-offsets")
@click.argument("group_id", metavar="GROUP")
@click.option(
    "--queue", "queues", multiple=True, metavar="QUEUE[:P,P]", help="Queue (and partitions); repeatable."
)
@click.option("--all-queues", is_flag=True, help="Every queue the group has committed offsets for.")
@click.option("--to-earliest", is_flag=True, help="Move to the oldest retained message.")
@click.option("--to-latest", is_flag=True, help="Move to the end: skip everything there is now.")
@click.option(
    "--to-offset", type=int, metavar="N", help="Move to offset N (outside the log: its nearest end)."
)
@click.option("--to-datetime", metavar="ISO8601", help="Move to the first message at or after this time.")
@click.option("--by-duration", metavar="PnDTnHnMnS", help="Move to the first message this long ago.")
@click.option("--shift-by", type=int, metavar="±N", help="Move the committed offset by N (negative: back).")
@click.option("--execute", is_flag=True, help="Apply the plan (without it, only print the plan).")
@client_options
@click.pass_context
def group_reset_offsets(
    ctx: click.Context,
    *,
    group_id: str,
    queues: tuple[str, ...],
    all_queues: bool,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    by_duration: str | None,
    shift_by: int | None,
    execute: bool,
) -> None:
    """Reset GROUP's committed offsets. A dry run unless --execute: it prints the plan (current offset,
    new offset, lag before and after).

    The group must have no live members: they keep their positions in memory and would overwrite the
    reset with their next commit. The command says which members are live when it refuses.

    \b
    Examples:
      logq group reset-offsets billing --queue orders --to-earliest
      logq group reset-offsets billing --queue orders:0,1 --shift-by -100 --execute
      logq group reset-offsets billing --all-queues --by-duration PT1H --execute
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap):
        spec = _reset_spec(
            to_earliest=to_earliest,
            to_latest=to_latest,
            to_offset=to_offset,
            to_datetime=to_datetime,
            by_duration=by_duration,
            shift_by=shift_by,
        )
        if bool(queues) == all_queues:
            raise ValueError("give --queue QUEUE[:P,P] (repeatable) or --all-queues")
        with Admin(opts.bootstrap, **opts.security()) as admin:
            partitions: list[QueuePartition] = []
            if all_queues:
                partitions = sorted(admin.committed_offsets(group_id))
                if not partitions:
                    raise ValueError(
                        f"group {group_id!r} has no committed offsets: name the queues with --queue"
                    )
            for item in queues:
                name, parts = parse_queue_scope(item)
                every = admin.partitions_of(name)
                if parts is None:
                    partitions.extend(every)
                else:
                    missing = [p for p in parts if QueuePartition(name, p) not in every]
                    if missing:
                        raise ValueError(
                            f"queue {name!r} has no partition {missing[0]} (it has {len(every)})"
                        )
                    partitions.extend(QueuePartition(name, p) for p in parts)
            rows = admin.plan_offset_reset(group_id, partitions, spec, now_ms=int(time.time() * 1000))
            for note in filter(None, (row.clamped for row in rows)):
                click.echo(f"warning: {note}", err=True)  # out of range: say what the plan does instead
            if execute:
                admin.apply_offset_reset(group_id, rows)
    if opts.fmt == "json":
        print_json(
            {
                "group": group_id,
                "executed": execute,
                "partitions": [
                    {
                        "queue": r.queue,
                        "partition": r.partition,
                        "current": r.current,
                        "new": r.new,
                        "lag_before": r.lag_before,
                        "lag_after": r.lag_after,
                    }
                    for r in rows
                ],
            }
        )
        return
    print_table(
        ["QUEUE", "PARTITION", "CURRENT", "NEW", "LAG BEFORE", "LAG AFTER"],
        [[r.queue, r.partition, r.current, r.new, r.lag_before, r.lag_after] for r in rows],
    )
    if execute:
        click.echo(f"reset {len(rows)} partition(s) of group {group_id}")
    else:
        click.echo("dry run: nothing changed; add --execute to apply this plan")


@group.command("delete")
@click.argument("group_id", metavar="GROUP")
@click.option("--execute", is_flag=True, help="Delete (without it, only print what would go).")
@client_options
@click.pass_context
def group_delete(ctx: click.Context, group_id: str, execute: bool) -> None:
    """Delete GROUP: its committed offsets and the group itself (a dry run unless --execute).

    Only a group without live members can be deleted; the command names them when it refuses. A consumer
    that joins the group afterwards starts afresh, where its auto.offset.reset says.

    \b
    Examples:
      logq group delete billing
      logq group delete billing --execute
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        committed = admin.check_group_deletable(group_id)  # refuse before anything goes, naming members
        if execute:
            admin.delete_group(group_id)
    rows = sorted(committed.items())
    if opts.fmt == "json":
        print_json(
            {
                "group": group_id,
                "executed": execute,
                "offsets": [{"queue": qp.queue, "partition": qp.partition, "committed": o} for qp, o in rows],
            }
        )
        return
    if rows:
        print_table(["QUEUE", "PARTITION", "COMMITTED"], [[qp.queue, qp.partition, o] for qp, o in rows])
    if execute:
        click.echo(f"deleted group {group_id} and its {len(rows)} committed offset(s)")
    else:
        click.echo(
            f"dry run: nothing deleted; add --execute to delete group {group_id} "
            f"and its {len(rows)} committed offset(s)"
        )


@group.command("delete-offsets")
@click.argument("group_id", metavar="GROUP")
@click.option("--queue", "queue_name", required=True, metavar="QUEUE", help="The queue whose offsets go.")
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    type=click.IntRange(min=0),
    metavar="P",
    help="Only this partition (repeatable); every partition of the queue by default.",
)
@click.option("--execute", is_flag=True, help="Delete (without it, only print what would go).")
@client_options
@click.pass_context
def group_delete_offsets(
    ctx: click.Context, group_id: str, queue_name: str, partitions: tuple[int, ...], execute: bool
) -> None:
    """Delete GROUP's committed offsets for QUEUE (a dry run unless --execute).

    Allowed while no live member of the group subscribes to QUEUE (any queue of an empty group): use it
    for a queue the group no longer consumes. The command names the members when it refuses.

    \b
    Examples:
      logq group delete-offsets billing --queue old-orders
      logq group delete-offsets billing --queue old-orders --partition 0 --partition 2 --execute
    """
    opts = settings(ctx)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        every = admin.partitions_of(queue_name)
        chosen = every
        if partitions:
            missing = [p for p in partitions if QueuePartition(queue_name, p) not in every]
            if missing:
                raise ValueError(f"queue {queue_name!r} has no partition {missing[0]} (it has {len(every)})")
            chosen = [QueuePartition(queue_name, p) for p in sorted(set(partitions))]
        admin.check_offsets_deletable(group_id, [queue_name])
        committed = admin.committed_offsets(group_id, chosen)
        if execute:
            admin.delete_offsets(group_id, chosen)
    rows = [(qp, committed.get(qp)) for qp in chosen]
    if opts.fmt == "json":
        print_json(
            {
                "group": group_id,
                "executed": execute,
                "offsets": [{"queue": qp.queue, "partition": qp.partition, "committed": o} for qp, o in rows],
            }
        )
        return
    print_table(
        ["QUEUE", "PARTITION", "COMMITTED"],
        [[qp.queue, qp.partition, "-" if o is None else o] for qp, o in rows],
    )
    count = sum(o is not None for _, o in rows)
    if execute:
        click.echo(f"deleted {count} committed offset(s) of group {group_id} for queue {queue_name}")
    else:
        click.echo(
            f"dry run: nothing deleted; add --execute to delete {count} committed offset(s) of group "
            f"{group_id} for queue {queue_name}"
        )
