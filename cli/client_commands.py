"""``logq produce`` and ``logq consume``: lines in, lines out."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import click

from logq.client.cluster import QueuePartition
from logq.client.consumer_settings import KAFKA_NAMES as CONSUMER_KAFKA_NAMES
from logq.client.consumer_settings import ConsumerSettings
from logq.client.producer_settings import KAFKA_NAMES as PRODUCER_KAFKA_NAMES
from logq.client.producer_settings import MIN_REQUEST_SIZE, ProducerSettings
from logq.client.records import ConsumerRecord, RecordMetadata
from logq.client.sync_consumer import Consumer
from logq.client.sync_producer import Producer
from logq.errors import CommitFailedError, LogqError, RebalanceInProgressError
from logq_cli.client_settings import client_settings, x_option
from logq_cli.common import client_options, one_line_errors, settings, show_client_warnings
from logq_cli.interrupts import StopRequest, stop_on_signals
from logq_cli.progress import ProgressLine, output_is_terminal, stderr_is_terminal
from logq_cli.specs import OffsetSpec, parse_key_values, parse_offset_spec, parse_partitions

# Producer and consumer settings that have a flag of their own (-X refuses them).
PRODUCE_FLAGS = {
    "acks": "--acks",
    "compression": "-z/--compression",
    "max_request_size": "--max-request-size",
}
CONSUME_FLAGS = {"group_id": "-g/--group", "auto_offset_reset": "-o/--offset"}
PRINT_FIELDS = ("queue", "partition", "offset", "timestamp", "key", "headers")


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.File("rb"),
    default="-",
    help="Read messages from FILE (default: stdin).",
)
@click.option("-k", "--key", help="The key of every message.")
@click.option("-K", "--key-separator", help="Split each line at the first SEP into key and value.")
@click.option("-H", "--header", "headers", multiple=True, metavar="KEY=VALUE", help="A header; repeatable.")
@click.option("--acks", type=click.Choice(["0", "1", "all"]), default="all", show_default=True)
@click.option(
    "-z", "--compression", type=click.Choice(["none", "gzip", "zstd"]), default="zstd", show_default=True
)
@click.option("-p", "--partition", type=click.IntRange(min=0), help="Send every message to this partition.")
@click.option(
    "--max-request-size",
    type=click.IntRange(min=MIN_REQUEST_SIZE),
    default=ProducerSettings.max_request_size,
    show_default=True,
    metavar="BYTES",
    help="The largest request, hence the largest message (the queue's max.message.bytes must allow it too).",
)
@x_option
@client_options
@click.pass_context
def produce(
    ctx: click.Context,
    *,
    queue_name: str,
    path: IO[bytes],
    key: str | None,
    key_separator: str | None,
    headers: tuple[str, ...],
    acks: str,
    compression: str,
    partition: int | None,
    max_request_size: int,
    x_settings: tuple[str, ...],
) -> None:
    """Send one message per line (stdin or -f FILE) to QUEUE, then print a one-line summary.

    Ctrl-C or SIGTERM: stop reading, deliver what was sent (a second one stops waiting) and say how many
    messages were delivered.

    \b
    Examples:
      printf 'a\\nb\\n' | logq produce orders
      logq produce orders -f events.txt -K : -H source=import --acks all -z zstd
      logq produce images --max-request-size 8388608 -X linger.ms=50 < big-lines.txt
    """
    opts = settings(ctx)
    if key is not None and key_separator is not None:
        raise click.UsageError("give -k/--key or -K/--key-separator, not both")
    tally = _Deliveries()
    show_client_warnings()
    with one_line_errors(opts.bootstrap):
        header_map = {k: v.encode() for k, v in parse_key_values(headers, "header").items()}
        fixed_key = key.encode() if key is not None else None
        separator = key_separator.encode() if key_separator is not None else None
        producer_settings = client_settings(
            ProducerSettings,
            x_settings,
            {
                "acks": acks,
                "compression": compression,
                "max_request_size": max_request_size,
                **opts.security(),
            },
            {**PRODUCE_FLAGS, **opts.security_flags()},
            PRODUCER_KAFKA_NAMES,
        )
        producer = Producer(opts.bootstrap, **producer_settings)
        progress = ProgressLine(lambda: tally.progress(queue_name), enabled=stderr_is_terminal())
        with stop_on_signals() as stop, progress:
            try:
                for line in _read_lines(path, stop):
                    record_key, value = fixed_key, line
                    if separator is not None:
                        head, sep, tail = line.partition(separator)
                        if not sep:
                            raise ValueError(f"line {tally.sent + 1} has no key separator {key_separator!r}")
                        record_key, value = head, tail
                    tally.sent += 1  # before send: a record it took counts, delivered or not
                    producer.send(
                        queue_name,
                        value,
                        key=record_key,
                        headers=header_map or None,
                        partition=partition,
                        on_delivery=tally.record,
                    )
                    if tally.errors:
                        break
                stop.interruptible(producer.flush)
            except KeyboardInterrupt:
                pass  # a stop signal while waiting for input or for acknowledgements
            finally:
                _close_producer(producer, stop.requested)
        if stop.requested:
            raise click.ClickException(
                f"interrupted by {stop.signal_name}: {tally.delivered} of {tally.sent} message(s) delivered "
                f"to {queue_name}, {tally.sent - tally.delivered} not delivered"
            )
        if tally.errors:
            first = tally.errors[0]
            raise type(first)(
                f"{len(tally.errors)} of {tally.sent} message(s) failed: {first}{_flag_hint(first)}",
                code=first.code,
            )
    seconds = time.monotonic() - tally.started
    where = ",".join(map(str, sorted(tally.partitions))) or "-"
    if opts.fmt == "json":
        click.echo(
            json.dumps(
                {
                    "queue": queue_name,
                    "messages": tally.sent,
                    "partitions": sorted(tally.partitions),
                    "seconds": round(seconds, 3),
                }
            )
        )
    else:
        click.echo(
            f"produced {tally.sent} message(s) to {queue_name} (partitions {where}) in {seconds:.2f} s"
        )


class _Deliveries:
    """What ``logq produce`` sent and what became of it (``record`` runs on the producer's thread)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.sent = 0
        self.delivered = 0
        self.errors: list[LogqError] = []
        self.partitions: set[int] = set()
        self._lock = threading.Lock()

    def record(self, err: LogqError | None, meta: RecordMetadata | None) -> None:
        with self._lock:
            if err is not None:
                self.errors.append(err)
            elif meta is not None:
                self.delivered += 1
                self.partitions.add(meta.partition)

    def progress(self, queue: str) -> str:
        rate = self.delivered / max(time.monotonic() - self.started, 1e-9)
        return f"producing to {queue}: {self.sent:,} sent, {self.delivered:,} delivered ({rate:,.0f} msg/s)"


def _read_lines(stream: IO[bytes], stop: StopRequest) -> Iterator[bytes]:
    """The input's lines without their line ends, until it ends or a stop is asked for (a stop signal
    while waiting for the next line ends the wait)."""
    readline = stream.readline
    while not stop.requested:
        line = stop.interruptible(readline)
        if not line:
            return
        yield line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line


def _close_producer(producer: Producer, stopping: bool) -> None:
    """Close, delivering what was sent first. When a stop signal came, another one ends that wait, and
    whatever is still undelivered then fails at once rather than after delivery_timeout_ms."""
    if not stopping:
        producer.close()
        return
    with contextlib.suppress(KeyboardInterrupt):
        producer.flush()
    producer.close(timeout=0)


def _flag_hint(error: LogqError) -> str:
    """Name the flag that changes the setting an error names (the client's messages name settings)."""
    for setting, flag in PRODUCE_FLAGS.items():
        if setting in str(error):
            return f" (set it with {flag})"
    return ""


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    return data.decode("utf-8", "backslashreplace")


def _json_bytes(out: dict[str, Any], name: str, data: bytes | None) -> None:
    if data is None:
        out[name] = None
        return
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[name + "_base64"] = base64.b64encode(data).decode()


def _format_record(record: ConsumerRecord, fields: tuple[str, ...], fmt: str) -> str:
    if fmt == "json":
        out: dict[str, Any] = {
            "queue": record.queue,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
        }
        _json_bytes(out, "key", record.key)
        _json_bytes(out, "value", record.value)
        headers: dict[str, Any] = {}
        for name, value in record.headers:
            _json_bytes(headers, name, value)
        out["headers"] = headers
        return json.dumps(out)
    parts = []
    for field in fields:
        if field == "key":
            parts.append(_text(record.key) or "")
        elif field == "headers":
            parts.append(",".join(f"{k}={_text(v) or ''}" for k, v in record.headers))
        else:
            parts.append(str(getattr(record, field)))
    parts.append(_text(record.value) or "")
    return "\t".join(parts)


def _parse_print(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    fields = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in fields if f not in PRINT_FIELDS]
    if unknown:
        raise ValueError(f"cannot print {unknown[0]!r}: choose from {','.join(PRINT_FIELDS)}")
    return fields


@click.command()
@click.argument("queue_name", metavar="[QUEUE]", required=False)
@click.option("-g", "--group", "group_id", help="Consume as a member of GROUP (commits its offsets).")
@click.option(
    "--pattern",
    metavar="REGEX",
    help="Instead of QUEUE: every queue whose whole name matches (needs -g; new ones join as they appear).",
)
@click.option(
    "-p", "--partitions", "partition_text", metavar="P,P", help="Read only these partitions (no group)."
)
@click.option(
    "-o",
    "--offset",
    "offset_text",
    metavar="SPEC",
    help="beginning | end | stored | N | -N (N before the end) | @TIMESTAMP (ms, s or ISO 8601). "
    "Default: stored with a group (else beginning), beginning without.",
)
@click.option("-n", "--count", type=click.IntRange(min=1), help="Exit after COUNT messages.")
@click.option("-e", "--exit-at-end", is_flag=True, help="Exit once every partition has been read to its end.")
@click.option(
    "--print",
    "print_text",
    metavar="FIELDS",
    help=f"Print these before each value: {','.join(PRINT_FIELDS)}.",
)
@click.option("--timeout", type=float, default=None, help="Exit after this many seconds without a message.")
@x_option
@client_options
@click.pass_context
def consume(
    ctx: click.Context,
    *,
    queue_name: str | None,
    group_id: str | None,
    pattern: str | None,
    partition_text: str | None,
    offset_text: str | None,
    count: int | None,
    exit_at_end: bool,
    print_text: str | None,
    timeout: float | None,
    x_settings: tuple[str, ...],
) -> None:
    """Print QUEUE's messages, one per line (tab-separated fields with --print, JSON with --format json).

    With -g it commits, after each batch and at exit, the position of every partition it is assigned.
    Ctrl-C or SIGTERM: stop at the next poll, commit and leave the group.

    \b
    Examples:
      logq consume orders -o beginning -e
      logq consume orders -g billing -n 10 --print key,offset,partition
      logq consume orders -p 0,1 -o @2026-11-26T09:00:00 --format json
      logq consume --pattern 'orders-.*' -g billing --print queue
      logq consume orders -g billing -X session.timeout.ms=10000
    """
    opts = settings(ctx)
    if group_id is not None and partition_text is not None:
        raise click.UsageError("give -g/--group or -p/--partitions, not both")
    if (queue_name is None) == (pattern is None):
        raise click.UsageError("give a QUEUE or --pattern REGEX")
    if pattern is not None and group_id is None:
        raise click.UsageError("--pattern needs a group (-g GROUP)")
    consumed = 0
    started = time.monotonic()
    show_client_warnings()
    with one_line_errors(opts.bootstrap):
        fields = _parse_print(print_text)
        spec = parse_offset_spec(offset_text) if offset_text else None
        if spec is not None and spec.kind == "stored" and group_id is None:
            raise ValueError("-o stored needs a group (-g GROUP)")
        chosen = parse_partitions(partition_text) if partition_text else None
        reset = "latest" if spec is not None and spec.kind == "end" else "earliest"
        consumer_settings = client_settings(
            ConsumerSettings,
            x_settings,
            {
                "group_id": group_id,
                "auto_offset_reset": reset,
                "enable_auto_commit": False,
                "client_id": "logq-cli",
                **opts.security(),
            },
            {**CONSUME_FLAGS, **opts.security_flags()},
            CONSUMER_KAFKA_NAMES,
        )
        consumer = Consumer(opts.bootstrap, **consumer_settings)
        progress = ProgressLine(
            lambda: _consume_progress(queue_name or pattern or "", consumed, started),
            enabled=stderr_is_terminal() and not output_is_terminal(),  # not between records on screen
        )
        # A stop signal (Ctrl-C, SIGTERM) ends the loop at its next poll; closing leaves the group.
        with contextlib.closing(consumer), stop_on_signals() as stop, progress:
            ends = _start(consumer, queue_name or _compile(pattern or ""), group_id, chosen, spec)
            commits = _Commits(consumer) if group_id is not None else None
            idle_since = time.monotonic()
            while not stop.requested and (count is None or consumed < count):
                records = consumer.poll(timeout=0.5)
                if not records:
                    if commits is not None:
                        commits.if_assignment_changed()
                    if timeout is not None and time.monotonic() - idle_since > timeout:
                        break
                    if exit_at_end and _at_end(consumer, ends):
                        break
                    continue
                idle_since = time.monotonic()
                if count is not None and len(records) > count - consumed:
                    _give_back(consumer, records[count - consumed :])  # -n: positions stay at what is printed
                    records = records[: count - consumed]
                click.echo("\n".join(_format_record(r, fields, opts.fmt) for r in records))
                consumed += len(records)
                if commits is not None:
                    commits.now()  # at least once: what was printed, and where the other partitions start
                if exit_at_end and _at_end(consumer, ends):
                    break
            if commits is not None:
                commits.now(last=True)
    click.echo(f"consumed {consumed} message(s)", err=True)


def _consume_progress(what: str, consumed: int, started: float) -> str:
    rate = consumed / max(time.monotonic() - started, 1e-9)
    return f"consuming {what}: {consumed:,} message(s) ({rate:,.0f} msg/s)"


class _Commits:
    """``logq consume -g``'s commits: the positions of every assigned partition (Consumer.commit()), as
    Kafka's Java consumer commits them, so the group's lag counts the partitions nothing was read from."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._assignment: set[QueuePartition] = set()

    def now(self, *, last: bool = False) -> None:
        assignment = set(self._consumer.assignment())
        try:
            self._consumer.commit()
        except (RebalanceInProgressError, CommitFailedError) as exc:
            # The partitions move: the printed records come again to their next owner (at least once).
            if last:
                click.echo(f"warning: the last commit was refused: {exc}", err=True)
            return
        self._assignment = assignment

    def if_assignment_changed(self) -> None:
        """After a rebalance, commit where the newly assigned partitions start."""
        if set(self._consumer.assignment()) != self._assignment:
            self.now()


def _give_back(consumer: Consumer, unprinted: list[ConsumerRecord]) -> None:
    """Seek each partition back to its first record that poll returned but -n leaves unprinted."""
    first: dict[QueuePartition, int] = {}
    for r in unprinted:
        first.setdefault(QueuePartition(r.queue, r.partition), r.offset)
    for qp, offset in first.items():
        consumer.seek(qp, offset)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad --pattern {pattern!r}: {exc}") from None


def _start(
    consumer: Consumer,
    queue: str | re.Pattern[str],
    group_id: str | None,
    chosen: list[int] | None,
    spec: OffsetSpec | None,
) -> dict[QueuePartition, int] | None:
    """Subscribe (to a queue or a pattern) or assign, and seek where ``spec`` says. The end offsets to stop
    at for -e (None with a group: the assignment is only known after joining, so ends are read lazily)."""
    if group_id is not None:
        on_assign = None
        if spec is not None and spec.kind in ("offset", "from_end", "timestamp"):

            def on_assign(c: Any, partitions: list[QueuePartition]) -> None:
                _seek(c, partitions, spec)

        if isinstance(queue, str):
            consumer.partitions_for(queue)  # a queue that does not exist is an error, not a silent wait
            consumer.subscribe([queue], on_assign=on_assign)
        else:
            consumer.subscribe(pattern=queue, on_assign=on_assign)
        return None
    assert isinstance(queue, str)
    every = consumer.partitions_for(queue)
    partitions = [QueuePartition(queue, p) for p in (chosen if chosen is not None else range(every))]
    for qp in partitions:
        if qp.partition >= every:
            raise ValueError(f"queue {queue!r} has no partition {qp.partition} (it has {every})")
    consumer.assign(partitions)
    _seek(consumer, partitions, spec or OffsetSpec("beginning"))
    return consumer.end_offsets(partitions)


def _seek(consumer: Any, partitions: list[QueuePartition], spec: OffsetSpec) -> None:
    if spec.kind == "beginning":
        consumer.seek_to_beginning(partitions)
    elif spec.kind == "end":
        consumer.seek_to_end(partitions)
    elif spec.kind == "offset":
        starts = consumer.beginning_offsets(partitions)
        ends = consumer.end_offsets(partitions)
        for qp in partitions:
            consumer.seek(qp, _within(qp, spec.value, starts[qp], ends[qp]))
    elif spec.kind == "from_end":
        starts = consumer.beginning_offsets(partitions)
        ends = consumer.end_offsets(partitions)
        for qp in partitions:
            consumer.seek(qp, max(starts[qp], ends[qp] - spec.value))
    elif spec.kind == "timestamp":
        found = consumer.offsets_for_times(dict.fromkeys(partitions, spec.value))
        ends = consumer.end_offsets(partitions)
        for qp in partitions:
            offset = found.get(qp)
            consumer.seek(qp, ends[qp] if offset is None else offset)


def _within(qp: QueuePartition, offset: int, start: int, end: int) -> int:
    """-o N outside a partition's log: say so, and read from the nearest end of the log instead (the
    consumer would otherwise apply its reset rule without a word)."""
    where = f"{qp.queue}/{qp.partition}"
    if offset < start:
        click.echo(
            f"warning: offset {offset} is before the start of {where} ({start}): reading from {start}",
            err=True,
        )
        return start
    if offset > end:
        click.echo(
            f"warning: offset {offset} is past the end of {where} ({end}): reading from {end} (new messages)",
            err=True,
        )
        return end
    return offset


def _at_end(consumer: Consumer, ends: dict[QueuePartition, int] | None) -> bool:
    partitions = consumer.assignment()
    if not partitions:
        return False
    if ends is None or set(ends) != set(partitions):
        ends = consumer.end_offsets(partitions)
    return all(consumer.position(qp) >= ends[qp] for qp in partitions)


__all__ = ["consume", "produce"]
