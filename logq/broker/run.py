"""Running a broker as a process: logging, signals, clean shutdown on SIGTERM/SIGINT; SIGUSR1 ends the
broker's ZooKeeper session (a fault drill: the broker sees an expiry, stops leading and registers again)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from logq.broker.app import Broker
from logq.broker.config import BrokerConfig
from logq.broker.log_format import configure_logging
from logq.permissions import private_umask


def run_broker(config: BrokerConfig) -> None:
    configure_logging(config.log_format)
    private_umask()  # everything the broker creates (RocksDB's files too) is its user's alone
    # The modules and what importing them built live as long as the process: out of the collector's
    # sight, a full collection no longer walks them (12-15 ms, a stall of every request, before).
    gc.collect()
    gc.freeze()
    if os.environ.get("LOGQ_EVENT_LOOP") == "uvloop":  # measured, no faster: docs/benchmarks.md
        try:
            import uvloop  # noqa: PLC0415
        except ImportError:
            raise SystemExit("Error: LOGQ_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        uvloop.run(_main(config))
    else:
        asyncio.run(_main(config))


async def _main(config: BrokerConfig) -> None:
    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    drills: set[asyncio.Task[None]] = set()

    def end_session() -> None:
        task = loop.create_task(broker.end_zookeeper_session())
        drills.add(task)
        task.add_done_callback(drills.discard)

    loop.add_signal_handler(signal.SIGUSR1, end_session)
    await broker.start()
    try:
        await stop.wait()
    finally:
        logging.getLogger(__name__).info("shutting down")
        await broker.stop()
