#!/usr/bin/env bash
# Real Kafka clients against the broker: kcat, kafka-python and
# confluent-kafka produce, the broker restarts, and they consume (groups,
# commits, resumption) with every record checked. Installs its own clients;
# run from anywhere: `bash tests/interop/run.sh`. Any failure exits non-zero.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/interop"
work="${MOLDAU_INTEROP_DIR:-$root/target/interop}"
mkdir -p "$work"

# Clients: kcat from Debian, the Python clients into a local folder.
if ! command -v kcat >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "kcat is missing and this is not root: install kcat first" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi
py="$work/py"
stamp="$py/.moldau-clients-kafka-python-3.0.12-confluent-kafka-2.16.1"
if [ ! -e "$stamp" ]; then
    rm -rf "$py"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --target "$py" 'kafka-python==3.0.12' 'confluent-kafka==2.16.1'
    touch "$stamp"
fi
export PYTHONPATH="$py:$here"

cd "$root"
cargo build --release --quiet --features broker --example broker
broker_bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/broker"
data="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
bs="127.0.0.1:$port"
broker_log=""
starts=0
pid=""

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

# Starts the broker with a log of its own, and waits until it listens.
start() {
    starts=$((starts + 1))
    broker_log="$work/broker-$starts.log"
    : >"$broker_log"
    "$broker_bin" --data-dir "$data" --listen "$bs" --partitions 3 >>"$broker_log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        if grep -q "listening on $bs" "$broker_log"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "the broker did not start; its log:" >&2
    cat "$broker_log" >&2
    exit 1
}

# Stops the broker with SIGTERM; a clean stop exits 0.
stop() {
    kill -TERM "$pid"
    if ! wait "$pid"; then
        echo "the broker did not stop cleanly; its log:" >&2
        cat "$broker_log" >&2
        exit 1
    fi
    pid=""
}

started=$SECONDS
start
for client in kcat_flow kafka_python_flow confluent_flow; do
    python3 "$here/$client.py" --bootstrap "$bs" produce
done
# Nothing acknowledged may be lost across a restart.
stop
start
for client in kcat_flow kafka_python_flow confluent_flow; do
    python3 "$here/$client.py" --bootstrap "$bs" consume
done
stop
echo "interop: all clients passed in $((SECONDS - started)) s"
