"""Consumer-group benchmark: a real logq broker process and confluent-kafka consumers, each member in its
own process (as real consumers are), reporting its assignments on stdout with a monotonic timestamp.

Usage: python benchmarks/group_bench.py [--quick] [--json FILE]

Cases, each on a fresh broker (standalone, default settings unless stated):
- join: 10 members subscribe to one queue with 20 partitions (session.timeout.ms 6000); the time from
  starting the member processes until every member holds its share, with the broker's default
  group.initial.rebalance.delay.ms (3000 ms, included in the figure) and with it set to 0;
- commits: one member committing synchronously in a loop (each commit is fsynced by the broker before
  its answer), then asynchronously; then produce 1,000,000 x 100 B alone and while 2 other processes
  commit synchronously without pause, alternated over several rounds;
- failover: 3 members on 6 partitions, consuming; one is SIGKILLed; the time until the two survivors
  together own all 6 partitions again (the session timeout, 6 s, is the floor of that figure).
Traffic stays on 127.0.0.1; every phase is bounded in count and time; every process started here is
stopped by its PID, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from broker_bench import create_queue, produce  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from tests.broker_process import BrokerProcess  # noqa: E402

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 3000  # librdkafka's default, stated in the results

# A group member: prints "started <t>", then "assigned <json> <t>" / "revoked <json> <t>" from the
# rebalance callbacks, while it polls; it stops when its stdin closes or after its time limit.
MEMBER = """
import json, sys, threading, time
t_start = time.monotonic()
from confluent_kafka import Consumer
bootstrap, queue, group, session_ms, heartbeat_ms, limit = sys.argv[1:7]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
def tell(kind, parts):
    print(kind, json.dumps(sorted(p.partition for p in parts), separators=(",", ":")), repr(time.monotonic()),
          flush=True)
print("started", repr(t_start), flush=True)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": int(session_ms),
              "heartbeat.interval.ms": int(heartbeat_ms), "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
c.subscribe([queue], on_assign=lambda _c, ps: tell("assigned", ps),
            on_revoke=lambda _c, ps: tell("revoked", ps), on_lost=lambda _c, ps: tell("revoked", ps))
deadline = time.monotonic() + float(limit)
consumed = 0
while not stop.is_set() and time.monotonic() < deadline:
    msg = c.poll(0.05)
    if msg is not None and not msg.error():
        consumed += 1
print("consumed", consumed, repr(time.monotonic()), flush=True)
c.close()
"""

# A committer: joins a group, waits for its assignment, prints "ready", then commits an increasing
# offset on its partitions without pause (sync: one at a time; async: up to `window` outstanding) until
# stdin closes or `seconds` pass, and prints {"commits": n, "seconds": s, "errors": e}.
COMMITTER = """
import json, sys, threading, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, queue, group, mode, seconds, window = sys.argv[1:7]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
done = [0, 0]
def committed(err, _parts):
    done[1 if err else 0] += 1
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000,
              "enable.auto.commit": False, "on_commit": committed})
c.subscribe([queue])
deadline = time.monotonic() + 60
while not c.assignment() and time.monotonic() < deadline:
    c.poll(0.05)
parts = c.assignment()
if not parts:
    sys.exit("no assignment")
print("ready", flush=True)
offset, sent, window = 0, 0, int(window)
started = time.monotonic()
end = started + float(seconds)
while not stop.is_set() and time.monotonic() < end:
    offset += 1
    tps = [TopicPartition(queue, p.partition, offset) for p in parts]
    if mode == "sync":
        try:
            c.commit(offsets=tps, asynchronous=False)
            done[0] += 1
        except Exception:
            done[1] += 1
        continue
    c.commit(offsets=tps, asynchronous=True)
    sent += 1
    c.poll(0)
    while sent - done[0] - done[1] >= window:
        c.poll(0.001)
if mode == "async":
    drain = time.monotonic() + 10
    while sent > done[0] + done[1] and time.monotonic() < drain:
        c.poll(0.01)
elapsed = time.monotonic() - started
print(json.dumps({"commits": done[0], "errors": done[1], "seconds": elapsed}), flush=True)
c.close()
"""


@dataclass
class Event:
    member: int
    kind: str  # started, assigned, revoked, consumed
    at: float
    partitions: tuple[int, ...] = ()


@dataclass
class Members:
    """Member processes of one group, with a thread per stdout feeding one event queue."""

    bootstrap: str
    queue_name: str
    group: str
    limit_s: float
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    seen: list[Event] = field(default_factory=list)

    def spawn(self, count: int) -> float:
        """Start `count` members; returns the monotonic time just before the first was started."""
        t0 = time.monotonic()
        for _ in range(count):
            index = len(self.procs)
            proc = subprocess.Popen(
                [sys.executable, "-c", MEMBER, self.bootstrap, self.queue_name, self.group,
                 str(SESSION_TIMEOUT_MS), str(HEARTBEAT_INTERVAL_MS), str(self.limit_s)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            self.procs.append(proc)
            threading.Thread(target=self._pump, args=(index, proc), daemon=True).start()
        return t0

    def _pump(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            words = line.split()
            if words and words[0] in ("assigned", "revoked"):
                self.events.put(Event(index, words[0], float(words[-1]), tuple(json.loads(words[1]))))
            elif words and words[0] == "started":
                self.events.put(Event(index, "started", float(words[1])))

    def wait_until(self, done: Any, timeout: float, settle: float = 1.5) -> float | None:
        """Collect events until `done(events)` returns a time and no event has come for `settle` s."""
        deadline = time.monotonic() + timeout
        last_event = time.monotonic()
        result: float | None = None
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.events.get(timeout=0.05))
                last_event = time.monotonic()
                result = done(self.seen)
            except queue.Empty:
                if result is not None and time.monotonic() - last_event >= settle:
                    return result
        return None

    def kill(self, index: int) -> float:
        at = time.monotonic()
        os.kill(self.procs[index].pid, signal.SIGKILL)
        self.procs[index].wait(10)
        return at

    def stop(self) -> None:
        for proc in self.procs:  # ask first (stdin EOF: the member closes its consumer), then insist
            if proc.poll() is None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def owners(
    events: Iterable[Event], alive: set[int] | None = None
) -> tuple[dict[int, tuple[int, ...]], float]:
    """Replay assignment events in time order: each member's current partitions, and the last time."""
    current: dict[int, tuple[int, ...]] = {}
    last = 0.0
    for ev in sorted(events, key=lambda e: e.at):
        if ev.kind == "assigned":
            current[ev.member] = ev.partitions
        elif ev.kind == "revoked":
            current[ev.member] = ()
        else:
            continue
        last = ev.at
    if alive is not None:
        current = {m: p for m, p in current.items() if m in alive}
    return current, last


def complete(current: dict[int, tuple[int, ...]], members: int, partitions: int) -> bool:
    """Every one of `members` holds partitions, and together they hold each partition exactly once."""
    held = [p for parts in current.values() for p in parts]
    busy = sum(1 for parts in current.values() if parts)
    return busy == members and sorted(held) == list(range(partitions))


def join_case(work: Path, name: str, delay_ms: int, members: int, partitions: int) -> dict[str, float]:
    broker = BrokerProcess(work / name, broker={"group.initial.rebalance.delay.ms": delay_ms}).start()
    group = Members(broker.bootstrap, "jobs", "join-bench", limit_s=90)
    try:
        create_queue(broker.bootstrap, "jobs", partitions)
        t0 = group.spawn(members)

        def done(seen: list[Event]) -> float | None:
            current, last = owners(seen)
            return last if complete(current, members, partitions) else None

        t_all = group.wait_until(done, timeout=60)
        if t_all is None:
            raise RuntimeError(f"{name}: the group did not settle; events: {group.seen[-10:]}")
        starts = [e.at for e in group.seen if e.kind == "started"]
        assigned = [e.at for e in group.seen if e.kind == "assigned" and e.partitions]
        rounds = len({e.at for e in group.seen if e.kind == "revoked" and e.partitions})
        return {
            "from_spawn_s": t_all - t0,
            "from_first_member_start_s": t_all - min(starts),
            "member_starts_spread_s": max(starts) - min(starts),
            "first_assignment_from_spawn_s": min(assigned) - t0,
            "assign_events": len(assigned),
            "revoke_events": rounds,
            "initial_rebalance_delay_ms": delay_ms,
        }
    finally:
        group.stop()
        broker.stop()
        shutil.rmtree(work / name, ignore_errors=True)


def start_committer(bootstrap: str, group: str, mode: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", COMMITTER, bootstrap, "jobs", group, mode, str(seconds), "64"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_ready(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    assert proc.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""))
    reader.start()
    reader.join(timeout)
    if not box or box[0].strip() != "ready":
        raise RuntimeError(f"committer not ready: {box}")


def committer_result(proc: subprocess.Popen[str], timeout: float, stop: bool) -> dict[str, float]:
    """Read the committer's result line (closing its stdin first if `stop`: that ends its loop)."""
    if stop and proc.stdin is not None:
        proc.stdin.close()
    assert proc.stdout is not None
    box: list[str] = []
    reader = threading.Thread(
        target=lambda: box.append(proc.stdout.read() if proc.stdout else ""), daemon=True
    )
    reader.start()
    reader.join(timeout)
    proc.wait(10)
    if not box or not box[0].strip():
        raise RuntimeError("committer gave no result")
    return dict(json.loads(box[0].strip().splitlines()[-1]))


def stop_procs(procs: Iterable[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def commit_cases(work: Path, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    seconds = 2.0 if quick else 10.0
    for mode in ("sync", "async"):
        name = f"commit_{mode}"
        broker = BrokerProcess(work / name).start()
        procs: list[subprocess.Popen[str]] = []
        try:
            create_queue(broker.bootstrap, "jobs", 1)
            procs.append(start_committer(broker.bootstrap, "committer", mode, seconds))
            wait_ready(procs[0])
            assert broker.proc is not None
            cpu0 = cpu_seconds(broker.proc.pid)
            stats = committer_result(procs[0], seconds + 60, stop=False)
            cpu1 = cpu_seconds(broker.proc.pid)
            user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            results[name] = {
                "commits_per_s": stats["commits"] / stats["seconds"],
                "commits": stats["commits"],
                "errors": stats["errors"],
                "seconds": stats["seconds"],
                "broker_user_cpu_us_per_commit": user / max(1, stats["commits"]) * 1e6,
                "broker_sys_cpu_us_per_commit": system / max(1, stats["commits"]) * 1e6,
            }
            print(name, json.dumps(results[name]), flush=True)
        finally:
            stop_procs(procs)
            broker.stop()
            shutil.rmtree(work / name, ignore_errors=True)

    count = 50_000 if quick else 1_000_000
    rounds = 1 if quick else 3
    alone: list[float] = []
    loaded: list[float] = []
    commit_rates: list[float] = []
    for r in range(rounds):
        for with_commits in (False, True):
            name = f"produce_r{r}_{'commits' if with_commits else 'alone'}"
            broker = BrokerProcess(work / name).start()
            procs = []
            try:
                create_queue(broker.bootstrap, "jobs", 1)
                create_queue(broker.bootstrap, "bench", 1)
                if with_commits:
                    procs = [start_committer(broker.bootstrap, f"bg{i}", "sync", 120) for i in range(2)]
                    for proc in procs:
                        wait_ready(proc)
                    time.sleep(0.5)
                rate = produce(broker.bootstrap, "bench", count, 100, "1")["msgs_per_s"]
                if with_commits:
                    background = [committer_result(proc, 60, stop=True) for proc in procs]
                    commit_rates.append(sum(b["commits"] / b["seconds"] for b in background))
                    loaded.append(rate)
                else:
                    alone.append(rate)
                print(name, round(rate), flush=True)
            finally:
                stop_procs(procs)
                broker.stop()
                shutil.rmtree(work / name, ignore_errors=True)
    results["produce_with_commits"] = {
        "count": count,
        "size": 100,
        "acks": "1",
        "alone_msgs_per_s": statistics.median(alone),
        "with_commits_msgs_per_s": statistics.median(loaded),
        "ratio": statistics.median(b / a for a, b in zip(alone, loaded, strict=True)),
        "background_commits_per_s": statistics.median(commit_rates),
        "alone_runs": alone,
        "with_commits_runs": loaded,
        "committer_processes": 2,
    }
    return results


def failover_case(work: Path, name: str, phase: float) -> dict[str, float]:
    """`phase`: extra seconds between the assignment and the kill, so that repetitions hit different
    points of the heartbeat cycle (which decides when the victim was last seen and when the survivors
    hear of the rebalance)."""
    broker = BrokerProcess(work / name).start()
    group = Members(broker.bootstrap, "jobs", "failover-bench", limit_s=90)
    try:
        create_queue(broker.bootstrap, "jobs", 6)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1"})
        for i in range(6000):
            producer.produce("jobs", b"x" * 100, partition=i % 6)
        producer.flush(30)
        del producer
        group.spawn(3)

        def joined(seen: list[Event]) -> float | None:
            current, last = owners(seen)
            return last if complete(current, 3, 6) else None

        if group.wait_until(joined, timeout=60) is None:
            raise RuntimeError(f"{name}: the group of 3 did not settle: {group.seen[-10:]}")
        assigned_at = max(e.at for e in group.seen if e.kind == "assigned")
        time.sleep(1.0 + phase)
        killed_at = group.kill(0)
        survivors = {1, 2}

        def recovered(seen: list[Event]) -> float | None:
            after = [e for e in seen if e.at >= killed_at]
            current, last = owners([e for e in seen if e.member in survivors])
            if not after or not complete(current, 2, 6):
                return None
            return last

        t_back = group.wait_until(recovered, timeout=60)
        if t_back is None:
            raise RuntimeError(f"{name}: the survivors did not take over: {group.seen[-10:]}")
        revoked = [e.at for e in group.seen if e.kind == "revoked" and e.at >= killed_at]
        return {
            "kill_to_all_owned_s": t_back - killed_at,
            "kill_to_first_revoke_s": min(revoked) - killed_at if revoked else float("nan"),
            "assignment_to_kill_s": killed_at - assigned_at,
            "session_timeout_s": SESSION_TIMEOUT_MS / 1000,
            "heartbeat_interval_s": HEARTBEAT_INTERVAL_MS / 1000,
        }
    finally:
        group.stop()
        broker.stop()
        shutil.rmtree(work / name, ignore_errors=True)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def summarize(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, float)]
    out: dict[str, Any] = {f"{k}_median": statistics.median(r[k] for r in runs) for k in keys}
    out |= {f"{k}_min": min(r[k] for r in runs) for k in keys if k.startswith(("from_", "kill_"))}
    out |= {f"{k}_max": max(r[k] for r in runs) for k in keys if k.startswith(("from_", "kill_"))}
    out["runs"] = runs
    return out


def table(results: dict[str, Any]) -> str:
    rows = ["| case | result |", "|---|---|"]
    for delay in ("3000", "0"):
        j = results.get(f"join_10x20_delay{delay}")
        if j:
            rows.append(
                f"| join, 10 members / 20 partitions, initial delay {delay} ms | "
                f"{j['from_spawn_s_median']:.2f} s from spawn (max {j['from_spawn_s_max']:.2f}), "
                f"{j['from_first_member_start_s_median']:.2f} s from first member start |"
            )
    for mode in ("sync", "async"):
        c = results.get(f"commit_{mode}")
        if c:
            rows.append(f"| commit, {mode}, one member | {c['commits_per_s']:,.0f} commits/s |")
    p = results.get("produce_with_commits")
    if p:
        rows.append(
            f"| produce {p['count']:,} x 100 B acks=1: alone / with 2 committers | "
            f"{p['alone_msgs_per_s']:,.0f} / {p['with_commits_msgs_per_s']:,.0f} msg/s, "
            f"ratio {p['ratio']:.2f} "
            f"({p['background_commits_per_s']:,.0f} commits/s alongside) |"
        )
    f = results.get("failover_3x6")
    if f:
        rows.append(
            f"| SIGKILL 1 of 3 members, 6 partitions: kill -> all owned | "
            f"{f['kill_to_all_owned_s_median']:.2f} s (range {f['kill_to_all_owned_s_min']:.2f}-"
            f"{f['kill_to_all_owned_s_max']:.2f}; "
            f"first revoke at {f['kill_to_first_revoke_s_median']:.2f} s; session timeout 6 s) |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per case, short commit phases")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir))
    repeats = 1 if args.quick else 3
    results: dict[str, Any] = {
        "settings": {
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
            "repeats": repeats,
        }
    }
    try:
        for delay in (3000, 0):
            runs = []
            for r in range(repeats):
                runs.append(join_case(work, f"join_d{delay}_r{r}", delay, 10, 20))
                print(f"join delay={delay}", json.dumps(runs[-1]), flush=True)
            results[f"join_10x20_delay{delay}"] = summarize(runs)
        results |= commit_cases(work, args.quick)
        runs = []
        phases = [0.0] if args.quick else [0.0, 0.6, 1.2, 1.8, 2.4]  # one heartbeat interval, 3 s
        for r, phase in enumerate(phases):
            runs.append(failover_case(work, f"failover_r{r}", phase))
            print("failover", json.dumps(runs[-1]), flush=True)
        results["failover_3x6"] = summarize(runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
