"""A scaled-down version of benchmarks/compaction_bench.py: 100,000 records over 1,000 keys, each key
updated 100 times, through logq's producer into a compacted queue of a real broker. After cleaning the
partition holds exactly 1,000 records, each key's last value. (The full 1,000,000-record run and its
timings: docs/benchmarks.md, "Compacted queues".)"""

from __future__ import annotations

import time
from pathlib import Path

from logq import Admin, Consumer, Producer
from tests.broker_process import BrokerProcess

RECORDS, KEYS = 100_000, 1_000
QUEUE = "compacted.scale"


def read_partition(bootstrap: str) -> list[tuple[int, bytes | None, bytes | None]]:
    with Consumer(bootstrap, max_poll_records=100_000) as consumer:
        end = consumer.end_offsets([(QUEUE, 0)])
        (partition,) = end
        consumer.assign([partition])
        consumer.seek_to_beginning()
        out: list[tuple[int, bytes | None, bytes | None]] = []
        while consumer.position(partition) < end[partition]:
            out.extend((r.offset, r.key, r.value) for r in consumer.poll(1.0))
        return out


def test_a_hundred_thousand_updates_of_a_thousand_keys_clean_down_to_a_thousand_records(
    tmp_path: Path,
) -> None:
    broker = BrokerProcess(
        tmp_path / "broker-data", log={"log.cleaner.backoff.ms": 100, "retention.check.interval.ms": 200}
    ).start()
    try:
        settings = {"cleanup.policy": "compact", "segment.bytes": str(1 << 20), "segment.ms": "1000"}
        with Admin(broker.bootstrap) as admin:
            admin.create_queue(QUEUE, 1, settings=settings)
        with Producer(broker.bootstrap, acks=1, compression="none") as producer:
            for i in range(RECORDS):
                producer.send(QUEUE, b"update-%d" % (i // KEYS), b"key-%d" % (i % KEYS), partition=0)
            producer.flush()
        wanted = {b"key-%d" % k: b"update-%d" % (RECORDS // KEYS - 1) for k in range(KEYS)}
        deadline = time.monotonic() + 60
        while True:
            records = read_partition(broker.bootstrap)
            if len(records) == KEYS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(records) == KEYS
        assert {key: value for _, key, value in records} == wanted
        offsets = [offset for offset, _, _ in records]
        assert offsets == sorted(offsets)
        assert offsets[-1] == RECORDS - 1
        assert "cleaned compacted.scale-0" in broker.log_text
    finally:
        broker.kill()
