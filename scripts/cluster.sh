#!/usr/bin/env bash
# A local logq cluster (preview): ZooKeeper plus three brokers on 127.0.0.1, all data in ./cluster-data.
#
#   scripts/cluster.sh start    # ZooKeeper on 127.0.0.1:2181, brokers 1-3 on 127.0.0.1:9192-9194
#   scripts/cluster.sh status   # which of them run (by PID)
#   scripts/cluster.sh stop     # SIGTERM by PID: the brokers first (clean shutdown), then ZooKeeper
#
# Configuration: configs/cluster/zoo.cfg and configs/cluster/broker-{1,2,3}.toml. Logs and PID files are
# in ./cluster-data (zookeeper.log, broker-N.log, *.pid); `rm -rf cluster-data` after stop starts afresh.
# Needs Debian's zookeeper package (apt-get install zookeeper) and the virtualenv (make run creates it).
# Then, e.g.: .venv/bin/logq -b 127.0.0.1:9192 queue create orders -p 6
set -euo pipefail

cd "$(dirname "$0")/.."
DATA=./cluster-data
BROKERS=(1 2 3)
LOGQ=${LOGQ:-.venv/bin/logq}
ZK_CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
ZK_PORT=2181

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

ruok() { (exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf ruok >&3 && timeout 2 cat <&3) 2>/dev/null || true; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

start() {
    mkdir -p "$DATA/zookeeper"
    if running "$DATA/zookeeper.pid"; then
        echo "ZooKeeper already running (pid $(cat "$DATA/zookeeper.pid"))"
    else
        command -v java >/dev/null || { echo "java not found: apt-get install zookeeper" >&2; exit 1; }
        nohup java -Xmx256m -cp "$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain \
            configs/cluster/zoo.cfg >"$DATA/zookeeper.log" 2>&1 </dev/null &
        echo $! >"$DATA/zookeeper.pid"
        wait_for 30 "ZooKeeper (see $DATA/zookeeper.log)" zk_ok
        echo "ZooKeeper on 127.0.0.1:$ZK_PORT (pid $(cat "$DATA/zookeeper.pid"))"
    fi
    for i in "${BROKERS[@]}"; do
        if running "$DATA/broker-$i.pid"; then
            echo "broker $i already running (pid $(cat "$DATA/broker-$i.pid"))"
            continue
        fi
        nohup "$LOGQ" broker start --config "configs/cluster/broker-$i.toml" >"$DATA/broker-$i.log" 2>&1 </dev/null &
        echo $! >"$DATA/broker-$i.pid"
    done
    for i in "${BROKERS[@]}"; do
        wait_for 60 "broker $i (see $DATA/broker-$i.log)" grep -q "listening on" "$DATA/broker-$i.log"
        echo "broker $i: $(grep -o 'listening on [^ ]*' "$DATA/broker-$i.log" | tail -1) (pid $(cat "$DATA/broker-$i.pid"))"
    done
}

zk_ok() { [[ $(ruok) == imok ]]; }

stop_pid() {  # stop_pid NAME PIDFILE: SIGTERM, wait up to 30 s, then SIGKILL
    local name=$1 file=$2 pid
    if ! running "$file"; then
        rm -f "$file"
        return 0
    fi
    pid=$(cat "$file")
    kill -TERM "$pid"
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$name (pid $pid) did not stop in 30 s: SIGKILL" >&2
        kill -KILL "$pid"
    fi
    rm -f "$file"
    echo "stopped $name (pid $pid)"
}

stop() {
    for i in "${BROKERS[@]}"; do stop_pid "broker $i" "$DATA/broker-$i.pid"; done
    stop_pid ZooKeeper "$DATA/zookeeper.pid"
}

status() {
    for name in zookeeper broker-1 broker-2 broker-3; do
        if running "$DATA/$name.pid"; then echo "$name: running (pid $(cat "$DATA/$name.pid"))"; else echo "$name: stopped"; fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
